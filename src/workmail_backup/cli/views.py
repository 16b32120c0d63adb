"""Rich tables for the operations commands: what a person reads instead of the JSON."""

from datetime import timedelta
from enum import StrEnum

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from workmail_backup.ops.values import human_duration, human_size, s3_uri

STATUS_STYLES = {"SUCCEEDED": "green", "FAILED": "red", "RUNNING": "cyan", "PLANNING": "cyan", "REQUESTED": "cyan"}
OUTCOME_STYLES = {"EXPORTED": "green", "FAILED": "red", "SKIPPED": "dim", "DEFERRED": "yellow", "RUNNING": "cyan"}


class ReportFormat(StrEnum):
    html = "html"
    csv = "csv"
    json = "json"


def _styled(value: str | None, styles: dict[str, str]) -> Text:
    return Text(value or "-", style=styles.get(value or "", ""))


def _run_row(run: dict | None) -> list:
    if run is None:
        return ["-"] * 9
    counts = run["counts"]
    execution = run.get("execution") or {}
    return [
        _run_name(run),
        _styled(run["status"], STATUS_STYLES),
        run.get("startedAt") or "-",
        human_duration(run.get("durationSeconds")),
        str(counts["exported"]),
        str(counts["failed"]),
        str(counts["deferred"]),
        str(counts["skipped"]),
        execution.get("status") or ("-" if not run.get("executionArn") else "unknown"),
    ]


def _run_name(run: dict) -> str:
    """The run id, and how many mailboxes it covers when it was asked for named mailboxes only."""
    requested = run.get("requestedMailboxes")
    return f"{run['runId']} [dim]({requested} named mailboxes)[/dim]" if requested else run["runId"]


def _run_columns(table: Table) -> None:
    for name in ("Run", "Status", "Started", "Took", "Exported", "Failed", "Deferred", "Skipped", "Execution"):
        table.add_column(name, justify="right" if name in ("Exported", "Failed", "Deferred", "Skipped") else "left")


def print_status(console: Console, statuses: list[dict], source: str) -> None:
    if not statuses:
        console.print(f"No organization has a run in {source} yet.")
        return
    for status in statuses:
        table = Table(title=f"Organization {status['organizationId']}", title_justify="left")
        table.add_column("")
        _run_columns(table)
        table.add_column("Running now", justify="right")
        table.add_row("last", *_run_row(status["last"]), "")
        current = status["current"]
        table.add_row("current", *_run_row(current), str(current["runningNow"]) if current else "")
        console.print(table)
        for run in (status["last"], current):
            if run and run.get("executionArn"):
                console.print(f"  {run['runId']} execution: {run['executionArn']}", soft_wrap=True, style="dim")
        for problem in status["problems"]:
            console.print(f"  [red]![/red] {problem}", soft_wrap=True)
        if status["healthy"]:
            console.print("  [green]healthy[/green]")


def print_runs(console: Console, runs: list[dict]) -> None:
    if not runs:
        console.print("No run recorded yet.")
        return
    table = Table(title="Runs, newest first", title_justify="left")
    table.add_column("Organization")
    _run_columns(table)
    for run in runs:
        table.add_row(run["organizationId"], *_run_row(run))
    console.print(table)


def print_run_detail(console: Console, detail: dict) -> None:
    table = Table(title=f"Run {detail['runId']} of {detail['organizationId']}", title_justify="left")
    _run_columns(table)
    table.add_row(*_run_row(detail))
    console.print(table)
    if detail.get("error"):
        console.print(f"[red]Error:[/red] {detail['error']}", soft_wrap=True)
    still_running = detail["counts"].get("running")
    if still_running and detail.get("endedAt"):
        console.print(
            f"{still_running} export(s) were still running when the run ended; WorkMail finishes them, but this "
            "backup has not verified them. The next run exports those mailboxes again once WorkMail allows.",
            soft_wrap=True,
        )
    if detail.get("pace"):
        console.print(_pace_sentence(detail["pace"]), soft_wrap=True)
    for failure in detail["executionFailures"]:
        console.print(
            f"[red]Failed state[/red] {failure['state']} at {failure['timestamp']}: {failure['error']}: "
            f"{failure['cause']}",
            soft_wrap=True,
        )
    jobs = Table(title="Mailboxes", title_justify="left")
    for name in ("Mailbox", "Outcome", "Job", "Started", "Took", "Size", "S3 location / reason"):
        jobs.add_column(name, overflow="fold")
    for line in detail["mailboxes"]:
        where = line.get("s3Object") or ""
        jobs.add_row(
            line["email"] or line["entityId"],
            _styled(line["outcome"], OUTCOME_STYLES),
            line.get("jobId") or "",
            line.get("startedAt") or "",
            human_duration(line.get("durationSeconds")),
            human_size(line.get("sizeBytes")) if line.get("sizeBytes") is not None else "",
            where if line["outcome"] == "EXPORTED" else (line.get("reason") or ""),
        )
    console.print(jobs)


def _pace_sentence(pace: dict) -> str:
    full_pass = human_duration(timedelta(days=pace["fullPassDays"]).total_seconds())
    return (
        f"Pace: a mean export took {human_duration(pace['meanExportSeconds'])}, so the slots export about "
        f"{round(pace['mailboxesPerDay']):,} mailboxes a day and a full pass takes about {full_pass}; "
        f"{pace['mailboxesWithoutExport']} of the mailboxes this run planned still have no export."
    )


def print_mailboxes(console: Console, mailboxes: list[dict], overdue: str | None) -> None:
    if overdue is not None and not mailboxes:
        console.print(f"[green]No mailbox's last verified export is older than {overdue}.[/green]")
        return
    title = f"Mailboxes whose last verified export is older than {overdue}" if overdue else "Mailboxes"
    table = Table(title=title, title_justify="left")
    for name in ("Mailbox", "Kind", "State", "Last verified export", "Age", "Last outcome", "S3 location / error"):
        table.add_column(name, overflow="fold")
    for line in mailboxes:
        table.add_row(
            line["email"] or line["entityId"],
            line.get("kind") or "",
            line.get("state") or "",
            line.get("lastSuccessAt") or ("never" if line["exportable"] else f"none: {line['notExportableBecause']}"),
            human_duration(line["ageSeconds"]),
            _styled(line.get("lastOutcome"), OUTCOME_STYLES),
            line.get("lastError") or line.get("lastSuccessS3Object") or _elsewhere(line.get("lastExportElsewhere")),
        )
    console.print(table)


def _never_exported(mailbox: dict) -> str:
    return "no export by this backup" if mailbox.get("lastExportElsewhere") else "never exported"


def _elsewhere(export: dict | None) -> str:
    """Someone else's export of a mailbox, said so that it is not mistaken for a verified one."""
    if not export:
        return ""
    where = s3_uri(None, None, export.get("s3Path") or export.get("s3Bucket")) or "unknown bucket"
    state = (export.get("state") or "state unknown").lower()
    seen = f" when seen at {export['seenAt']}" if export.get("seenAt") else ""
    return f"exported elsewhere, started {export['startedAt']} ({state}{seen}, {where}); not verified"


def print_coverage(console: Console, answer: dict) -> None:
    style = "green" if answer["healthy"] else "red"
    console.print(
        f"[{style}]{answer['covered']} of {answer['eligible']} exportable mailboxes ({answer['share']}%)[/{style}] "
        f"have a verified export by {answer['deadline'][:10]}."
    )
    unlisted = [item["organizationId"] for item in answer["organizations"] if not item["listed"]]
    for organization_id in unlisted:
        console.print(f"  [red]![/red] {organization_id}: no run has listed its mailboxes yet, so none is covered.")
    forecast = answer["forecastComplete"]
    if answer["covered"] < answer["eligible"]:
        console.print(
            f"At the measured rate, and once WorkMail's 24-hour rule allows, all will have one by {forecast[:10]}."
            if forecast
            else "No verified exports measured recently: no forecast."
        )
    if answer["forecastMissesDeadline"]:
        console.print(f"[red]At this pace the deadline {answer['deadline'][:10]} will be missed.[/red]")
    for organization in answer["organizations"]:
        if not organization["missing"]:
            continue
        table = Table(title=f"Missing in {organization['organizationId']}", title_justify="left")
        for name in ("Mailbox", "Last outcome", "Error"):
            table.add_column(name, overflow="fold")
        for missing in organization["missing"]:
            table.add_row(
                missing["email"] or missing["entityId"],
                missing.get("lastOutcome") or _never_exported(missing),
                missing.get("lastError") or _elsewhere(missing.get("lastExportElsewhere")),
            )
        console.print(table)


def watch_view(snapshots: list[dict]) -> Group | Text:
    if not snapshots:
        return Text("No run in progress.")
    parts = []
    for snapshot in snapshots:
        header = Text(
            f"{snapshot['organizationId']} {snapshot['runId']}: {snapshot['slotsInUse']}/{snapshot['slots']} slots, "
            f"{snapshot['queued']} queued, {snapshot['deferred']} deferred, {snapshot['counts']['exported']} exported, "
            f"{snapshot['counts']['failed']} failed, running for {human_duration(snapshot['elapsedSeconds'])}"
        )
        table = Table(show_header=True)
        for name in ("Mailbox", "Job", "Running for", "Progress", ""):
            table.add_column(name)
        for job in snapshot["jobs"]:
            progress = job["progress"] or 0
            table.add_row(
                job["email"] or job["entityId"],
                job.get("jobId") or job["status"],
                human_duration(job["elapsedSeconds"]),
                ProgressBar(total=100, completed=progress, width=30),
                f"{progress}%" + (" (est.)" if job["progressSource"] == "estimate" else ""),
            )
        parts.extend([header, table])
    return Group(*parts)


def print_started(console: Console, started: dict) -> None:
    if not started.get("started"):
        console.print(f"Nothing to do for {started['organizationId']}: {started['reason']}.")
        return
    scope = f" ({started['namedMailboxes']} named mailboxes)" if "namedMailboxes" in started else ""
    console.print(f"[green]Started run {started['runId']}[/green] of {started['organizationId']}{scope}.")
    console.print(f"  execution: {started['executionArn']}", soft_wrap=True)
    if "failed" in started:
        console.print(f"  {started['retriedNow']} failed mailbox(es) retried now: {', '.join(started['failed'])}")
    if started.get("waiting"):
        console.print(
            f"  {started['waiting']} mailbox(es) are inside WorkMail's 24-hour window; the run defers them "
            f"(the first opens at {started['nextEligibleAt']})."
        )
    console.print("  Follow it with `workmail-backup watch`.")
