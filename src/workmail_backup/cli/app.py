"""The typer application and the consoles every command writes to."""

from importlib.metadata import version
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Nightly, verifiable backups of every Amazon WorkMail mailbox.", no_args_is_help=True)
local_app = typer.Typer(
    help="Run the real workflow on this machine against a simulated organization.", no_args_is_help=True
)
app.add_typer(local_app, name="local")

console = Console()
errors = Console(stderr=True)


def _print_version(asked: bool) -> None:
    if asked:
        console.print(f"workmail-backup {version('workmail-backup')}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and stop.")
    ] = False,
) -> None:
    """Nightly, verifiable backups of every Amazon WorkMail mailbox."""
