"""The two things an operator can ask the backup to do: start a run now, and retry the failed.

Both check first what would stop the run from doing anything useful (a run already open,
WorkMail's one-export-per-24-hours rule), so the answer is clear before anything starts.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from mailbox_backup import naming
from mailbox_backup.clock import utc_now
from mailbox_backup.config import DEFAULT_DEFER_HORIZON_HOURS, REQUEST_START_GRACE
from mailbox_backup.ledger import iso, parse_iso
from workmail_backup.ops.backend import Backend
from workmail_backup.ops.errors import InvalidRequestError, OperationsError
from workmail_backup.ops.queries import (
    allowed_again,
    execution_of,
    is_exportable,
    is_stuck,
    skip_reason_of,
)

# The mailboxes a run names are kept in its ledger item, which DynamoDB caps at 400 KB.
MAX_NAMED_MAILBOXES = 5_000


class RunRefusedError(OperationsError):
    """Starting a run now would do nothing useful; the message says why and when it will."""


def start_on_demand(backend: Backend, organization_id: str | None = None, mailboxes: Sequence[str] = ()) -> dict:
    """Start an on-demand run of one organization, or of the mailboxes named, now.

    Refused when a run is open or no mailbox it would cover may be exported yet.
    """
    _refuse_if_cannot_start(backend)
    org = _one_organization(backend, organization_id)
    _refuse_if_open(backend, org)

    known = list(backend.ledger.mailboxes(org))
    chosen = _named_mailboxes(known, org, mailboxes) if mailboxes else list(filter(is_exportable, known))
    eligible, waiting = _split_by_window(chosen, utc_now())
    if chosen and not eligible:
        whose = "Every mailbox named" if mailboxes else f"Every mailbox of {org}"
        raise RunRefusedError(
            f"{whose} had an export started in the last 24 hours (by this backup or another tool, whatever its "
            "outcome) and WorkMail allows one export per mailbox per 24 hours; "
            f"the first becomes eligible at {_first_eligible(waiting)}. Nothing started."
        )
    started = _start(backend, org, [mailbox["entityId"] for mailbox in chosen] if mailboxes else None)
    return {**started, "eligibleNow": len(eligible), **_waiting_in_run(waiting)}


def retry_failed(backend: Backend, organization_id: str | None = None) -> dict:
    """Start a run of exactly the mailboxes whose last export failed."""
    _refuse_if_cannot_start(backend)
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
        **_start(backend, org, [mailbox["entityId"] for mailbox in failed]),
        "failed": [_label(mailbox) for mailbox in failed],
        "retriedNow": len(eligible),
        **_waiting_in_run(waiting),
    }


def _some_of(names: list[str], shown: int = 5, longest: int = 80) -> str:
    """A few of the names, each cut to a readable length: the error stays one line for any list."""
    cut = [name if len(name) <= longest else name[: longest - 1] + "…" for name in names[:shown]]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(cut) + more


def _named_mailboxes(known: list[dict], organization_id: str, names: Sequence[str]) -> list[dict]:
    """The ledger's mailboxes for the e-mail addresses or entity ids given; bad names are refused together."""
    wanted = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    if len(wanted) > MAX_NAMED_MAILBOXES:
        raise InvalidRequestError(
            f"{len(wanted)} mailboxes named; a run names at most {MAX_NAMED_MAILBOXES:,} (its ledger item holds "
            "400 KB). Start the whole organization instead, or split the list."
        )
    index = {}
    for mailbox in known:
        index[mailbox["entityId"].lower()] = mailbox
        if mailbox.get("email"):
            index[mailbox["email"].lower()] = mailbox

    unknown = [name for name in wanted if name.lower() not in index]
    if unknown:
        raise InvalidRequestError(
            f"Not a mailbox of {organization_id} in the ledger: {_some_of(unknown)}. Give e-mail addresses or "
            "entity ids (`workmail-backup mailboxes` lists them); a mailbox added since the last run is exported "
            "by a run of the whole organization."
        )
    chosen = list({index[name.lower()]["entityId"]: index[name.lower()] for name in wanted}.values())
    not_exportable = [mailbox for mailbox in chosen if not is_exportable(mailbox)]
    if not_exportable:
        listed = ", ".join(f"{_label(mailbox)} ({skip_reason_of(mailbox)})" for mailbox in not_exportable)
        raise InvalidRequestError(f"WorkMail exports only enabled mailboxes; leave out {listed}.")
    return chosen


def _label(mailbox: dict) -> str:
    return mailbox.get("email") or mailbox["entityId"]


def _refuse_if_cannot_start(backend: Backend) -> None:
    # Asked before the ledger, so that no answer about the 24-hour rule suggests a start could work.
    if backend.cannot_start_because:
        raise OperationsError(backend.cannot_start_because)
    backend.executions.require_state_machine()


def _one_organization(backend: Backend, organization_id: str | None) -> str:
    organizations = backend.organizations(organization_id)
    if len(organizations) != 1:
        listed = ", ".join(organizations) or "none"
        raise InvalidRequestError(f"Say which organization to start with --org (known: {listed}).")
    return organizations[0]


def _refuse_if_open(backend: Backend, organization_id: str, besides: str | None = None) -> None:
    """Refuse while another run of the organization is open and something carries it on.

    A start asks twice: before it records its run, and again after (``besides`` its own), since
    two starts can both pass the first question before either records anything. A start that
    sees another run then steps back: at worst both do, never do both go on.
    """
    for run in backend.ledger.open_runs(organization_id):
        if run["runId"] != besides and not _abandoned(backend, run):
            raise _second_run_refused(organization_id, run)


def _second_run_refused(organization_id: str, run: dict) -> RunRefusedError:
    return RunRefusedError(
        f"Run {run['runId']} of {organization_id} is {run['status']} since {run.get('startedAt')}; "
        "a second run would take the same mailboxes and the same ten export slots, so wait for it "
        "(`workmail-backup watch`)."
    )


def _abandoned(backend: Backend, run: dict) -> bool:
    """A run left open in the ledger that nothing carries on: its execution has ended (stopped by
    hand, say) or is no longer known, or it was requested long ago and its execution never
    started. It exports nothing more, so it must not stop a new run; `status` names it as stuck."""
    if not run.get("executionArn"):
        requested_at = run.get("startedAt")
        return bool(requested_at) and utc_now() - parse_iso(requested_at) > REQUEST_START_GRACE
    return is_stuck({"status": run["status"], "execution": execution_of(backend, run)})


def _split_by_window(mailboxes: list[dict], now: datetime) -> tuple[list[dict], list[dict]]:
    """Mailboxes WorkMail accepts now, and those still inside 24 hours of their last start."""
    eligible, waiting = [], []
    for mailbox in mailboxes:
        (waiting if allowed_again(mailbox) > now else eligible).append(mailbox)
    return eligible, waiting


def _first_eligible(waiting: list[dict]) -> str:
    return iso(min(allowed_again(mailbox) for mailbox in waiting))


def _waiting_in_run(waiting: list[dict]) -> dict:
    """Of the mailboxes inside their 24-hour window, those the run waits for, and those it leaves to
    the next run because their window opens beyond the run's horizon."""
    horizon = utc_now() + timedelta(hours=DEFAULT_DEFER_HORIZON_HOURS)
    deferred = [mailbox for mailbox in waiting if allowed_again(mailbox) <= horizon]
    answer = {"waiting": len(waiting), "deferred": len(deferred), "leftToNextRun": len(waiting) - len(deferred)}
    if deferred:
        answer["nextEligibleAt"] = _first_eligible(deferred)
    return answer


def _start(backend: Backend, organization_id: str, mailbox_ids: list[str] | None) -> dict:
    """Start the execution; a run of named mailboxes is recorded first, with its list, for StartRun to plan."""
    run_id = naming.on_demand_run_id(utc_now())
    _request(backend, organization_id, run_id, mailbox_ids)
    name = naming.execution_name(organization_id, run_id)
    try:
        execution_arn = backend.executions.start(name, {"organizationId": organization_id, "runId": run_id})
    except Exception as error:
        backend.ledger.withdraw_run(organization_id, run_id)
        if isinstance(error, ClientError) and error.response["Error"]["Code"] == "ExecutionAlreadyExists":
            raise RunRefusedError(f"Run {run_id} was started a moment ago; wait a second and check `status`.") from None
        raise
    backend.ledger.update_run(organization_id, run_id, {"executionArn": execution_arn})
    started = {"organizationId": organization_id, "started": True, "runId": run_id, "executionArn": execution_arn}
    return started if mailbox_ids is None else {**started, "namedMailboxes": len(mailbox_ids)}


def _request(backend: Backend, organization_id: str, run_id: str, mailbox_ids: list[str] | None) -> None:
    """Record the run as requested before its execution starts: a second start meanwhile finds it open.

    The list of named mailboxes lives here too, not in the execution's input, which stays a pair of ids.
    """
    run = {"organizationId": organization_id, "runId": run_id, "status": "REQUESTED", "startedAt": iso(utc_now())}
    if mailbox_ids is not None:
        run["requestedMailboxes"] = mailbox_ids
    if not backend.ledger.create_run(run):
        raise RunRefusedError(f"Run {run_id} was started a moment ago; wait a second and check `status`.")
    try:
        _refuse_if_open(backend, organization_id, besides=run_id)
    except RunRefusedError:
        backend.ledger.withdraw_run(organization_id, run_id)
        raise
