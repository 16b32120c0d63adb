"""The ``workmail-backup`` command: operations and audit commands, and the local mode."""

import signal

from workmail_backup.cli import doctor, local, operations  # noqa: F401  (each module registers its commands)
from workmail_backup.cli.app import app

__all__ = ["app", "run"]


def run() -> None:
    """The installed command. A reader that stops early (``| head``) ends it quietly, as it
    ends any Unix tool, instead of an exit code that looks like an unhealthy answer."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()
