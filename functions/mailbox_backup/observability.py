"""Logs, traces and metrics every function shares, and the run summary sent to operators.

Service name, metrics namespace and log level come from the template (POWERTOOLS_* variables).
Metrics are written as CloudWatch embedded metric format (EMF) lines in the function's log, so
they need no API call; every metric carries the organization id as a dimension.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

# The template sets POWERTOOLS_SERVICE_NAME to this too. Powertools reads it when the logger is
# built, at import; the local mode imports this module before any function's environment is set.
SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "workmail-backup"

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics()

ORGANIZATION_DIMENSION = "OrganizationId"


@dataclass(frozen=True)
class RunReport:
    """What a run did, in the numbers the metrics, the alarms and the summary message use."""

    organization_id: str
    run_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime
    counts: dict[str, int]
    bytes_exported: int
    overdue_mailboxes: int
    failures: list[tuple[str, str]] = field(default_factory=list)  # (mailbox, reason)
    error: str | None = None
    # A night left to an earlier run: why, and that run's id.
    reason: str | None = None
    left_to_run_id: str | None = None

    @property
    def duration_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() if self.started_at else 0.0


def _is_disabled() -> bool:
    # Powertools then never flushes, so metrics added anyway would pile up across invocations.
    return os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true"


def _configure_from_environment(sink: Metrics) -> None:
    """Namespace and service as the invoked function's environment says, if the sink has none.

    Powertools reads them when ``metrics`` is built, at import; a process that hosts several
    functions (the local mode) may import this module before any function's environment is set.
    """
    sink.namespace = sink.namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE")
    sink.service = sink.service or os.environ.get("POWERTOOLS_SERVICE_NAME")


def record_run_metrics(sink: Metrics, report: RunReport) -> None:
    """The per-run metrics the dashboard plots and the alarms watch."""
    if _is_disabled():
        return
    _configure_from_environment(sink)
    sink.add_dimension(name=ORGANIZATION_DIMENSION, value=report.organization_id)
    counts = report.counts
    sink.add_metric(name="ExportsStarted", unit=MetricUnit.Count, value=counts.get("started", 0))
    sink.add_metric(name="ExportsSucceeded", unit=MetricUnit.Count, value=counts.get("exported", 0))
    sink.add_metric(name="ExportsFailed", unit=MetricUnit.Count, value=counts.get("failed", 0))
    sink.add_metric(name="ExportsDeferred", unit=MetricUnit.Count, value=counts.get("deferred", 0))
    sink.add_metric(name="BytesExported", unit=MetricUnit.Bytes, value=report.bytes_exported)
    sink.add_metric(name="MailboxesOverdue", unit=MetricUnit.Count, value=report.overdue_mailboxes)
    sink.add_metric(name="RunDuration", unit=MetricUnit.Seconds, value=report.duration_seconds)
    sink.add_metric(name="RunsSucceeded", unit=MetricUnit.Count, value=1 if report.status == "SUCCEEDED" else 0)
    sink.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=0 if report.status == "SUCCEEDED" else 1)
    _record_for_alarms(
        sink, (("ExportsFailed", counts.get("failed", 0)), ("MailboxesOverdue", report.overdue_mailboxes))
    )


def _record_for_alarms(sink: Metrics, counts: Iterable[tuple[str, int]]) -> None:
    """The metrics alarms watch, again with the service dimension alone.

    CloudWatch alarms cannot search across dimension values, and the organizations are a list
    parameter that the template cannot turn into one alarm each.
    """
    service = {"service": sink.service} if sink.service else {}
    for name, count in counts:
        with single_metric(
            name=name, unit=MetricUnit.Count, value=count, namespace=sink.namespace, default_dimensions=service
        ):
            pass


def record_slot_utilization(
    sink: Metrics, organization_id: str, running: int, overrunning: int, max_concurrent: int
) -> None:
    """Share of the configured export slots this controller pass left busy, and how many jobs overrun."""
    if _is_disabled():
        return
    _configure_from_environment(sink)
    sink.add_dimension(name=ORGANIZATION_DIMENSION, value=organization_id)
    sink.add_metric(name="SlotUtilization", unit=MetricUnit.Percent, value=100 * running / max(max_concurrent, 1))
    sink.add_metric(name="ExportsRunning", unit=MetricUnit.Count, value=running)
    sink.add_metric(name="ExportsOverrunning", unit=MetricUnit.Count, value=overrunning)
    _record_for_alarms(sink, (("ExportsOverrunning", overrunning),))


def summary_subject(report: RunReport) -> str:
    """An e-mail subject of at most 100 characters, as SNS requires."""
    succeeded = "with failures" if report.counts.get("failed") else "OK"
    verdict = {"SUCCEEDED": succeeded, "SKIPPED": "SKIPPED"}.get(report.status, "FAILED")
    return f"workmail-backup {report.run_id} {verdict}: {report.organization_id}"[:100]


def summary_message(report: RunReport, where_to_look: Iterable[str], max_failures: int = 20) -> str:
    """The run summary for operators: counts, each failure with its reason, and where to look next."""
    if report.status == "SKIPPED":
        return _skipped_night_message(report, where_to_look)

    counts = report.counts
    lines = [
        f"Run {report.run_id} of organization {report.organization_id}: {report.status}.",
        f"Duration: {report.duration_seconds / 3600:.1f} h.",
        (
            f"Exported {counts.get('exported', 0)} of {counts.get('total', 0)} mailboxes; "
            f"failed {counts.get('failed', 0)}, deferred {counts.get('deferred', 0)}, "
            f"skipped {counts.get('skipped', 0)}. {report.bytes_exported:,} bytes exported."
        ),
        f"Mailboxes overdue (no verified export recently): {report.overdue_mailboxes}.",
    ]
    if report.error:
        lines += ["", f"The run stopped early: {report.error}"]
    if report.failures:
        lines += ["", "Failed exports:"]
        lines += [f"- {mailbox}: {reason}" for mailbox, reason in report.failures[:max_failures]]
        if len(report.failures) > max_failures:
            lines.append(f"- and {len(report.failures) - max_failures} more.")
    lines += ["", "Where to look:"] + [f"- {place}" for place in where_to_look]
    return "\n".join(lines)


def _skipped_night_message(report: RunReport, where_to_look: Iterable[str]) -> str:
    lines = [
        f"Run {report.run_id} of organization {report.organization_id}: SKIPPED.",
        f"Why: {report.reason}.",
        f"Mailboxes overdue (no verified export recently): {report.overdue_mailboxes}.",
        "",
        "Where to look:",
    ]
    return "\n".join(lines + [f"- {place}" for place in where_to_look])
