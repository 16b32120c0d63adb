"""StartRun: plan one organization's run.

Lists every user and resource, decides for each mailbox whether it is exported now, later
in this run (inside WorkMail's 24-hour window), or not at all (and why), and writes one
task per mailbox into the ledger. The state machine receives ids and counts only.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from mailbox_backup import inputs, priority, workmail
from mailbox_backup.clock import utc_now
from mailbox_backup.config import REQUEST_START_GRACE, Settings, load_settings
from mailbox_backup.errors import OrganizationUnavailableError
from mailbox_backup.ledger import Ledger, iso, parse_iso, queue_partition
from mailbox_backup.observability import logger, metrics, tracer

# Jobs this tool starts carry this description, which tells them apart from others' jobs.
JOB_DESCRIPTION_PREFIX = "workmail-backup run "
# SKIPPED: a night that left the organization to an earlier run still working through its queue.
FINISHED_RUN_STATES = ("SUCCEEDED", "FAILED", "SKIPPED")
# An open run whose controller has not passed for this long is taken for dead (an execution
# stopped by hand leaves its run open in the ledger), and the night plans as usual.
MIN_SILENCE_OF_A_DEAD_RUN = timedelta(hours=1)
NOT_LISTED_REASON = "requested, but WorkMail no longer lists this mailbox"
VANISHED_REASON = "WorkMail no longer lists this mailbox: it was deleted from the organization"
# GetMailboxDetails is one call per mailbox. Planning stays well inside Lambda's 15 minutes
# by asking at most this many per run; a mailbox beyond it is ordered as if small until its
# first export measures it (an organization's first night orders its tail less well).
MAX_SIZE_LOOKUPS_PER_PLAN = 5_000


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    organization_id, run_id = inputs.run_of(event)
    return plan_run(load_settings(), organization_id, run_id, event.get("executionArn"))


def plan_run(settings: Settings, organization_id: str, run_id: str, execution_arn: str | None) -> dict:
    ledger = Ledger(settings.ledger_table)
    client = workmail.client()
    now = utc_now()

    existing = ledger.get_run(organization_id, run_id)
    if existing and existing.get("status") in FINISHED_RUN_STATES:
        logger.info("Run already finished; nothing to do", extra={"status": existing["status"]})
        return _already_finished(existing)
    if existing and existing.get("status") == "RUNNING":
        logger.info("Run already planned; resuming")
        return _state_output(existing)

    open_runs = [run for run in ledger.open_runs(organization_id) if run["runId"] != run_id]
    if existing is None:
        # Checked before this run is recorded: an operator's start in the same instant may go on
        # beside the night. Two runs stay within WorkMail's limits (it refuses the rest); the
        # opposite order could leave a night with no run at all.
        busy = _earlier_run_still_exporting(settings, ledger, open_runs, now)
        if busy:
            return _leave_night_to(ledger, busy, organization_id, run_id, execution_arn, now)

    _check_organization(client, organization_id)
    planning = {
        "status": "PLANNING",
        "startedAt": iso(now),
        "executionArn": execution_arn,
        "maxConcurrentExports": settings.max_concurrent_exports,
        "windowEndsAt": _window_end(settings, now),
        # Operators' runs of named mailboxes still open: their exports share the organization's slots.
        "siblingRunIds": [run["runId"] for run in open_runs if run.get("requestedMailboxes")],
    }
    if existing:
        # An operator's request, recorded before its execution started, or a planning that crashed.
        ledger.update_run(organization_id, run_id, planning)
    else:
        ledger.create_run({"organizationId": organization_id, "runId": run_id, **planning})

    requested = (existing or {}).get("requestedMailboxes")
    plan = _plan_mailboxes(settings, ledger, client, organization_id, run_id, now, requested)
    ledger.put_items(plan.mailbox_items + plan.task_items)
    run = {
        "status": "RUNNING",
        "plannedAt": iso(utc_now()),
        "counts": dict(plan.counts),
        "skipReasons": dict(plan.skip_reasons),
        "otherRunningJobIds": plan.other_running_job_ids,
    }
    ledger.update_run(organization_id, run_id, run)
    logger.info("Run planned", extra={"counts": dict(plan.counts)})
    return _state_output({"organizationId": organization_id, "runId": run_id, **run})


def _earlier_run_still_exporting(settings, ledger, open_runs: list[dict], now) -> dict | None:
    """An open run of the whole organization that is alive and still has mailboxes to start.

    A large organization's full pass takes longer than a night. Planning a second run beside
    it would queue the same mailboxes twice and set two controllers against the same ten
    slots; the earlier run already exports them, most overdue first. A run an operator has
    just started and that is not planned yet counts too. A run of a few named mailboxes does
    not: the night still owes every other mailbox its export.
    """
    silence = max(MIN_SILENCE_OF_A_DEAD_RUN, timedelta(seconds=2 * settings.max_poll_seconds))
    for run in open_runs:
        heard = run.get("lastPassAt") or run.get("plannedAt") or run.get("startedAt")
        if run.get("requestedMailboxes") or not heard or now - parse_iso(heard) > silence:
            continue
        never_started = run["status"] == "REQUESTED" and not run.get("executionArn")
        if never_started and now - parse_iso(heard) > REQUEST_START_GRACE:
            # Requested, but its execution never started: nothing will carry it on.
            continue
        if run["status"] != "RUNNING" or _has_mailboxes_waiting(ledger, run["organizationId"], run["runId"]):
            return run
    return None


def _has_mailboxes_waiting(ledger, organization_id: str, run_id: str) -> bool:
    return bool(ledger.ready_tasks(organization_id, run_id, 1) or ledger.next_deferred_task(organization_id, run_id))


def _leave_night_to(ledger, busy: dict, organization_id: str, run_id: str, execution_arn, now) -> dict:
    if busy["status"] == "RUNNING":
        doing = "is still working through the organization's queue"
    else:
        doing = f"was started at {busy.get('startedAt')} to export the whole organization"
    reason = (
        f"run {busy['runId']} {doing} and goes on; "
        "a new run is planned on the first night after it has started every mailbox"
    )
    run = {
        "organizationId": organization_id,
        "runId": run_id,
        "status": "SKIPPED",
        "startedAt": iso(now),
        "endedAt": iso(now),
        "executionArn": execution_arn,
        "reason": reason,
        "leftToRunId": busy["runId"],
        "counts": {},
    }
    ledger.create_run(run)
    logger.info("Night left to an earlier run", extra={"open_run_id": busy["runId"]})
    # leftToRunId sends the state machine to FinishRun, which tells the operators of this night.
    return {**_state_output(run), "alreadyFinished": True, "reason": reason, "leftToRunId": busy["runId"]}


class _Budget:
    def __init__(self, amount: int):
        self.left = amount

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


class _Plan:
    def __init__(self):
        self.mailbox_items: list[dict] = []
        self.task_items: list[dict] = []
        self.counts: Counter = Counter({"total": 0, "queued": 0, "deferred": 0, "skipped": 0})
        self.skip_reasons: Counter = Counter()
        self.other_running_job_ids: list[str] = []

    def add(self, mailbox: dict | None, task: dict) -> None:
        self.counts["total"] += 1
        self.counts[task["status"].lower()] += 1
        if task["status"] == "SKIPPED":
            self.skip_reasons[task.get("reasonCategory", task["reason"])] += 1
        if mailbox is not None:
            self.mailbox_items.append(mailbox)
        self.task_items.append(task)


def _plan_mailboxes(settings, ledger, client, organization_id, run_id, now, requested=None) -> _Plan:
    """One task per mailbox of the organization, or per requested mailbox when the run names them."""
    plan = _Plan()
    known = {item["entityId"]: item for item in ledger.mailboxes(organization_id)}
    recent = _recent_jobs(client, organization_id)
    plan.other_running_job_ids = recent.running_job_ids
    size_lookups = _Budget(MAX_SIZE_LOOKUPS_PER_PLAN)
    not_listed = set(requested or ())

    listed = set()
    for entity in workmail.list_entities(client, organization_id):
        listed.add(entity.entity_id)
        if requested is not None and entity.entity_id not in not_listed:
            continue
        not_listed.discard(entity.entity_id)
        mailbox = _merge_mailbox(known.get(entity.entity_id), entity, organization_id)
        if entity.entity_id in recent.elsewhere:
            mailbox["lastExportElsewhere"] = _export_elsewhere(recent.elsewhere[entity.entity_id], now)
        last_start = recent.last_starts.get(entity.entity_id)
        task = _decide(settings, client, mailbox, last_start, run_id, now, size_lookups)
        plan.add(mailbox, task)

    for entity_id in sorted(not_listed):
        # Requested, but deleted from WorkMail since: the run says so instead of dropping it.
        mailbox = known.get(entity_id) or {"organizationId": organization_id, "entityId": entity_id, "kind": "USER"}
        plan.add(None, {**_new_task(mailbox, run_id), "status": "SKIPPED", "reason": NOT_LISTED_REASON})
    if requested is None:
        _record_vanished(plan, known, listed, run_id)
    return plan


def _record_vanished(plan: _Plan, known: dict[str, dict], listed: set[str], run_id: str) -> None:
    """Mailboxes the ledger knows that WorkMail no longer lists at all (purged): deleted from now on,
    so that coverage stops waiting for them. Each is reported once, in the run that first misses it."""
    for entity_id in sorted(set(known) - listed):
        if known[entity_id].get("state") == "DELETED":
            continue
        mailbox = {**known[entity_id], "state": "DELETED", "lastOutcome": "SKIPPED", "lastError": VANISHED_REASON}
        plan.add(mailbox, {**_new_task(mailbox, run_id), "status": "SKIPPED", "reason": VANISHED_REASON})


def _window_end(settings: Settings, now: datetime) -> str | None:
    """The first BACKUP_WINDOW_END after the run's start, in the schedule's time zone."""
    if not settings.backup_window_end:
        return None
    zone = ZoneInfo(settings.schedule_timezone)
    local_now = now.astimezone(zone)
    hours, minutes = (int(part) for part in settings.backup_window_end.split(":"))
    end = local_now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if end <= local_now:
        end += timedelta(days=1)
    return iso(end)


def _check_organization(client, organization_id: str) -> None:
    try:
        organization = client.describe_organization(OrganizationId=organization_id)
    except ClientError as error:
        if workmail.error_code(error) == "OrganizationNotFoundException":
            raise OrganizationUnavailableError(
                f"WorkMail organization {organization_id} was not found in this account and region; "
                "check the OrganizationIds parameter."
            ) from None
        raise
    state = organization.get("State", "")
    if state.lower() != "active":
        raise OrganizationUnavailableError(
            f"WorkMail organization {organization_id} is {state or 'in an unknown state'}, not Active; "
            "exports resume once it is active again."
        )


@dataclass
class _RecentJobs:
    last_starts: dict[str, datetime] = field(default_factory=dict)
    running_job_ids: list[str] = field(default_factory=list)
    # Per mailbox, the newest job someone else started (an admin, another tool).
    elsewhere: dict[str, dict] = field(default_factory=dict)


def _recent_jobs(client, organization_id: str) -> _RecentJobs:
    """Latest start per mailbox over the last 7 days, the jobs running now, and others' exports.

    Listing the whole 7-day history is done once per run, here, never in the polling loop.
    """
    recent = _RecentJobs()
    for job in workmail.list_export_jobs(client, organization_id):
        entity_id, started = job["EntityId"], job.get("StartTime")
        if started and (entity_id not in recent.last_starts or started > recent.last_starts[entity_id]):
            recent.last_starts[entity_id] = started
        if job.get("State") == "RUNNING":
            recent.running_job_ids.append(job["JobId"])
        if started and not (job.get("Description") or "").startswith(JOB_DESCRIPTION_PREFIX):
            newest = recent.elsewhere.get(entity_id)
            if newest is None or started > newest["StartTime"]:
                recent.elsewhere[entity_id] = job
    return recent


def _export_elsewhere(job: dict, seen_at: datetime) -> dict:
    """What the ledger keeps of an export this tool did not start: it is shown, never counted as verified."""
    return {
        # The state is as WorkMail reported it when this run was planned, not now.
        "seenAt": iso(seen_at),
        "jobId": job["JobId"],
        "startedAt": iso(job["StartTime"]),
        "state": job.get("State"),
        "s3Bucket": job.get("S3BucketName"),
        "s3Path": job.get("S3Path"),
        "description": job.get("Description"),
    }


def _merge_mailbox(known: dict | None, entity: workmail.Entity, organization_id: str) -> dict:
    """The mailbox item: what WorkMail says now, plus the history the ledger keeps."""
    mailbox = dict(known or {})
    mailbox.update(
        {
            "PK": f"ORG#{organization_id}",
            "SK": f"MAILBOX#{entity.entity_id}",
            "type": "MAILBOX",
            "organizationId": organization_id,
            "entityId": entity.entity_id,
            "email": entity.email,
            "name": entity.name,
            "kind": entity.kind,
            "state": entity.state,
            "role": entity.role,
        }
    )
    return mailbox


def _decide(settings, client, mailbox, workmail_last_start, run_id, now, size_lookups) -> dict:
    task = _new_task(mailbox, run_id)
    reason = workmail.skip_reason(workmail.Entity.from_mailbox_item(mailbox))
    if reason:
        return {**task, "status": "SKIPPED", "reason": reason}

    not_before, previous = _next_allowed_start(mailbox, workmail_last_start)
    if not_before and not_before > now + timedelta(hours=settings.defer_horizon_hours):
        return {
            **task,
            "status": "SKIPPED",
            "reason": _too_recent_reason(previous, mailbox, not_before),
            "reasonCategory": "exported within the last 24 hours",
            # Still a mailbox to export: the run's forecast counts it, from when WorkMail allows it.
            "previouslyExported": bool(mailbox.get("lastSuccessAt")),
            "notBefore": iso(not_before),
        }

    if mailbox["kind"] == "USER" and not mailbox.get("lastDurationSeconds") and size_lookups.take():
        mailbox["sizeMb"] = workmail.mailbox_size_mb(client, mailbox["organizationId"], mailbox["entityId"])
    task["expectedSeconds"] = priority.expected_seconds(mailbox)
    task["expectedFrom"] = "history" if mailbox.get("lastDurationSeconds") else "size"
    task["sizeMb"] = mailbox.get("sizeMb")
    task["previouslyExported"] = bool(mailbox.get("lastSuccessAt"))

    if not_before and not_before > now:
        reason = f"exported {_by_whom(previous, mailbox)} at {iso(previous)}; allowed again at {iso(not_before)}"
        return {**task, **priority.deferred_fields(task, iso(not_before), reason)}
    key = priority.queue_sort_key(mailbox, task["expectedSeconds"])
    return {**task, "status": "QUEUED", "GSI1PK": task["queuePartition"], "GSI1SK": key, "queueSortKey": key}


def _new_task(mailbox: dict, run_id: str) -> dict:
    organization_id = mailbox["organizationId"]
    return {
        "PK": f"RUN#{organization_id}#{run_id}",
        "SK": f"MAILBOX#{mailbox['entityId']}",
        "type": "TASK",
        "organizationId": organization_id,
        "runId": run_id,
        "entityId": mailbox["entityId"],
        "email": mailbox.get("email", ""),
        "name": mailbox.get("name", ""),
        "kind": mailbox["kind"],
        "queuePartition": queue_partition(organization_id, run_id),
    }


def _next_allowed_start(mailbox: dict, workmail_last_start: datetime | None):
    """When WorkMail will next accept an export of this mailbox, and the start that decides it.

    Both the ledger and WorkMail's own job list count, so exports started by someone
    else, or by a run whose record was lost, are respected.
    """
    starts = [workmail_last_start] if workmail_last_start else []
    if mailbox.get("lastStartedAt"):
        starts.append(parse_iso(mailbox["lastStartedAt"]))
    if not starts:
        return None, None
    previous = max(starts)
    return workmail.next_start_after(previous), previous


def _by_whom(previous: datetime, mailbox: dict) -> str:
    ours = mailbox.get("lastStartedAt") and parse_iso(mailbox["lastStartedAt"]) == previous
    return f"by run {mailbox.get('lastRunId', 'of this tool')}" if ours else "by someone else"


def _too_recent_reason(previous: datetime, mailbox: dict, not_before: datetime) -> str:
    return (
        f"exported {_by_whom(previous, mailbox)} at {iso(previous)}; WorkMail allows one export per "
        f"24 hours, next at {iso(not_before)}"
    )


def _already_finished(run: dict) -> dict:
    output = _state_output(run)
    output["alreadyFinished"] = True
    if run.get("leftToRunId"):
        # A StartRun retried after recording a skipped night still has its summary sent (at worst twice).
        output["leftToRunId"] = run["leftToRunId"]
    output["reason"] = (
        f"run {run['runId']} already finished ({run['status']}) at {run.get('endedAt', 'an earlier time')}; "
        "start an on-demand run to export again"
    )
    return output


def _state_output(run: dict) -> dict:
    """What the state machine carries between states: ids and counts, never mailbox lists."""
    return {
        "organizationId": run["organizationId"],
        "runId": run["runId"],
        "counts": run.get("counts", {}),
        "done": False,
        "waitSeconds": 0,
        "ticksInExecution": 0,
        "executionPart": 0,
    }
