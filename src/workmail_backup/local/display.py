"""What a person sees during and after a local run."""

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from mailbox_backup.ledger import iso


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
            detail = f"running {running:2d}  simulated {iso(environment.clock.now())}"
            if organization_id not in self._bars:
                self._bars[organization_id] = self._progress.add_task(organization_id, total=total, detail=detail)
            self._progress.update(self._bars[organization_id], completed=done, total=total, detail=detail)


def _latest_run(environment, organization_id: str) -> dict | None:
    runs = environment.ledger.runs(organization_id, newest_first=True, limit=1)
    return runs[0] if runs else None


def print_summary(console: Console, result) -> None:
    table = Table(title=f"Run {result.run_id}")
    for column in ("Organization", "Status", "Exported", "Failed", "Deferred", "Skipped", "Peak running"):
        table.add_column(column, justify="right" if column not in ("Organization", "Status") else "left")
    for organization in result.organizations:
        counts = organization.run.get("counts", {})
        table.add_row(
            organization.organization_id,
            str(organization.run.get("status", "?")),
            *(str(counts.get(name, 0)) for name in ("exported", "failed", "deferred", "skipped")),
            str(organization.peak_running),
        )
    console.print(table)

    simulated = result.simulated_end - result.simulated_start
    console.print(
        f"Simulated time: {simulated.total_seconds() / 3600:.1f} h "
        f"({iso(result.simulated_start)} to {iso(result.simulated_end)}); wall time: {result.wall_seconds:.1f} s"
    )
    for organization in result.organizations:
        for reason, count in sorted(organization.run.get("skipReasons", {}).items()):
            console.print(f"  skipped {count:4d} in {organization.organization_id}: {reason}")
        if organization.run.get("error"):
            console.print(f"[red]  {organization.organization_id} failed: {organization.run['error']}[/red]")
