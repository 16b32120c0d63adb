"""Rich tables for the operations commands: what a person reads instead of the JSON."""

import os
from datetime import timedelta
from enum import StrEnum

from rich.console import Console, Group
from rich.markup import escape
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mailbox_backup.config import DEFAULT_DEFER_HORIZON_HOURS
from workmail_backup.ops.queries import how_it_ended
from workmail_backup.ops.values import human_duration, human_size, s3_uri

STATUS_STYLES = {
    "SKIPPED": "dim",
    "SUCCEEDED": "green",
    "FAILED": "red",
    "RUNNING": "cyan",
    "PLANNING": "cyan",
    "REQUESTED": "cyan",
}
OUTCOME_STYLES = {"EXPORTED": "green", "FAILED": "red", "SKIPPED": "dim", "DEFERRED": "yellow", "RUNNING": "cyan"}


class ReportFormat(StrEnum):
    html = "html"
    csv = "csv"
    json = "json"


def _plain(*cells: object) -> list:
    """Table cells as text: an error message holding ``[/x]`` is shown as stored, not read as Rich markup."""
    return [Text(cell) if isinstance(cell, str) else cell for cell in cells]


def _styled(value: str | None, styles: dict[str, str]) -> Text:
    return Text(value or "-", style=styles.get(value or "", ""))


def _run_name(run: dict) -> Text:
    """The run id, and how many mailboxes it covers when it was asked for named mailboxes only."""
    name = Text(run["runId"])
    if run.get("requestedMailboxes"):
        name.append(f" ({run['requestedMailboxes']} named mailboxes)", style="dim")
    return name


def _outcomes(run: dict) -> str:
    """``195 exported, 12 skipped``: the counts a run has, in the order people ask about them."""
    names = ("exported", "failed", "running", "deferred", "skipped")
    counted = ", ".join(f"{run['counts'][name]} {name}" for name in names if run["counts"].get(name))
    return counted or ("nothing yet" if run.get("endedAt") is None else "no mailbox")


def _status_of(run: dict, separator: str = " ") -> Text:
    """The run's status, and its execution's when the two disagree (a run left open by a dead execution)."""
    text = _styled(run["status"], STATUS_STYLES)
    execution = (run.get("execution") or {}).get("status")
    if execution and execution != run["status"]:
        style = "red" if execution in ("FAILED", "TIMED_OUT", "ABORTED") else ""
        text.append(f"{separator}(execution {execution})", style=style)
    return text


def print_status(console: Console, statuses: list[dict], source: str) -> None:
    if not statuses:
        console.print(f"No organization has a run in {escape(source)} yet.")
        return
    for status in statuses:
        console.print(f"[bold]Organization {status['organizationId']}[/bold]")
        _print_labelled_run(console, "Last run", status["last"])
        current = status["current"]
        _print_labelled_run(console, "Current run", current)
        if current:
            console.print(f"  {current['runningNow']} export(s) running now")
        for problem in status["problems"]:
            console.print(f"  [red]![/red] {escape(problem)}", soft_wrap=True)
        if status["healthy"]:
            console.print("  [green]healthy[/green]")


def _print_labelled_run(console: Console, label: str, run: dict | None) -> None:
    if run is None:
        console.print(f"  {label}: none")
        return
    console.print(Text.assemble(f"  {label}: ", _run_name(run)))
    console.print(Padding(_run_summary(run), (0, 0, 0, 4)))


def _run_summary(run: dict) -> Table:
    """One run as labelled lines: read at any terminal width, unlike a row of nine columns."""
    counts = run["counts"]
    execution = run.get("execution") or {}
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column(overflow="fold")
    summary.add_row(*_plain("Status", _status_of(run)))
    if run.get("reason"):
        summary.add_row(*_plain("Why", run["reason"]))
    took = human_duration(run.get("durationSeconds"))
    ended = f"ended {run['endedAt']}, took {took}" if run.get("endedAt") else f"still open after {took}"
    summary.add_row(*_plain("Started", f"{run.get('startedAt') or '-'}, {ended}"))
    summary.add_row(
        *_plain(
            "Mailboxes",
            f"{counts['exported']} exported, {counts['failed']} failed, {counts['deferred']} deferred, "
            f"{counts['skipped']} skipped" + (f", {counts['running']} still running" if counts.get("running") else ""),
        )
    )
    summary.add_row(
        *_plain("Execution", f"{execution.get('status') or 'unknown'} {run.get('executionArn') or ''}".strip())
    )
    return summary


def print_runs(console: Console, runs: list[dict]) -> None:
    if not runs:
        console.print("No run recorded yet.")
        return
    several = len({run["organizationId"] for run in runs}) > 1
    table = Table(title="Runs, newest first", title_justify="left")
    if several:
        table.add_column("Organization", overflow="fold")
    # Only the counts fold: a run id, status or time cut short answers nothing.
    for name in ("Run", "Status", "Started", "Took"):
        table.add_column(name, no_wrap=True)
    table.add_column("Mailboxes", overflow="fold")
    for run in runs:
        took = human_duration(run.get("durationSeconds"))
        row = [
            _run_name(run),
            # On two lines, so that an execution's note leaves the counts their width.
            _status_of(run, separator="\n"),
            _day_and_time(run.get("startedAt")),
            took if run.get("endedAt") else f"{took}\nso far",
            _outcomes(run),
        ]
        table.add_row(*_plain(*([run["organizationId"]] if several else []), *row))
    console.print(table)


def print_run_detail(console: Console, detail: dict) -> None:
    console.print(Text.assemble(("Run ", "bold"), _run_name(detail), f" of {detail['organizationId']}"), soft_wrap=True)
    summary = _run_summary(detail)
    if detail.get("pace"):
        summary.add_row(*_plain("Pace", _pace_sentence(detail["pace"])))
    prefix = _shared_folder([line["s3Object"] for line in detail["mailboxes"] if line.get("s3Object")])
    if prefix:
        summary.add_row(*_plain("Objects", f"under {prefix}"))
    console.print(summary)
    if detail.get("error"):
        console.print(f"[red]Error:[/red] {escape(detail['error'])}", soft_wrap=True)
    still_running = detail["counts"].get("running")
    if still_running and detail.get("endedAt"):
        console.print(
            f"{still_running} export(s) were still running when the run ended; WorkMail finishes them, but this "
            "backup has not verified them. The next run exports those mailboxes again once WorkMail allows.",
            soft_wrap=True,
        )
    for failure in detail["executionFailures"]:
        # Step Functions may leave any of these empty; a saved state keeps them as null.
        when = failure["timestamp"] or "an unknown time"
        console.print(
            f"[red]Failed state[/red] {escape(failure['state'] or '-')} at {when}: "
            f"{escape(failure['error'] or '-')}: {escape(failure['cause'] or '-')}",
            soft_wrap=True,
        )
    jobs = Table(title="Mailboxes", title_justify="left")
    for name in ("Mailbox", "Outcome", "Started", "Took", "Size", "Object / reason"):
        jobs.add_column(name, overflow="fold")
    for line in detail["mailboxes"]:
        jobs.add_row(
            *_plain(
                line["email"] or line["entityId"],
                _styled(line["outcome"], OUTCOME_STYLES),
                _day_and_time(line.get("startedAt")),
                human_duration(line.get("durationSeconds")),
                human_size(line.get("sizeBytes")) if line.get("sizeBytes") is not None else "",
                _object_or_reason(line, prefix),
            )
        )
    console.print(jobs)


def _day_and_time(moment: str | None) -> str:
    """``12-03 04:50:30`` for ``2026-12-03T04:50:30Z``, where the year is given nearby (the run id)."""
    return f"{moment[5:10]} {moment[11:19]}" if moment else ""


def _shared_folder(objects: list[str]) -> str:
    """The folder every object is in (a run's objects share one), so that rows show only the rest."""
    if not objects:
        return ""
    shared = os.path.commonprefix(objects)
    return shared[: shared.rfind("/") + 1]


def _object_or_reason(line: dict, prefix: str) -> str:
    if line["outcome"] == "EXPORTED" and line.get("s3Object"):
        return line["s3Object"].removeprefix(prefix)
    # The job id is the one handle on an export that left no object.
    job = f" (job {line['jobId']})" if line.get("jobId") else ""
    return (line.get("reason") or "") + job


def _pace_sentence(pace: dict) -> str:
    full_pass = human_duration(timedelta(days=pace["fullPassDays"]).total_seconds())
    return (
        f"a mean export took {human_duration(pace['meanExportSeconds'])}, so the slots export about "
        f"{round(pace['mailboxesPerDay']):,} mailboxes a day and a full pass takes about {full_pass}; "
        f"{pace['mailboxesWithoutExport']} exportable mailbox(es) still have no verified export"
        + (
            f"; this pace and WorkMail's 24-hour rule allow them all by {pace['allExportedBy']}."
            if pace["mailboxesWithoutExport"]
            else "."
        )
    )


def print_mailboxes(console: Console, mailboxes: list[dict], overdue: str | None, unlisted: list[str]) -> None:
    for organization_id in unlisted:
        console.print(f"[red]![/red] {organization_id}: no run has listed its mailboxes yet, so none can be checked.")
    if overdue is not None and not mailboxes:
        if not unlisted:
            console.print(f"[green]No mailbox's last verified export is older than {overdue}.[/green]")
        return
    title = f"Mailboxes whose last verified export is older than {overdue}" if overdue else "Mailboxes"
    table = Table(title=title, title_justify="left")
    # Only the last cell folds: an address or a time broken across lines is hard to read or to copy.
    table.add_column("Mailbox", no_wrap=True)
    table.add_column("Kind", overflow="fold")
    table.add_column("Last verified", no_wrap=True)
    table.add_column("Where it is, or why not", overflow="fold")
    for line in mailboxes:
        table.add_row(
            *_plain(
                line["email"] or line["entityId"],
                (line.get("kind") or "").lower(),
                _last_verified(line),
                _where_or_why(line),
            )
        )
    console.print(table)


def _last_verified(line: dict) -> str:
    if line.get("lastSuccessAt"):
        return f"{_minute(line['lastSuccessAt'])}\n{human_duration(line['ageSeconds'])} ago"
    return "never" if line["exportable"] else "not needed"


def _where_or_why(line: dict) -> Text:
    if not line["exportable"]:
        return Text(line["notExportableBecause"] or "", style="dim")
    if line.get("lastOutcome") == "FAILED":
        return Text(f"last export failed: {line.get('lastError') or 'no reason given'}", style="red")
    where = line.get("lastSuccessS3Object") or _elsewhere(line.get("lastExportElsewhere"))
    if not where and line.get("lastOutcome") == "SKIPPED" and line.get("lastError"):
        # Skipped in its last run (gone since the run was planned, say): that is the why.
        return Text(f"skipped: {line['lastError']}", style="dim")
    return Text(where)


def _minute(moment: str | None) -> str:
    """``2026-12-03 04:50`` for ``2026-12-03T04:50:30Z``; the JSON keeps the second."""
    return f"{moment[:10]} {moment[11:16]}" if moment else ""


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
        f"have a verified export by {_deadline_text(answer['deadline'])}."
    )
    unlisted = [item["organizationId"] for item in answer["organizations"] if not item["listed"]]
    for organization_id in unlisted:
        console.print(f"  [red]![/red] {organization_id}: no run has listed its mailboxes yet, so none is covered.")
    if answer["covered"] < answer["eligible"] or unlisted:
        console.print(_forecast_sentence(answer))
    for organization in answer["organizations"]:
        if not organization["missing"]:
            continue
        table = Table(title=f"Missing in {organization['organizationId']}", title_justify="left")
        for name in ("Mailbox", "Last outcome", "Why, or another tool's export"):
            table.add_column(name, overflow="fold")
        for missing in organization["missing"]:
            table.add_row(
                *_plain(
                    missing["email"] or missing["entityId"],
                    missing.get("lastOutcome") or _never_exported(missing),
                    missing.get("lastError") or _elsewhere(missing.get("lastExportElsewhere")),
                )
            )
        console.print(table)


def _deadline_text(deadline: str) -> str:
    """``2027-03-31`` for a deadline at the end of a day (as a typed day means), else the time."""
    return deadline[:10] if deadline.endswith("T23:59:59Z") else deadline


def _forecast_sentence(answer: dict) -> str:
    deadline = _deadline_text(answer["deadline"])
    if answer["deadlinePassed"]:
        missed = answer["eligible"] - answer["covered"]
        return f"[red]The deadline {deadline} has passed; {missed} mailbox(es) had no verified export by then.[/red]"
    if answer["forecastComplete"]:
        sentence = (
            "At the measured rate, and once WorkMail's 24-hour rule allows, all will have one by "
            f"{answer['forecastComplete'][:10]}."
        )
    else:
        sentence = f"No forecast: {answer['noForecastBecause']}."
    if answer["forecastMissesDeadline"] and answer["forecastComplete"]:
        sentence += f" [red]At this pace the deadline {deadline} will be missed.[/red]"
    elif answer["forecastMissesDeadline"]:
        sentence += f" [red]Nothing yet shows that the deadline {deadline} will be met.[/red]"
    return sentence


def watch_view(snapshots: list[dict]) -> Group | Text:
    if not snapshots:
        return Text("No run in progress.")
    parts = []
    for snapshot in snapshots:
        header = Text(
            f"{snapshot['runId']} of {snapshot['organizationId']}, running for "
            f"{human_duration(snapshot['elapsedSeconds'])}\n"
            f"{snapshot['slotsInUse']}/{snapshot['slots']} slots in use, {snapshot['queued']} queued, "
            f"{snapshot['deferred']} deferred, {snapshot['counts']['exported']} exported, "
            f"{snapshot['counts']['failed']} failed"
        )
        if snapshot["stuck"]:
            header.append(
                f"\n! its execution {how_it_ended(snapshot['execution'])}: nothing moves this run on; "
                "the jobs shown were running when it stopped (`status` says more)",
                style="red",
            )
        # The job ids are in `watch --once --json`; here the address and the bar get the width.
        table = Table(show_header=True)
        table.add_column("Mailbox", no_wrap=True)
        table.add_column("Running for", no_wrap=True)
        table.add_column("Progress", ratio=1)
        table.add_column("Done", no_wrap=True)
        for job in snapshot["jobs"]:
            progress = job["progress"] or 0
            table.add_row(
                *_plain(
                    job["email"] or job["entityId"],
                    human_duration(job["elapsedSeconds"]),
                    ProgressBar(total=100, completed=progress),
                    _progress_label(job, progress),
                )
            )
        parts.extend([header, *_overrun_lines(snapshot["jobs"]), table])
    return Group(*parts)


def _overrun_lines(jobs: list[dict]) -> list[Text]:
    return [
        Text.assemble(
            ("! ", "red"),
            f"{job['email'] or job['entityId']} has run {human_duration(job['elapsedSeconds'])}, "
            f"expected {human_duration(job['expectedSeconds'])}",
        )
        for job in jobs
        if job["overrunning"]
    ]


def _progress_label(job: dict, progress: int) -> str:
    if job["status"] == "STARTING":
        return "starting"
    return f"{progress}%" + (" (est.)" if job["progressSource"] == "estimate" else "")


def print_started(console: Console, started: dict) -> None:
    if not started.get("started"):
        console.print(f"Nothing to do for {started['organizationId']}: {escape(started['reason'])}.")
        return
    scope = f" ({started['namedMailboxes']} named mailboxes)" if "namedMailboxes" in started else ""
    console.print(f"[green]Started run {started['runId']}[/green] of {started['organizationId']}{scope}.")
    console.print(f"  execution: {started['executionArn']}", soft_wrap=True)
    if "failed" in started:
        retried = escape(", ".join(started["failed"]))
        console.print(f"  {started['retriedNow']} failed mailbox(es) retried now: {retried}", soft_wrap=True)
    if started.get("deferred"):
        console.print(
            f"  {started['deferred']} mailbox(es) are inside WorkMail's 24-hour window, which opens within "
            f"{DEFAULT_DEFER_HORIZON_HOURS} hours: the run waits for them (the first at {started['nextEligibleAt']})."
        )
    if started.get("leftToNextRun"):
        console.print(
            f"  {started['leftToNextRun']} mailbox(es) are inside WorkMail's 24-hour window for longer than that: "
            "the run skips them, and the next night's run exports them."
        )
    console.print("  Follow it with `workmail-backup watch`.")
