"""FinishRun: close an organization's run and record its summary.

Also the landing place of the state machine's catch: a run that failed still gets a
summary, with the error that stopped it.
"""

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_lambda_powertools.utilities.typing import LambdaContext

from mailbox_backup import inputs, workmail
from mailbox_backup.clock import utc_now
from mailbox_backup.config import load_settings
from mailbox_backup.ledger import Ledger, iso, parse_iso
from mailbox_backup.observability import logger, metrics, tracer
from mailbox_backup.run_report import report_run

SECONDS_PER_DAY = 86_400
OUTCOME_COUNTERS = {"EXPORTED": "exported", "FAILED": "failed", "SKIPPED": "skipped"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    organization_id, run_id = inputs.run_of(event)
    ledger = Ledger(load_settings().ledger_table)

    result = finish_run(ledger, organization_id, run_id, _error_text(event), event.get("executionArn"))

    report_run(ledger, metrics, organization_id, run_id)
    return result


def finish_run(
    ledger: Ledger, organization_id: str, run_id: str, error: str | None = None, execution_arn: str | None = None
) -> dict:
    run = ledger.get_run(organization_id, run_id)
    if run and run.get("status") == "SKIPPED" and not error:
        # A night left to an earlier run is recorded as StartRun wrote it; only its summary is due.
        return {"organizationId": organization_id, "runId": run_id, "status": "SKIPPED", "counts": {}, "error": None}

    summary = _summarize(ledger, organization_id, run_id)
    status = "FAILED" if error else "SUCCEEDED"
    fields = {
        "status": status,
        "endedAt": iso(utc_now()),
        "counts": dict(summary.counts),
        "skipReasons": dict(summary.skip_reasons),
        "forecast": _forecast(run or {}, summary),
        "error": error,
    }
    if run is None:
        # The run failed before it was planned; record it so that the failure is visible.
        ledger.create_run(
            {
                "organizationId": organization_id,
                "runId": run_id,
                "startedAt": fields["endedAt"],
                "executionArn": execution_arn,
            }
        )
    ledger.update_run(organization_id, run_id, fields)
    logger.info("Run finished", extra={"status": status, "counts": dict(summary.counts), "error": error})
    return {
        "organizationId": organization_id,
        "runId": run_id,
        "status": status,
        "counts": dict(summary.counts),
        "error": error,
    }


@dataclass
class _Summary:
    counts: Counter = field(
        default_factory=lambda: Counter({"total": 0, "exported": 0, "failed": 0, "deferred": 0, "skipped": 0})
    )
    skip_reasons: Counter = field(default_factory=Counter)
    exportable: int = 0
    never_exported: int = 0
    # When WorkMail's 24-hour rule lets the last of the never-exported mailboxes be tried again.
    last_allowed: datetime | None = None


def _summarize(ledger: Ledger, organization_id: str, run_id: str) -> _Summary:
    """Count the run's outcomes from its tasks: once per run, outside the polling loop."""
    summary = _Summary()
    for task in ledger.tasks(organization_id, run_id):
        summary.counts["total"] += 1
        status = task.get("status")
        if status in OUTCOME_COUNTERS:
            summary.counts[OUTCOME_COUNTERS[status]] += 1
        elif status in ("STARTING", "RUNNING"):
            # A run stopped early leaves its started jobs running; WorkMail finishes them.
            summary.counts["running"] += 1
        else:
            # Still queued or deferred when the run ended: carried to the next run.
            summary.counts["deferred"] += 1
        if status == "SKIPPED":
            summary.skip_reasons[task.get("reasonCategory") or task.get("reason", "unknown")] += 1
        if "previouslyExported" in task:
            # An enabled mailbox, planned for export or held back by the 24-hour rule, whatever
            # happened to it in this run.
            summary.exportable += 1
            if status != "EXPORTED" and not task.get("previouslyExported"):
                summary.never_exported += 1
                summary.last_allowed = max(filter(None, (summary.last_allowed, _allowed_again(task))), default=None)
    return summary


def _allowed_again(task: dict) -> datetime | None:
    """A start in this run, or a deferral's not-before time, holds the mailbox's next export back."""
    if task.get("startedAt"):
        return workmail.next_start_after(parse_iso(task["startedAt"]))
    return parse_iso(task["notBefore"]) if task.get("notBefore") else None


def _forecast(run: dict, summary: _Summary) -> dict | None:
    """At the measured export rate, how long a full pass takes and when every mailbox is covered.

    The rate is what the slots can do (slots x a day / the mean export duration), not what
    this run happened to export, so a short run with an empty queue does not look slow.
    """
    if run.get("requestedMailboxes"):
        # A run of a few named mailboxes says nothing of how long the whole organization takes.
        return None
    counts = run.get("counts", {})
    measured_seconds, measured_count = counts.get("measuredExportSeconds", 0), counts.get("measuredExportCount", 0)
    if not measured_count or not summary.exportable:
        return None
    slots = int(run.get("maxConcurrentExports") or 10)
    mean_seconds = measured_seconds / measured_count
    per_day = slots * SECONDS_PER_DAY / mean_seconds
    at_rate = utc_now() + timedelta(days=summary.never_exported / per_day)
    return {
        "meanExportSeconds": round(mean_seconds, 1),
        "mailboxesPerDay": round(per_day, 1),
        "fullPassDays": round(summary.exportable / per_day, 2),
        "mailboxesWithoutExport": summary.never_exported,
        "allExportedBy": iso(max(filter(None, (at_rate, summary.last_allowed)))),
    }


def _error_text(event: dict) -> str | None:
    """The error Step Functions caught, as one readable line."""
    error = event.get("error")
    if not error:
        return None
    if isinstance(error, dict):
        cause = error.get("Cause", "")
        with contextlib.suppress(ValueError, AttributeError):
            cause = json.loads(cause).get("errorMessage", cause)
        return f"{error.get('Error', 'Error')}: {cause}".strip(": ")
    return str(error)
