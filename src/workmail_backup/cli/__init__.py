"""The ``workmail-backup`` command: operations and audit commands, and the local mode."""

from workmail_backup.cli import doctor, local, operations  # noqa: F401  (each module registers its commands)
from workmail_backup.cli.app import app

__all__ = ["app"]
