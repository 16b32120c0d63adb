"""The typer application and the consoles every command writes to."""

import typer
from rich.console import Console

app = typer.Typer(help="Nightly, verifiable backups of every Amazon WorkMail mailbox.", no_args_is_help=True)
local_app = typer.Typer(
    help="Run the real workflow on this machine against a simulated organization.", no_args_is_help=True
)
app.add_typer(local_app, name="local")

console = Console()
errors = Console(stderr=True)
