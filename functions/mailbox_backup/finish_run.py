"""FinishRun: close an organization's run and record its summary.

Also the landing place of the state machine's catch: a run that failed still gets a
summary, with the error that stopped it.
"""

import contextlib
import json
from collections import Counter

from aws_lambda_powertools.utilities.typing import LambdaContext

from mailbox_backup import inputs
from mailbox_backup.clock import utc_now
from mailbox_backup.config import load_settings
from mailbox_backup.ledger import Ledger, iso
from mailbox_backup.observability import logger

OUTCOME_COUNTERS = {"EXPORTED": "exported", "FAILED": "failed", "SKIPPED": "skipped"}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: LambdaContext) -> dict:
    organization_id = inputs.organization_id(event)
    run_id = inputs.run_id(event)
    logger.append_keys(organization_id=organization_id, run_id=run_id)
    return finish_run(Ledger(load_settings().ledger_table), organization_id, run_id, _error_text(event))


def finish_run(ledger: Ledger, organization_id: str, run_id: str, error: str | None = None) -> dict:
    counts, skip_reasons = _summarize(ledger, organization_id, run_id)
    run = ledger.get_run(organization_id, run_id)
    status = "FAILED" if error else "SUCCEEDED"
    fields = {
        "status": status,
        "endedAt": iso(utc_now()),
        "counts": dict(counts),
        "skipReasons": dict(skip_reasons),
        "error": error,
    }
    if run is None:
        # The run failed before it was planned; record it so that the failure is visible.
        ledger.create_run({"organizationId": organization_id, "runId": run_id, "startedAt": fields["endedAt"]})
    ledger.update_run(organization_id, run_id, fields)
    logger.info("Run finished", extra={"status": status, "counts": dict(counts), "error": error})
    return {
        "organizationId": organization_id,
        "runId": run_id,
        "status": status,
        "counts": dict(counts),
        "error": error,
    }


def _summarize(ledger: Ledger, organization_id: str, run_id: str) -> tuple[Counter, Counter]:
    """Count the run's outcomes from its tasks: once per run, outside the polling loop."""
    counts: Counter = Counter({"total": 0, "exported": 0, "failed": 0, "deferred": 0, "skipped": 0})
    skip_reasons: Counter = Counter()
    for task in ledger.tasks(organization_id, run_id):
        counts["total"] += 1
        status = task.get("status")
        if status in OUTCOME_COUNTERS:
            counts[OUTCOME_COUNTERS[status]] += 1
        else:
            # Still queued, deferred or running when the run ended: carried to the next run.
            counts["deferred"] += 1
        if status == "SKIPPED":
            skip_reasons[task.get("reasonCategory") or task.get("reason", "unknown")] += 1
    return counts, skip_reasons


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
