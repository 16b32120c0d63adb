"""``workmail-backup local run``: one night of the real workflow on this machine."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from workmail_backup.cli.app import console, errors, local_app


def _given_path(option: str, what: str):
    """A parser that refuses an empty value in one line: ``Path("")`` would silently be the current directory."""

    def parse(value: str | Path) -> Path:
        # Defaults arrive as paths already; only a typed value can be empty.
        if isinstance(value, str) and not value.strip():
            errors.print(f"[red]{option} is empty;[/red] give {what}.", soft_wrap=True)
            raise typer.Exit(2)
        return Path(value)

    return parse


@local_app.command("run")
def local_run(
    scenario: Annotated[
        Path,
        typer.Option(
            parser=_given_path("--scenario", "the scenario file, such as --scenario scenarios/demo.yaml"),
            metavar="<path>",
            help="Scenario file (YAML or JSON) describing the organizations.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary and every mailbox as JSON.")] = False,
    max_concurrent: Annotated[int, typer.Option(min=1, max=10, help="Most exports to run at once (1-10).")] = 10,
    template: Annotated[
        Path,
        typer.Option(
            parser=_given_path("--template", "the SAM template file, or leave the option out for template.yaml"),
            metavar="<path>",
            help="SAM template to deploy locally.",
        ),
    ] = Path("template.yaml"),
    log_file: Annotated[
        Path | None,
        typer.Option(
            parser=_given_path("--log-file", "a file name, or leave the option out for the default"),
            metavar="<path>",
            help="Where the handlers' structured logs go: default local-run.log in --state-dir, else out/.",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            parser=_given_path("--state-dir", "the directory to save the state in, such as --state-dir out/state"),
            metavar="<path>",
            help="Save the ledger and executions here after the run, for the commands' --local option.",
        ),
    ] = None,
    time_limit: Annotated[
        str, typer.Option(help="Real time after which an unfinished night is stopped (30m, 2h); at most a day.")
    ] = "10m",
) -> None:
    """Run one nightly backup of the scenario's organizations and print the result."""
    from workmail_backup.local.runner import LocalEnvironment, LocalRunError
    from workmail_backup.ops.local_state import save_state

    # The logs go with the saved state they explain, so that two states never share one log.
    log_file = log_file or (state_dir / "local-run.log" if state_dir is not None else Path("out/local-run.log"))
    loaded = _checked_inputs(scenario, template, log_file, state_dir)
    limit_seconds = _checked_time_limit(time_limit)

    parameters = {"MaxConcurrentExports": str(max_concurrent)}
    saved = None
    with (
        _explained_failures(scenario, template, state_dir, as_json),
        LocalEnvironment(loaded, template=template, parameters=parameters, log_path=log_file) as environment,
    ):
        aliases = environment.organization_aliases
        try:
            result = _night(environment, as_json, limit_seconds)
        except LocalRunError:
            # A night stopped at the time limit is saved as far as it got, to be looked into. Its
            # executions are stopped first, so the saved state shows them ABORTED, not running on.
            environment.stop_unfinished_executions(f"local run stopped at its --time-limit of {time_limit}")
            if state_dir is not None:
                save_state(environment, state_dir)
            raise
        if state_dir is not None:
            saved = save_state(environment, state_dir)

    _print_night(result, aliases, as_json, log_file, saved)
    raise typer.Exit(0 if _healthy(result) else 1)


@contextmanager
def _explained_failures(scenario: Path, template: Path, state_dir: Path | None, as_json: bool) -> Iterator[None]:
    """A scenario, template or night that fails is one line naming what to fix, and an exit code."""
    from workmail_backup.local.emulator import ScenarioError
    from workmail_backup.local.runner import LocalRunError
    from workmail_backup.local.stack import LocalDeploymentError, UnsupportedResourceError

    try:
        yield
    except ScenarioError as error:
        # Some problems show only once the organizations are built, e.g. more than ten jobs at the start.
        problem = escape(str(error))
        errors.print(f"[red]Scenario {escape(str(scenario))} cannot be used:[/red] {problem}", soft_wrap=True)
        raise typer.Exit(2) from None
    except (LocalDeploymentError, UnsupportedResourceError) as error:
        errors.print(
            f"[red]Template {escape(str(template))} cannot be deployed:[/red] {escape(str(error))}", soft_wrap=True
        )
        raise typer.Exit(2) from None
    except LocalRunError as error:
        kept = f" What it did is saved in {escape(str(state_dir))}." if state_dir is not None else ""
        errors.print(f"[red]The local run failed:[/red] {escape(str(error))}{kept}", soft_wrap=True)
        if as_json:
            # A script reading stdout learns that the night did not finish, and where to look.
            saved_in = str(state_dir) if state_dir is not None else None
            json.dump({"finished": False, "error": str(error), "stateSavedIn": saved_in}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        raise typer.Exit(1) from None


def _print_night(result, aliases: dict, as_json: bool, log_file: Path, saved: Path | None) -> None:
    from workmail_backup.local import display

    if as_json:
        json.dump(result.as_json(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    display.print_summary(console, result, aliases)
    console.print(f"Handler logs: {log_file}")
    if saved is not None:
        console.print(
            f"State saved to {saved}; read it with e.g. `workmail-backup status --local {saved.parent}`",
            soft_wrap=True,
        )


def _healthy(result) -> bool:
    # Judged as `runs` judges a run: a night with a failed mailbox needs a look too.
    return all(
        org.run.get("status") == "SUCCEEDED" and not org.run.get("counts", {}).get("failed")
        for org in result.organizations
    )


def _night(environment, as_json: bool, limit_seconds: float):
    from workmail_backup.local import display

    if as_json:
        return environment.run_nightly(timeout_seconds=limit_seconds)
    with display.LiveProgress(console) as progress:
        return environment.run_nightly(on_progress=progress.update, timeout_seconds=limit_seconds)


def _checked_time_limit(text: str) -> float:
    from workmail_backup.ops.errors import InvalidRequestError
    from workmail_backup.ops.values import parse_duration

    try:
        limit = parse_duration(text, "--time-limit", examples="30m or 2h")
    except InvalidRequestError as error:
        errors.print(f"[red]Error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if not 0 < limit.total_seconds() <= 86_400:
        got = escape(repr(text))
        errors.print(f"[red]Error:[/red] --time-limit must be more than nothing and at most a day (24h); got {got}.")
        raise typer.Exit(2)
    return limit.total_seconds()


def _checked_inputs(scenario: Path, template: Path, log_file: Path, state_dir: Path | None):
    """The loaded scenario, once every path is known to work: a bad one fails now, not after the night."""
    from workmail_backup.local.emulator import ScenarioError, load_scenario

    try:
        loaded = load_scenario(scenario)
    except (ScenarioError, OSError) as error:
        errors.print(
            f"[red]Scenario {escape(str(scenario))} cannot be used:[/red] {escape(str(error))}", soft_wrap=True
        )
        raise typer.Exit(2) from None
    if not template.is_file():
        problem = "is a directory, not a template file" if template.is_dir() else "not found"
        errors.print(
            f"[red]Template {escape(str(template))} {problem};[/red] run from the project folder or pass --template.",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    # Checked before the run, so that a bad path does not throw away a whole night's work at its end.
    # The state directory first: the log goes into it by default.
    if state_dir is not None:
        _must_be_writable(state_dir, "--state-dir", directory=True)
    _must_be_writable(log_file, "--log-file", directory=False)

    return loaded


def _must_be_writable(path: Path, option: str, directory: bool) -> None:
    """Create the folder (or the file's folder) now, and say in one line why it cannot be."""
    try:
        if directory:
            if path.exists() and not path.is_dir():
                raise NotADirectoryError(f"{path} is a file; give a directory")
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                raise IsADirectoryError(f"{path} is a directory; give a file name")
            path.open("a").close()
    except OSError as error:
        errors.print(f"[red]{option} {escape(str(path))} cannot be written:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(2) from None
