"""Controller: one pass of an organization's run.

Each invocation reconciles the running jobs with WorkMail, records the finished ones,
starts new jobs into the free slots, and says how long to wait before the next pass. Its
work is bounded by the number of slots (10), never by the number of mailboxes.
"""

import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from mailbox_backup import clients, inputs, naming, priority, workmail
from mailbox_backup.clock import utc_now
from mailbox_backup.config import SERVICE_MAX_CONCURRENT_EXPORTS, Settings, load_settings
from mailbox_backup.errors import ConfigurationError, InvalidInputError, OrganizationUnavailableError
from mailbox_backup.ledger import OPEN_RUN_STATES, Ledger, active_partition, iso, parse_iso
from mailbox_backup.observability import logger, metrics, record_slot_utilization, tracer
from mailbox_backup.start_run import JOB_DESCRIPTION_PREFIX
from mailbox_backup.verification import verify_export

# Below this many measured megabytes, the default export rate is a better guess.
MIN_MEASURED_MB = 500
# A job expected to run longer than this is checked on the way, not only at its expected end.
LONG_JOB_SECONDS = 2 * 3600
# Look again shortly after a job is expected to end, so it has ended when we look.
FINISH_SLACK = timedelta(seconds=5)
GONE_ERRORS = ("EntityNotFoundException", "EntityStateException")
# Skip reasons are counted per category in the run item; the message names the mailbox.
GONE_CATEGORY = "gone or disabled since the run was planned"
# This many exports in a row failing with the same configuration-like error stop the run.
CONFIGURATION_FAILURE_STREAK = 3
_CONFIGURATION_HINTS = re.compile(r"role|assume|trust|bucket|kms|key|access denied|permission|not authori", re.I)
ORGANIZATION_ERRORS = ("OrganizationNotFoundException", "OrganizationStateException")
# A start WorkMail refuses with no cause we can see is tried this many times, this far apart.
MAX_UNEXPLAINED_REFUSALS = 3
UNEXPLAINED_REFUSAL_PAUSE = timedelta(minutes=15)


@dataclass
class Pass:
    """What one controller pass learned, for the counters and the next wait."""

    settings: Settings
    ledger: Ledger
    client: object
    organization_id: str
    run_id: str
    now: datetime
    counters: Counter = field(default_factory=Counter)
    expected_ends: list[datetime] = field(default_factory=list)
    running: int = 0
    overrunning: int = 0
    organization_full: bool = False
    # Exports of the organization's other open runs: they use its slots too.
    sibling_running: int = 0
    ready_lane_empty: bool = False
    window_closed: bool = False
    # Consecutive failed exports with the same error text, carried from pass to pass.
    failure_streak: int = 0
    failure_text: str = ""
    # This run's measured export durations and sizes so far.
    measured_seconds: int = 0
    measured_mb: int = 0
    measured_count: int = 0


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    organization_id, run_id = inputs.run_of(event)
    settings = load_settings()

    output = run_pass(
        settings,
        organization_id,
        run_id,
        ticks_in_execution=int(event.get("ticksInExecution", 0)),
        execution_part=int(event.get("executionPart", 0)),
    )

    record_slot_utilization(
        metrics, organization_id, output["running"], output["overrunning"], settings.max_concurrent_exports
    )
    return output


def run_pass(
    settings: Settings,
    organization_id: str,
    run_id: str,
    ticks_in_execution: int = 0,
    execution_part: int = 0,
) -> dict:
    ledger = Ledger(settings.ledger_table)
    run = ledger.get_run(organization_id, run_id)
    if run is None:
        raise InvalidInputError(f"Run {run_id} of {organization_id} has not been planned; start it with StartRun.")
    current = Pass(settings, ledger, workmail.client(), organization_id, run_id, utc_now())
    current.failure_streak = int(run.get("failureStreak", 0))
    current.failure_text = run.get("failureStreakText", "")
    counts = run.get("counts", {})
    current.measured_seconds = int(counts.get("measuredExportSeconds", 0))
    current.measured_mb = int(counts.get("measuredExportMb", 0))
    current.measured_count = int(counts.get("measuredExportCount", 0))

    starts_unavailable = False
    for task in ledger.active_tasks(organization_id, run_id):
        try:
            _reconcile(current, task)
        except _StartsUnavailable:
            # Re-attaching a start met WorkMail's errors: no new starts this pass; the rest goes on.
            starts_unavailable = True
    others = _other_running_jobs(current, run.get("otherRunningJobIds", []))
    current.sibling_running = _exports_of_runs_beside(current, run.get("siblingRunIds", []))

    current.window_closed = bool(run.get("windowEndsAt")) and current.now >= parse_iso(run["windowEndsAt"])
    if not current.window_closed and not starts_unavailable:
        _start_into_free_slots(current, others)
    ledger.record_pass(organization_id, run_id, dict(current.counters), iso(current.now))
    _save_failure_streak(current, run)

    return _state_output(current, ticks_in_execution + 1, execution_part)


# Reconciling running jobs ------------------------------------------------------------------


def _reconcile(current: Pass, task: dict) -> None:
    if task["status"] == "STARTING":
        # The last pass recorded the intent but died before recording the job: starting
        # again with the same client token returns that job instead of a second one.
        _start(current, task)
        return

    if not _is_due(current, task):
        # Not expected to have ended yet: asking WorkMail now would cost a call and learn nothing.
        _count_running(current, task, parse_iso(task["expectedEndAt"]))
        return

    try:
        job = current.client.describe_mailbox_export_job(OrganizationId=current.organization_id, JobId=task["jobId"])
    except ClientError as error:
        if workmail.error_code(error) != "EntityNotFoundException":
            raise
        _record_failure(current, task, {"State": "FAILED"}, f"WorkMail no longer knows job {task['jobId']}")
        return

    if job["State"] == "RUNNING":
        expected_end = _expected_end(job, task, current.now)
        if _count_running(current, task, expected_end):
            logger.warning(
                "Export running far past its expected time",
                extra={
                    "entity_id": task["entityId"],
                    "job_id": task["jobId"],
                    "expected_seconds": int(task["expectedSeconds"]),
                    "progress": job.get("EstimatedProgress"),
                },
            )
        current.ledger.update_task(task, {"expectedEndAt": iso(expected_end), "checkedAt": iso(current.now)})
    elif job["State"] == "COMPLETED":
        _record_success(current, task, job)
    else:
        _record_failure(current, task, job, job.get("ErrorInfo") or f"job ended {job['State']}")


def _count_running(current: Pass, task: dict, expected_end: datetime) -> bool:
    """Count a job as still running; True when it is overrunning its expected length."""
    current.running += 1
    current.expected_ends.append(expected_end)
    started = parse_iso(task["startedAt"])
    overrunning = priority.is_overrunning(started, int(task.get("expectedSeconds") or 0), current.now)
    current.overrunning += overrunning
    return overrunning


def _is_due(current: Pass, task: dict) -> bool:
    """Whether a running job may have ended: its expected end has come, or a long job was not checked for long.

    A job expected to run for hours is asked about again after half the time that was left
    at its last check (at least MaxPollSeconds), so that one ending far earlier than
    estimated does not hold its slot for hours; a short one is asked about at its expected end.
    """
    if not task.get("expectedEndAt"):
        return True
    checked = parse_iso(task.get("checkedAt") or task["startedAt"])
    expected_end = parse_iso(task["expectedEndAt"])
    if expected_end <= current.now + FINISH_SLACK:
        return True
    left_at_check = (expected_end - checked).total_seconds()
    if left_at_check <= LONG_JOB_SECONDS:
        return False
    recheck_after = max(current.settings.max_poll_seconds, left_at_check / 2)
    return (current.now - checked).total_seconds() >= recheck_after


def _expected_end(job: dict, task: dict, now: datetime) -> datetime:
    """When a running job will likely end: from its progress if reported, else its expected length."""
    started = job.get("StartTime") or parse_iso(task["startedAt"])
    progress = job.get("EstimatedProgress") or 0
    if progress >= 5:
        elapsed = (now - started).total_seconds()
        return started + timedelta(seconds=elapsed * 100 / progress)
    return started + timedelta(seconds=int(task.get("expectedSeconds") or 0))


def _record_success(current: Pass, task: dict, job: dict) -> None:
    verification = verify_export(current.settings.export_bucket, task["s3Prefix"], current.settings.kms_key_arn)
    if not verification.ok:
        _record_failure(current, task, job, f"export COMPLETED but not verified: {verification.problem}")
        return

    ended = job.get("EndTime") or current.now
    started = job.get("StartTime") or parse_iso(task["startedAt"])
    fields = {
        "status": "EXPORTED",
        "endedAt": iso(ended),
        "s3Path": job.get("S3Path"),
        "kmsKeyArn": current.settings.kms_key_arn,
        **verification.as_fields(),
    }
    _close_task(current, task, fields)
    current.ledger.update_job(_job_ref(task), {"state": "COMPLETED", **fields})
    current.ledger.update_mailbox(
        current.organization_id,
        task["entityId"],
        {
            "lastOutcome": "EXPORTED",
            "lastSuccessAt": iso(ended),
            "lastSuccessStartedAt": iso(started),
            "lastSuccessJobId": task["jobId"],
            "lastSuccessRunId": current.run_id,
            "lastSuccessS3Path": job.get("S3Path"),
            "lastSuccessBucket": task["s3Bucket"],
            "lastSuccessObjectKey": verification.object_key,
            "lastSuccessSizeBytes": verification.size_bytes,
            "lastDurationSeconds": max(int((ended - started).total_seconds()), 1),
        },
    )
    current.counters["exported"] += 1
    if task.get("sizeMb"):
        # What the organization's exports really take, for the estimates of the next starts.
        current.counters["measuredExportSeconds"] += max(int((ended - started).total_seconds()), 1)
        current.counters["measuredExportMb"] += int(task["sizeMb"]) or 1
        current.counters["measuredExportCount"] += 1
    current.failure_streak, current.failure_text = 0, ""
    logger.info("Export verified", extra={"entity_id": task["entityId"], "job_id": task["jobId"]})


def _record_failure(current: Pass, task: dict, job: dict, error_text: str) -> None:
    fields = {"status": "FAILED", "endedAt": iso(job.get("EndTime") or current.now), "error": error_text}
    _close_task(current, task, fields)
    current.ledger.update_job(_job_ref(task), {"state": job.get("State", "FAILED"), **fields})
    current.ledger.update_mailbox(
        current.organization_id, task["entityId"], {"lastOutcome": "FAILED", "lastError": error_text}
    )
    current.counters["failed"] += 1
    logger.warning(
        "Export failed",
        extra={"entity_id": task["entityId"], "job_id": task.get("jobId"), "error": error_text},
    )
    _count_failure(current, error_text)


def _count_failure(current: Pass, error_text: str) -> None:
    """Stop the run when exports keep failing the same way for a reason of configuration.

    A wrong role, bucket or key fails every export alike; going on would only fail the rest
    of the organization one by one and hide the one thing the operator must fix.
    """
    if error_text == current.failure_text:
        current.failure_streak += 1
    else:
        current.failure_streak, current.failure_text = 1, error_text
    if current.failure_streak >= CONFIGURATION_FAILURE_STREAK and _CONFIGURATION_HINTS.search(error_text):
        _save_failure_streak(current, {})
        raise ConfigurationError(
            f"{current.failure_streak} exports in a row failed with the same error: {error_text.rstrip('.')}. "
            "This points at the export configuration, not at the mailboxes: check that the export role "
            "trusts export.workmail.amazonaws.com and may write to the bucket, that the bucket exists in the "
            "organization's region, and that the KMS key is enabled (workmail-backup doctor checks all three). "
            "No new exports were started."
        )


def _save_failure_streak(current: Pass, run: dict) -> None:
    if (run.get("failureStreak", 0), run.get("failureStreakText", "")) == (
        current.failure_streak,
        current.failure_text,
    ):
        return
    current.ledger.update_run(
        current.organization_id,
        current.run_id,
        {"failureStreak": current.failure_streak, "failureStreakText": current.failure_text},
    )


def _close_task(current: Pass, task: dict, fields: dict) -> None:
    current.ledger.update_task(task, fields, remove=("GSI1PK", "GSI1SK"))


def _job_ref(task: dict) -> dict:
    return {
        "organizationId": task["organizationId"],
        "entityId": task["entityId"],
        "startedAt": task["startedAt"],
        "jobId": task["jobId"],
    }


# Jobs started by others --------------------------------------------------------------------


def _other_running_jobs(current: Pass, job_ids: list[str]) -> list[str]:
    """Which of the known foreign jobs still run; their slots are not ours to use."""
    still_running = []
    for job_id in job_ids:
        try:
            job = current.client.describe_mailbox_export_job(OrganizationId=current.organization_id, JobId=job_id)
        except ClientError as error:
            if workmail.error_code(error) == "EntityNotFoundException":
                continue
            raise
        if job["State"] == "RUNNING":
            still_running.append(job_id)
            current.expected_ends.append(_expected_end(job, {"expectedSeconds": 0}, current.now))
    if still_running != job_ids:
        current.ledger.update_run(current.organization_id, current.run_id, {"otherRunningJobIds": still_running})
    return still_running


def _refresh_other_jobs(current: Pass) -> tuple[list[str], dict[str, datetime]]:
    """List the organization's jobs (the full 7-day list): only after WorkMail refused a start.

    Returns the foreign running jobs and the latest start per mailbox.
    """
    ours = {task.get("jobId") for task in current.ledger.active_tasks(current.organization_id, current.run_id)}
    running, last_starts = [], {}
    for job in workmail.list_export_jobs(current.client, current.organization_id):
        entity, started = job["EntityId"], job.get("StartTime")
        if started and (entity not in last_starts or started > last_starts[entity]):
            last_starts[entity] = started
        if job.get("State") == "RUNNING" and job["JobId"] not in ours:
            running.append(job["JobId"])
    current.ledger.update_run(current.organization_id, current.run_id, {"otherRunningJobIds": running})
    return running, last_starts


# Starting new jobs -------------------------------------------------------------------------


def _exports_of_runs_beside(current: Pass, run_ids: list[str]) -> int:
    """Exports the organization's other open runs (operators' runs of named mailboxes) have going.

    The setting is a budget per organization, not per run; a run that has closed is dropped.
    """
    still_open, exporting = [], 0
    for run_id in run_ids:
        run = current.ledger.get_run(current.organization_id, run_id)
        if run and run.get("status") in OPEN_RUN_STATES:
            still_open.append(run_id)
            exporting += len(current.ledger.active_tasks(current.organization_id, run_id))
    if still_open != run_ids:
        current.ledger.update_run(current.organization_id, current.run_id, {"siblingRunIds": still_open})
    return exporting


def _free_slots(current: Pass, others: int) -> int:
    # A sibling run's jobs running at planning are among the others too: the larger count stands
    # for both (a start beyond WorkMail's ten is refused and sorted out by one listing anyway).
    beside = max(others, current.sibling_running)
    by_setting = current.settings.max_concurrent_exports - current.running - current.sibling_running
    by_service = SERVICE_MAX_CONCURRENT_EXPORTS - current.running - beside
    return max(0, min(by_setting, by_service))


def _start_into_free_slots(current: Pass, others: list[str]) -> None:
    slots = _free_slots(current, len(others))
    refreshed = False
    while slots > 0:
        candidates = _next_candidates(current, slots)
        if not candidates:
            return
        for task in candidates:
            starting = _starting_fields(current, task)
            if not current.ledger.claim_task(task, starting):
                continue
            task = {**task, **starting}
            try:
                started = _start(current, task)
            except _StartsUnavailable:
                # WorkMail kept failing this start even after retries; the next pass tries again.
                return
            if started:
                slots -= 1
                continue
            if current.organization_full or refreshed:
                return
            # WorkMail refused the start: either the organization is full (jobs we did not
            # know of) or this mailbox was exported too recently. One listing tells which.
            refreshed = True
            others, last_starts = _refresh_other_jobs(current)
            slots = _free_slots(current, len(others))
            if slots <= 0:
                current.organization_full = True
                return
            _defer_refused(current, task, last_starts.get(task["entityId"]))
            break


def _next_candidates(current: Pass, slots: int) -> list[dict]:
    ready = current.ledger.ready_tasks(current.organization_id, current.run_id, slots)
    if len(ready) < slots:
        # Fewer than asked: the ready lane is now known to be empty, which saves a query later.
        current.ready_lane_empty = True
        ready += current.ledger.due_deferred_tasks(
            current.organization_id, current.run_id, current.now, slots - len(ready)
        )
    return ready


def _starting_fields(current: Pass, task: dict) -> dict:
    label = task.get("email") or task.get("name") or task["entityId"]
    return {
        "status": "STARTING",
        "clientToken": naming.client_token(current.organization_id, task["entityId"], current.run_id),
        "s3Bucket": current.settings.export_bucket,
        "s3Prefix": naming.export_prefix(
            current.settings.export_prefix, current.organization_id, current.run_id, task["entityId"], label
        ),
        "startRequestedAt": iso(current.now),
        "GSI1PK": active_partition(current.organization_id, current.run_id),
        "GSI1SK": task["entityId"],
    }


def _start(current: Pass, task: dict) -> bool:
    """Start (or re-attach to) the task's export; False if WorkMail said "later"."""
    try:
        job_id = workmail.start_export(
            ClientToken=task["clientToken"],
            OrganizationId=current.organization_id,
            EntityId=task["entityId"],
            Description=f"{JOB_DESCRIPTION_PREFIX}{current.run_id}",
            RoleArn=current.settings.export_role_arn,
            KmsKeyArn=current.settings.kms_key_arn,
            S3BucketName=task["s3Bucket"],
            S3Prefix=task["s3Prefix"],
        )
    except ClientError as error:
        return _start_refused(current, task, error)

    _record_started(current, task, job_id)
    return True


def _start_refused(current: Pass, task: dict, error: ClientError) -> bool:
    code = workmail.error_code(error)
    if code == "LimitExceededException":
        _requeue(current, task)
        return False
    if code in ORGANIZATION_ERRORS:
        _requeue(current, task)
        raise OrganizationUnavailableError(
            f"WorkMail refused to start exports for {current.organization_id}: {workmail.error_message(error)}"
        ) from None
    if code in GONE_ERRORS:
        reason = f"mailbox is gone or disabled since the run was planned: {workmail.error_message(error)}"
        fields = {"status": "SKIPPED", "reason": reason, "reasonCategory": GONE_CATEGORY, "endedAt": iso(current.now)}
        _close_task(current, task, fields)
        # The views say why until the next run's listing records the mailbox's new state.
        current.ledger.update_mailbox(
            current.organization_id, task["entityId"], {"lastOutcome": "SKIPPED", "lastError": reason}
        )
        current.counters["skipped"] += 1
        logger.info("Mailbox skipped", extra={"entity_id": task["entityId"], "reason": reason})
        return True
    if code == "InvalidParameterException":
        _fail_without_job(current, task, f"WorkMail rejected the export request: {workmail.error_message(error)}")
        return True
    if workmail.is_transient(error):
        _pause_after_server_errors(current, task, error)
        raise _StartsUnavailable from None
    raise error


class _StartsUnavailable(Exception):
    """WorkMail answered an export start with errors that outlasted the retries; stop starting for this pass."""


def _pause_after_server_errors(current: Pass, task: dict, error: ClientError) -> None:
    """One mailbox WorkMail cannot start must not fail the whole run; an outage of WorkMail as a
    whole costs each mailbox at most a strike or two."""
    what = f"{workmail.error_code(error)}: {workmail.error_message(error)}"
    logger.warning("Export start failed; trying later", extra={"entity_id": task["entityId"], "error": what})
    _pause_or_fail(
        current,
        task,
        "serverErrorStrikes",
        failed=lambda strikes: f"WorkMail failed to start this export {strikes} times ({what})",
        pausing=lambda strikes: f"WorkMail failed to start the export ({what}); trying again",
    )


def _fail_without_job(current: Pass, task: dict, error_text: str) -> None:
    """A mailbox WorkMail would not start an export of: failed, so that `retry-failed` finds it."""
    # The reason replaces any a deferral left, which said the mailbox would be tried again.
    fields = {"status": "FAILED", "error": error_text, "reason": error_text, "endedAt": iso(current.now)}
    _close_task(current, task, fields)
    # No job records this failure, so the mailbox keeps when and why, for the audit report.
    not_started = {"at": iso(current.now), "runId": current.run_id, "reason": error_text}
    current.ledger.update_mailbox(
        current.organization_id,
        task["entityId"],
        {"lastOutcome": "FAILED", "lastError": error_text, "lastNotStarted": not_started},
    )
    current.counters["failed"] += 1
    logger.error("Export not started", extra={"entity_id": task["entityId"], "error": error_text})


def _record_started(current: Pass, task: dict, job_id: str) -> None:
    started_at = iso(current.now)
    expected_end = current.now + timedelta(seconds=_expected_seconds(current, task))
    current.ledger.update_task(
        task, {"status": "RUNNING", "jobId": job_id, "startedAt": started_at, "expectedEndAt": iso(expected_end)}
    )
    current.ledger.put_job(
        {
            "organizationId": current.organization_id,
            "entityId": task["entityId"],
            "email": task.get("email", ""),
            "runId": current.run_id,
            "jobId": job_id,
            "clientToken": task["clientToken"],
            "state": "RUNNING",
            "startedAt": started_at,
            "s3Bucket": task["s3Bucket"],
            "s3Prefix": task["s3Prefix"],
            "kmsKeyArn": current.settings.kms_key_arn,
            **_expiry(current),
        }
    )
    current.ledger.update_mailbox(
        current.organization_id,
        task["entityId"],
        {"lastStartedAt": started_at, "lastRunId": current.run_id, "lastJobId": job_id},
    )
    current.running += 1
    current.expected_ends.append(expected_end)
    current.counters["started"] += 1
    logger.info("Export started", extra={"entity_id": task["entityId"], "job_id": job_id})


def _expiry(current: Pass) -> dict:
    """The TTL attribute of a job record (epoch seconds), when the deployment limits their retention."""
    days = current.settings.job_record_retention_days
    if days <= 0:
        return {}
    return {"expiresAt": int((current.now + timedelta(days=days)).timestamp())}


def _expected_seconds(current: Pass, task: dict) -> int:
    """The planned estimate, or, for estimates made from size alone, one from this run's measured rate."""
    seconds_measured = current.measured_seconds
    size_measured = current.measured_mb
    if task.get("expectedFrom") != "size" or not task.get("sizeMb") or size_measured < MIN_MEASURED_MB:
        return int(task.get("expectedSeconds") or 0)
    seconds_per_mb = max(seconds_measured - priority.DEFAULT_FIXED_SECONDS * current.measured_count, 1) / size_measured
    return int(priority.DEFAULT_FIXED_SECONDS + float(task["sizeMb"]) * seconds_per_mb)


def _requeue(current: Pass, task: dict) -> None:
    lane = "QUEUED" if task["queueSortKey"].startswith("READY#") else "DEFERRED"
    current.ready_lane_empty = current.ready_lane_empty and lane != "QUEUED"
    current.ledger.update_task(task, {"status": lane, "GSI1PK": task["queuePartition"], "GSI1SK": task["queueSortKey"]})


def _defer_refused(current: Pass, task: dict, last_start: datetime | None) -> None:
    """WorkMail refused this mailbox while slots were free: it was exported in the last 24 hours."""
    if last_start is None:
        _pause_unexplained(current, task)
        return
    not_before = workmail.next_start_after(last_start)
    reason = f"exported by someone else at {iso(last_start)}; allowed again at {iso(not_before)}"
    if not_before > current.now + timedelta(hours=current.settings.defer_horizon_hours):
        # As when planning: a window that opens this far ahead is the next run's business.
        fields = {"status": "SKIPPED", "reason": reason, "reasonCategory": "exported within the last 24 hours"}
        _close_task(current, task, {**fields, "endedAt": iso(current.now)})
        current.counters["skipped"] += 1
        return
    current.ledger.update_task(task, priority.deferred_fields(task, iso(not_before), reason))
    current.counters["deferred"] += 1


def _pause_unexplained(current: Pass, task: dict) -> None:
    """No full organization and no recent export explain the refusal: wait a little, then give up."""
    _pause_or_fail(
        current,
        task,
        "unexplainedRefusals",
        failed=lambda refusals: (
            f"WorkMail refused this export {refusals} times (LimitExceededException) while slots were free and "
            "no export of the mailbox in the last 24 hours explains it; check the mailbox in the WorkMail console"
        ),
        pausing=lambda refusals: (
            f"WorkMail refused the export without a known cause ({refusals} time(s)); trying again"
        ),
    )


def _pause_or_fail(
    current: Pass, task: dict, strikes_field: str, failed: Callable[[int], str], pausing: Callable[[int], str]
) -> None:
    """Put the mailbox back for a while; after a few strikes, record it as failed on its own.

    Retrying at once on every pass would keep the run open for ever on a mailbox WorkMail
    will not export; once failed, the run can end and `retry-failed` finds it.
    """
    strikes = int(task.get(strikes_field, 0)) + 1
    if strikes >= MAX_UNEXPLAINED_REFUSALS:
        _fail_without_job(current, task, failed(strikes))
        return
    retry_at = current.now + UNEXPLAINED_REFUSAL_PAUSE
    fields = {**priority.deferred_fields(task, iso(retry_at), pausing(strikes)), strikes_field: strikes}
    current.ledger.update_task(task, fields)
    current.counters["deferred"] += 1


# What the state machine carries ------------------------------------------------------------


def _state_output(current: Pass, ticks_in_execution: int, execution_part: int) -> dict:
    if current.window_closed:
        # Past the backup window: once the running jobs are recorded, the rest waits for the next run.
        has_ready, next_deferred = False, None
    else:
        has_ready = not current.ready_lane_empty and bool(
            current.ledger.ready_tasks(current.organization_id, current.run_id, 1)
        )
        # While mailboxes are ready, every slot is busy and a deferred one's window cannot wake us usefully.
        next_deferred = (
            None if has_ready else current.ledger.next_deferred_task(current.organization_id, current.run_id)
        )
    done = current.running == 0 and not has_ready and next_deferred is None
    continue_as_new = not done and ticks_in_execution >= current.settings.ticks_per_execution
    output = {
        "organizationId": current.organization_id,
        "runId": current.run_id,
        "done": done,
        "waitSeconds": _wait_seconds(current, next_deferred),
        "ticksInExecution": ticks_in_execution,
        "executionPart": execution_part,
        "running": current.running,
        "overrunning": current.overrunning,
        "continueAsNew": continue_as_new,
    }
    if continue_as_new:
        _hand_over(current, execution_part + 1)
    return output


def _hand_over(current: Pass, next_part: int) -> None:
    """Continue the run in a fresh execution, long before this one nears the history limit.

    The name is derived from the run and the part, so a retried pass that already started
    the next execution finds it there instead of starting a second one.
    """
    name = naming.execution_name(current.organization_id, current.run_id, next_part)
    execution_input = {
        "organizationId": current.organization_id,
        "runId": current.run_id,
        "resume": True,
        "ticksInExecution": 0,
        "executionPart": next_part,
    }
    state_machine_arn = os.environ["ORGANIZATION_STATE_MACHINE_ARN"]
    stepfunctions = clients.stepfunctions()
    try:
        stepfunctions.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input))
        logger.info("Run handed over to a fresh execution", extra={"execution_name": name})
    except stepfunctions.exceptions.ExecutionAlreadyExists:
        logger.info("Next execution already started", extra={"execution_name": name})

    # The run names the execution that carries it now: views and the next night's checks follow
    # that one, not a finished earlier part.
    next_arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name
    current.ledger.update_run(current.organization_id, current.run_id, {"executionArn": next_arn})


def _wait_seconds(current: Pass, next_deferred: dict | None) -> int:
    """Sleep until the earliest expected event, within the configured bounds."""
    wake_times = list(current.expected_ends)
    if next_deferred:
        wake_times.append(parse_iso(next_deferred["notBefore"]))
    if current.organization_full or not wake_times:
        return current.settings.min_poll_seconds

    wake = max(min(wake_times), current.now) + FINISH_SLACK
    seconds = int((wake - current.now).total_seconds())
    return max(current.settings.min_poll_seconds, min(current.settings.max_poll_seconds, seconds))
