"""The operators' and auditors' commands: status, runs, mailboxes, coverage, start, report.

Exit codes: 0 when what was asked about is healthy, 1 when it is not (a failed run, overdue
mailboxes, missing coverage, a start that was refused), 2 when the question could not be
answered (bad input, a stack or run that does not exist, no credentials).
"""

import functools
import inspect
import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.live import Live
from rich.markup import escape

from mailbox_backup.inputs import ORGANIZATION_ID
from workmail_backup.cli import views
from workmail_backup.cli.app import app, console, errors
from workmail_backup.ops import actions, queries, report
from workmail_backup.ops.backend import AWS_ERRORS, Backend, connect_deployed
from workmail_backup.ops.errors import InvalidRequestError, OperationsError
from workmail_backup.ops.values import parse_day, parse_duration

UNHEALTHY, UNANSWERED = 1, 2

StackOption = Annotated[
    str | None, typer.Option("--stack", envvar="WORKMAIL_BACKUP_STACK", help="Deployed stack name.", show_default=False)
]
TableOption = Annotated[
    str | None, typer.Option("--table", envvar="WORKMAIL_BACKUP_TABLE", help="Ledger table, instead of --stack.")
]
StateMachineOption = Annotated[
    str | None,
    typer.Option(
        "--state-machine",
        envvar="WORKMAIL_BACKUP_STATE_MACHINE",
        help="OrganizationBackup state machine ARN, with --table (needed to start runs).",
    ),
]


def refuse(message: str) -> NoReturn:
    """Bad input to an option: one line saying what to fix, and exit 2 (typer's own would be a panel)."""
    errors.print(f"[red]Error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(UNANSWERED)


def _saved_state_path(value: str) -> Path:
    # An empty value would silently mean the current directory.
    if not value.strip():
        refuse("--local is empty; give the directory `local run --state-dir DIR` saved into.")
    return Path(value)


LocalOption = Annotated[
    Path | None,
    typer.Option(
        "--local",
        envvar="WORKMAIL_BACKUP_LOCAL",
        parser=_saved_state_path,
        help="Saved state of `local run --state-dir DIR`.",
    ),
]
RegionOption = Annotated[str | None, typer.Option("--region", help="AWS region (default: AWS_REGION, profile).")]
ProfileOption = Annotated[str | None, typer.Option("--profile", help="AWS profile (default: AWS_PROFILE).")]


def _organization_id(value: str) -> str:
    if not value.strip():
        refuse("--org is empty; give an organization id, or leave --org out for every organization.")
    if not ORGANIZATION_ID.match(value.strip()):
        refuse(f"--org {escape(value)} is not a WorkMail organization id (m- and 32 lowercase hex digits).")
    return value.strip()


OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org", envvar="WORKMAIL_BACKUP_ORG", parser=_organization_id, help="Only this WorkMail organization."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@dataclass(frozen=True)
class Source:
    """Which backup to ask: a deployed stack (or its table and state machine), or a saved local state."""

    stack: str | None
    table: str | None
    state_machine: str | None
    local: Path | None
    region: str | None
    profile: str | None


_SOURCE_OPTIONS = {
    "stack": StackOption,
    "table": TableOption,
    "state_machine": StateMachineOption,
    "local": LocalOption,
    "region": RegionOption,
    "profile": ProfileOption,
}


def takes_source(command):
    """Give a command the options that name the backup, and hand them to it as one ``Source``."""
    own = [parameter for parameter in inspect.signature(command).parameters.values() if parameter.name != "source"]
    options = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
        for name, annotation in _SOURCE_OPTIONS.items()
    ]

    options.append(inspect.Parameter("context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))

    @functools.wraps(command)
    def with_source(**arguments):
        context = arguments.pop("context")
        values = _typed_beats_environment(context, {name: arguments.pop(name) for name in _SOURCE_OPTIONS})
        return command(source=Source(**values), **arguments)

    # Typer reads the options from the signature: the command's own, then the source's.
    with_source.__signature__ = inspect.Signature(own + options)
    with_source.__annotations__ = {parameter.name: parameter.annotation for parameter in own + options}
    return with_source


def _typed_beats_environment(context: typer.Context, values: dict) -> dict:
    """``--local DIR`` typed on the command line wins over a stack or table named in the
    environment (WORKMAIL_BACKUP_STACK in a shell profile), and the other way round."""
    from_environment = {name for name in values if _source_of(context, name) == "ENVIRONMENT"}
    deployed = {"stack", "table", "state_machine"}
    if values["local"] is not None and any(values[name] for name in deployed):
        if "local" in from_environment and not deployed & from_environment:
            values["local"] = None
        elif "local" not in from_environment:
            values.update({name: None for name in deployed & from_environment})
    return values


def _source_of(context: typer.Context, name: str) -> str | None:
    source = context.get_parameter_source(name)
    return source.name if source else None


@contextmanager
def answering(source: Source, as_json: bool = False) -> Iterator[Backend]:
    """Open the backend the options name; turn every failure into one line and exit code 2.

    A refused start is an answer, not a failure: exit 1, and with ``as_json`` also a JSON object
    on stdout, so that a script reads why as it reads a start."""
    with ExitStack() as stack_of_resources:
        try:
            if source.local is not None and (source.stack or source.table):
                raise InvalidRequestError(
                    "Give either --local (a saved local state) or --stack/--table (a deployed backup), not both."
                )
            if source.local is not None:
                from workmail_backup.ops.local_state import open_local_state

                backend = stack_of_resources.enter_context(open_local_state(source.local))
            else:
                backend = connect_deployed(
                    source.stack, source.table, source.state_machine, source.region, source.profile
                )
            yield backend
        except actions.RunRefusedError as refusal:
            errors.print(f"[yellow]Not started:[/yellow] {escape(str(refusal))}", soft_wrap=True)
            if as_json:
                print_json({"started": False, "refusedBecause": str(refusal)})
            raise typer.Exit(UNHEALTHY) from None
        except OperationsError as error:
            errors.print(f"[red]Error:[/red] {escape(str(error))}", soft_wrap=True)
            raise typer.Exit(UNANSWERED) from None
        except AWS_ERRORS as error:
            errors.print(f"[red]AWS error:[/red] {escape(str(error))}", soft_wrap=True)
            raise typer.Exit(UNANSWERED) from None


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def finish(healthy: bool) -> None:
    raise typer.Exit(0 if healthy else UNHEALTHY)


@app.command()
@takes_source
def status(
    org: OrgOption = None,
    as_json: JsonOption = False,
    *,
    source: Source,
) -> None:
    """Per organization: the last run and the one running now, and what needs attention."""
    with answering(source) as backend:
        statuses = [queries.organization_status(backend, organization) for organization in backend.organizations(org)]
    if as_json:
        print_json({"organizations": statuses, "healthy": all(item["healthy"] for item in statuses)})
    else:
        views.print_status(console, statuses, backend.description)
    finish(all(item["healthy"] for item in statuses))


@app.command()
@takes_source
def runs(
    limit: Annotated[int, typer.Option(min=1, help="Most runs per organization.")] = 20,
    org: OrgOption = None,
    as_json: JsonOption = False,
    *,
    source: Source,
) -> None:
    """The history of runs, newest first; exit 1 if an organization's newest run failed."""
    with answering(source) as backend:
        listed = queries.list_runs(backend, org, limit)
    healthy = queries.latest_runs_healthy(listed)
    if as_json:
        print_json({"runs": listed, "healthy": healthy})
    else:
        views.print_runs(console, listed)
    finish(healthy)


run_app = typer.Typer(help="One run in detail.", no_args_is_help=True)
app.add_typer(run_app, name="run")


@run_app.command("show")
@takes_source
def run_show(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id, e.g. nightly-20261203.")],
    org: OrgOption = None,
    as_json: JsonOption = False,
    *,
    source: Source,
) -> None:
    """Every mailbox of one run with its outcome, and the execution's failed states if it went wrong."""
    with answering(source) as backend:
        detail = queries.run_detail(backend, run_id, org)
    if as_json:
        print_json(detail)
    else:
        views.print_run_detail(console, detail)
    finish(detail["healthy"])


@app.command()
@takes_source
def watch(
    interval: Annotated[float, typer.Option(min=0.5, max=3600, help="Seconds between refreshes.")] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and stop.")] = False,
    org: OrgOption = None,
    as_json: JsonOption = False,
    *,
    source: Source,
) -> None:
    """A live view of the running runs: slots in use, queue, each job's progress. Stops when they end;
    exit 1 if a run is stuck (left open by an execution that ended).

    Saved local state never changes, so it is shown once, as with --once.
    """
    with answering(source) as backend:
        snapshots = queries.watch_snapshot(backend, org)
        if as_json or once or not backend.live:
            if as_json:
                print_json({"runs": snapshots, "healthy": not _any_stuck(snapshots)})
            else:
                console.print(views.watch_view(snapshots))
            finish(not _any_stuck(snapshots))
        with Live(views.watch_view(snapshots), console=console, refresh_per_second=2) as live:
            # A stuck run never moves again: watching it would never end.
            while any(not snapshot["stuck"] for snapshot in snapshots):
                time.sleep(interval)
                snapshots = queries.watch_snapshot(backend, org)
                live.update(views.watch_view(snapshots))
    finish(not _any_stuck(snapshots))


def _any_stuck(snapshots: list[dict]) -> bool:
    return any(snapshot["stuck"] for snapshot in snapshots)


@app.command()
@takes_source
def mailboxes(
    overdue: Annotated[
        str | None, typer.Option(help="Only mailboxes whose last verified export is older than this (2d, 36h).")
    ] = None,
    org: OrgOption = None,
    as_json: JsonOption = False,
    *,
    source: Source,
) -> None:
    """Every mailbox with its last verified export and its age; exits 1 if a mailbox's last export failed,
    and with --overdue if any is older."""
    with answering(source) as backend:
        limit = parse_duration(overdue) if overdue is not None else None
        listed = queries.list_mailboxes(backend, org, limit)
        # Nothing overdue in an organization whose mailboxes no run has listed proves nothing.
        unlisted = queries.unlisted_organizations(backend, org) if overdue is not None else []
    if as_json:
        print_json({"overdue": overdue, "mailboxes": listed, "unlistedOrganizations": unlisted})
    else:
        views.print_mailboxes(console, listed, overdue, unlisted)
    # A mailbox no longer to export (disabled, deleted since) keeps its old outcome; it needs nothing.
    any_failed = any(line["exportable"] and line["lastOutcome"] == "FAILED" for line in listed)
    finish(not any_failed and (overdue is None or not (listed or unlisted)))


@app.command()
@takes_source
def coverage(
    deadline: Annotated[str, typer.Option(help="Date by which every mailbox needs a verified export.")] = "2027-03-31",
    org: OrgOption = None,
    as_json: JsonOption = False,
    *,
    source: Source,
) -> None:
    """Share of exportable mailboxes with a verified export, the missing ones, and a forecast."""
    with answering(source) as backend:
        answer = queries.coverage(backend, parse_day(deadline, "--deadline", end_of_day=True), org)
    if as_json:
        print_json(answer)
    else:
        views.print_coverage(console, answer)
    finish(answer["healthy"])


@app.command()
@takes_source
def start(
    org: OrgOption = None,
    mailbox: Annotated[
        list[str] | None,
        typer.Option("--mailbox", "-m", help="Only this mailbox (e-mail address or entity id); repeat for more."),
    ] = None,
    mailboxes_from: Annotated[
        typer.FileText | None,
        typer.Option("--mailboxes-from", help="Only the mailboxes in this file, one per line ('-' reads stdin)."),
    ] = None,
    as_json: JsonOption = False,
    *,
    source: Source,
) -> None:
    """Start an on-demand run now, of the organization or of the mailboxes named.

    Refused, with the reason and when it would be possible, while a run is open or when
    WorkMail's 24-hour rule stops every mailbox it would cover.
    """
    try:
        given = list(mailbox or []) + (names_in(mailboxes_from) if mailboxes_from else [])
        named = [name.strip() for name in given if name.strip()]
    except UnicodeDecodeError:
        errors.print("[red]Error:[/red] --mailboxes-from is not UTF-8 text; save the list as UTF-8.")
        raise typer.Exit(UNANSWERED) from None
    if (mailbox or mailboxes_from) and not named:
        errors.print("[red]Error:[/red] no mailbox named; give e-mail addresses or entity ids.")
        raise typer.Exit(UNANSWERED)
    with answering(source, as_json) as backend:
        started = actions.start_on_demand(backend, org, named)
    if as_json:
        print_json(started)
    else:
        views.print_started(console, started)


def names_in(listing) -> list[str]:
    """Mailbox names from a file: one per line; blank lines and text after '#' are ignored."""
    return [line.split("#", 1)[0].strip() for line in listing if line.split("#", 1)[0].strip()]


@app.command("retry-failed")
@takes_source
def retry_failed(
    org: OrgOption = None,
    as_json: JsonOption = False,
    *,
    source: Source,
) -> None:
    """Start a run of exactly the mailboxes whose last export failed."""
    with answering(source, as_json) as backend:
        started = actions.retry_failed(backend, org)
    if as_json:
        print_json(started)
    else:
        views.print_started(console, started)


def _report_path(value: str) -> Path:
    # An empty value would silently mean the current directory.
    if not value.strip():
        refuse("--output is empty; give the file to write, or '-' for stdout.")
    path = Path(value)
    # A mistyped directory is named, not created.
    if value != "-" and not path.parent.is_dir():
        refuse(f"--output {escape(value)}: the directory {escape(str(path.parent))} does not exist; create it first.")
    return path


def _format_of(output: Path) -> views.ReportFormat:
    # report.csv is meant as CSV: writing HTML into it would be a surprise.
    named = output.suffix.lower().lstrip(".")
    return views.ReportFormat(named) if named in views.ReportFormat.__members__ else views.ReportFormat.html


@app.command("report")
@takes_source
def audit_report(
    output: Annotated[
        Path, typer.Option("--output", "-o", parser=_report_path, help="File to write ('-' for stdout).")
    ],
    report_format: Annotated[
        views.ReportFormat | None,
        typer.Option("--format", help="html, csv or json (default: the output file's extension, else html)."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Start of the period (default: 30 days before --until).")] = None,
    until: Annotated[str | None, typer.Option(help="End of the period, inclusive (default: now).")] = None,
    org: OrgOption = None,
    *,
    source: Source,
) -> None:
    """Write the audit report: every mailbox and its exports in the period, coverage, failures, charts."""
    with answering(source) as backend:
        period_start = parse_day(since, "--since") if since else None
        period_end = parse_day(until, "--until", end_of_day=True) if until else None
        data = report.build_report(backend, period_start, period_end, org)
    renderers = {"html": report.render_html, "csv": report.render_csv, "json": report.render_json}
    rendered = renderers[(report_format or _format_of(output)).value](data)
    to_stdout = str(output) == "-"
    try:
        if to_stdout:
            sys.stdout.write(rendered)
        else:
            output.write_text(rendered, encoding="utf-8")
    except OSError as error:
        # "Not a directory: README.md" reads better than Python's "[Errno 20] ...".
        why = f"{error.strerror}: {error.filename}" if error.strerror and error.filename else str(error)
        errors.print(
            f"[red]Error:[/red] --output {escape(str(output))} cannot be written: {escape(why)}", soft_wrap=True
        )
        raise typer.Exit(UNANSWERED) from None
    coverage_summary = data["coverage"]
    # With the report on stdout, the summary goes to stderr so that it does not end up in the file.
    (errors if to_stdout else console).print(
        f"Report written to {'stdout' if to_stdout else output}: {coverage_summary['covered']} of "
        f"{coverage_summary['eligible']} mailboxes covered ({coverage_summary['share']}%)."
    )
    # The report is written either way; like `coverage`, the exit code says whether it shows every mailbox covered.
    finish(coverage_summary["healthy"])
