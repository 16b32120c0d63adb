"""Command-line tool and local mode for workmail-backup."""
