"""The two things an operator can ask the backup to do: start a run now, and retry the failed.

Both check first what would stop the run from doing anything useful (a run already open,
WorkMail's one-export-per-24-hours rule), so the answer is clear before anything starts.
"""

from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from mailbox_backup import naming
from mailbox_backup.clock import utc_now
from mailbox_backup.ledger import iso, parse_iso
from workmail_backup.ops.backend import Backend
from workmail_backup.ops.errors import InvalidRequestError, OperationsError
from workmail_backup.ops.queries import current_run, is_exportable

# WorkMail allows one export per mailbox per 24 hours, counted from the previous start.
EXPORT_INTERVAL = timedelta(hours=24)


class RunRefusedError(OperationsError):
    """Starting a run now would do nothing useful; the message says why and when it will."""


def start_on_demand(backend: Backend, organization_id: str | None = None) -> dict:
    """Start an on-demand run of one organization, unless a run is open or no mailbox may be exported."""
    org = _one_organization(backend, organization_id)
    _refuse_if_open(backend, org)

    mailboxes = [mailbox for mailbox in backend.ledger.mailboxes(org) if is_exportable(mailbox)]
    eligible, waiting = _split_by_window(mailboxes, utc_now())
    if mailboxes and not eligible:
        raise RunRefusedError(
            f"Every mailbox of {org} was exported in the last 24 hours and WorkMail allows one export per "
            f"mailbox per 24 hours; the first becomes eligible at {_first_eligible(waiting)}. Nothing started."
        )
    return {**_start(backend, org), "eligibleNow": len(eligible), "waiting": len(waiting), **_next(waiting)}


def retry_failed(backend: Backend, organization_id: str | None = None) -> dict:
    """Start a run for the mailboxes whose last export failed; they are first in its queue."""
    org = _one_organization(backend, organization_id)
    failed = [mailbox for mailbox in backend.ledger.mailboxes(org) if mailbox.get("lastOutcome") == "FAILED"]
    if not failed:
        return {"organizationId": org, "started": False, "failed": [], "reason": "no mailbox's last export failed"}
    _refuse_if_open(backend, org)

    eligible, waiting = _split_by_window(failed, utc_now())
    if not eligible:
        raise RunRefusedError(
            f"The {len(failed)} failed mailbox(es) of {org} were started less than 24 hours ago and WorkMail "
            f"allows one export per mailbox per 24 hours; the first can be retried at {_first_eligible(waiting)}."
        )
    return {
        **_start(backend, org),
        "failed": [mailbox.get("email") or mailbox["entityId"] for mailbox in failed],
        "retriedNow": len(eligible),
        "waiting": len(waiting),
        **_next(waiting),
    }


def _one_organization(backend: Backend, organization_id: str | None) -> str:
    organizations = backend.organizations(organization_id)
    if len(organizations) != 1:
        listed = ", ".join(organizations) or "none"
        raise InvalidRequestError(f"Say which organization to start with --org (known: {listed}).")
    return organizations[0]


def _refuse_if_open(backend: Backend, organization_id: str) -> None:
    run = current_run(backend, organization_id)
    if run:
        raise RunRefusedError(
            f"Run {run['runId']} of {organization_id} is {run['status']} since {run.get('startedAt')}; "
            "WorkMail runs one export per mailbox at a time, so wait for it (`workmail-backup watch`)."
        )


def _split_by_window(mailboxes: list[dict], now: datetime) -> tuple[list[dict], list[dict]]:
    """Mailboxes WorkMail accepts now, and those still inside 24 hours of their last start."""
    eligible, waiting = [], []
    for mailbox in mailboxes:
        opens = _window_opens(mailbox)
        (waiting if opens and opens > now else eligible).append(mailbox)
    return eligible, waiting


def _window_opens(mailbox: dict) -> datetime | None:
    started = mailbox.get("lastStartedAt")
    return parse_iso(started) + EXPORT_INTERVAL if started else None


def _first_eligible(waiting: list[dict]) -> str:
    return iso(min(_window_opens(mailbox) for mailbox in waiting))


def _next(waiting: list[dict]) -> dict:
    return {"nextEligibleAt": _first_eligible(waiting)} if waiting else {}


def _start(backend: Backend, organization_id: str) -> dict:
    run_id = naming.on_demand_run_id(utc_now())
    name = naming.execution_name(organization_id, run_id)
    try:
        execution_arn = backend.executions.start(name, {"organizationId": organization_id, "runId": run_id})
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
            raise RunRefusedError(f"Run {run_id} was started a moment ago; wait a second and check `status`.") from None
        raise
    return {"organizationId": organization_id, "started": True, "runId": run_id, "executionArn": execution_arn}
