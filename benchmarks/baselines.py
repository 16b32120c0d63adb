"""Lambda handlers of the two baseline orchestrations the benchmark compares against.

They use the same ledger, planning and WorkMail calls as the real controller and differ
only in how the work is orchestrated, which is what the benchmark measures:

- fixed batches: start ten, wait until all ten have ended, start the next ten;
- a polling loop per mailbox inside a Map state with MaxConcurrency 10.
"""

from mailbox_backup import controller, workmail
from mailbox_backup.clock import utc_now
from mailbox_backup.config import load_settings
from mailbox_backup.ledger import Ledger


class SlotsFullError(Exception):
    """WorkMail refused the start: the Map iteration retries it later."""


def _pass(event: dict) -> controller.Pass:
    settings = load_settings()
    return controller.Pass(
        settings, Ledger(settings.ledger_table), workmail.client(), event["organizationId"], event["runId"], utc_now()
    )


def _poll_every_running_job(current: controller.Pass) -> None:
    # A baseline asks about every running job on every poll, whatever its expected end.
    for task in current.ledger.active_tasks(current.organization_id, current.run_id):
        controller._reconcile(current, {**task, "expectedEndAt": None})


def start_batch(event: dict, context) -> dict:
    """Start up to ten queued mailboxes; the batch machine calls this only when none run."""
    current = _pass(event)
    controller._start_into_free_slots(current, [])
    has_more = bool(current.ledger.ready_tasks(current.organization_id, current.run_id, 1))
    has_more = has_more or current.ledger.next_deferred_task(current.organization_id, current.run_id) is not None
    return {**_ids(event), "running": current.running, "hasMore": has_more}


def check_batch(event: dict, context) -> dict:
    """Record the batch's finished jobs; say whether any still runs."""
    current = _pass(event)
    _poll_every_running_job(current)
    has_more = bool(current.ledger.ready_tasks(current.organization_id, current.run_id, 1))
    has_more = has_more or current.ledger.next_deferred_task(current.organization_id, current.run_id) is not None
    return {**_ids(event), "running": current.running, "hasMore": has_more}


def list_mailboxes(event: dict, context) -> dict:
    """Every queued mailbox's id, in priority order: the list a Map state iterates over."""
    current = _pass(event)
    ready = current.ledger.ready_tasks(current.organization_id, current.run_id, 1_000_000)
    return {**_ids(event), "mailboxes": [task["entityId"] for task in ready]}


def start_one(event: dict, context) -> dict:
    """Start one mailbox's export (an iteration of the Map)."""
    current = _pass(event)
    task = current.ledger.get_task(current.organization_id, current.run_id, event["entityId"])
    if task["status"] in ("QUEUED", "DEFERRED"):
        starting = controller._starting_fields(current, task)
        if current.ledger.claim_task(task, starting):
            task = {**task, **starting}
    if task["status"] in ("QUEUED", "DEFERRED", "STARTING") and not controller._start(current, task):
        raise SlotsFullError(f"WorkMail refused to start {event['entityId']} now")
    return {**_ids(event), "entityId": event["entityId"]}


def check_one(event: dict, context) -> dict:
    """Poll one mailbox's job and record it if it has ended."""
    current = _pass(event)
    task = current.ledger.get_task(current.organization_id, current.run_id, event["entityId"])
    if task["status"] == "RUNNING":
        controller._reconcile(current, {**task, "expectedEndAt": None})
    return {**_ids(event), "entityId": event["entityId"], "running": current.running > 0}


def _ids(event: dict) -> dict:
    return {"organizationId": event["organizationId"], "runId": event["runId"]}
