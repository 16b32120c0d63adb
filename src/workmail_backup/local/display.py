"""What a person sees during and after a local run."""

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from mailbox_backup.ledger import iso
from workmail_backup.ops.values import human_duration


class LiveProgress:
    """A progress bar per organization: mailboxes done out of the total, and jobs running."""

    def __init__(self, console: Console):
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
            transient=False,
        )
        self._bars: dict[str, int] = {}

    def __enter__(self) -> "LiveProgress":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._progress.__exit__(*exc_info)

    def update(self, environment) -> None:
        for organization_id in environment.organization_ids:
            run = _latest_run(environment, organization_id)
            if not run:
                continue
            counts = run.get("counts", {})
            done = sum(int(counts.get(name, 0)) for name in ("exported", "failed"))
            done += int(counts.get("skipped", 0))
            total = int(counts.get("total", 0)) or None
            running = sum(1 for job in environment.emulator.jobs(organization_id) if job.state == "RUNNING")
            # The date too: a scenario that runs for days must not look like one night.
            now = iso(environment.clock.now())
            detail = f"{running:2d} running, {now[5:10]} {now[11:16]} simulated"
            if organization_id not in self._bars:
                label = environment.organization_aliases[organization_id]
                self._bars[organization_id] = self._progress.add_task(label, total=total, detail=detail)
            self._progress.update(self._bars[organization_id], completed=done, total=total, detail=detail)


def _latest_run(environment, organization_id: str) -> dict | None:
    runs = environment.ledger.runs(organization_id, newest_first=True, limit=1)
    return runs[0] if runs else None


def print_summary(console: Console, result, aliases: dict[str, str]) -> None:
    """One column per organization, headed by its alias: an id is too long for a narrow terminal
    and, cut short, organizations whose ids differ at the end would all look the same."""
    table = Table(title=f"Run {result.run_id}", title_justify="left")
    table.add_column("")
    for organization in result.organizations:
        table.add_column(aliases.get(organization.organization_id, organization.organization_id), justify="right")

    def row(label: str, values) -> None:
        table.add_row(label, *(str(value) for value in values))

    organizations = result.organizations
    row("Status", (org.run.get("status", "?") for org in organizations))
    for counter in ("exported", "failed", "deferred", "skipped"):
        row(counter.capitalize(), (org.run.get("counts", {}).get(counter, 0) for org in organizations))
    row("Most jobs running at once", (org.peak_running for org in organizations))
    console.print(table)
    for organization in organizations:
        if organization.organization_id in aliases:
            console.print(f"{aliases[organization.organization_id]} is organization {organization.organization_id}")

    simulated = result.simulated_end - result.simulated_start
    console.print(f"Simulated time: {human_duration(simulated.total_seconds())}, from {iso(result.simulated_start)}")
    console.print(f"Wall time: {result.wall_seconds:.1f} s")
    for organization in organizations:
        _print_reasons(console, organization)


def _print_reasons(console: Console, organization) -> None:
    reasons = organization.run.get("skipReasons", {})
    if reasons:
        console.print(f"Skipped in {organization.organization_id}:")
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
            console.print(f"  {count:5d}  {escape(reason)}", soft_wrap=True)
    failed = [line for line in organization.mailboxes() if line["outcome"] == "FAILED"]
    if failed:
        console.print(f"Failed in {organization.organization_id}:")
        for line in failed:
            who = escape(line["email"] or line["entityId"])
            console.print(f"  {who}: {escape(line['reason'] or 'no reason given')}", soft_wrap=True)
    if organization.run.get("error"):
        error = escape(organization.run["error"])
        console.print(f"[red]{organization.organization_id} failed:[/red] {error}", soft_wrap=True)
