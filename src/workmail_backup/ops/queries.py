"""The operators' questions: is the run healthy, what failed, what is overdue, how far is coverage.

Each function returns plain dicts (what ``--json`` prints) plus, where it matters, whether
the answer is healthy, which the command turns into its exit code.
"""

from datetime import UTC, datetime, timedelta

from boto3.dynamodb.conditions import Key

from mailbox_backup import naming, priority, workmail
from mailbox_backup.clock import utc_now
from mailbox_backup.ledger import OPEN_RUN_STATES, from_dynamo, iso, parse_iso, queue_partition
from workmail_backup.ops.backend import AWS_ERRORS, Backend
from workmail_backup.ops.errors import InvalidRequestError
from workmail_backup.ops.values import age_seconds, human_duration, s3_uri, seconds_between

FINISHED_EXECUTION_PROBLEMS = ("FAILED", "ABORTED", "TIMED_OUT")
# WorkMail's end of support: the date by which every mailbox needs a final verified export.
END_OF_SUPPORT = datetime(2027, 3, 31, 23, 59, 59, tzinfo=UTC)
# The status of a run's execution that Step Functions can no longer describe.
NOT_FOUND = "NOT_FOUND"
RATE_WINDOW = timedelta(days=14)
RUN_KINDS = ("nightly", "manual")
# "started" counts the jobs started so far while a run is open; "running", once it has ended,
# the jobs still running when it stopped early (WorkMail finishes them).
COUNTERS = ("total", "exported", "failed", "deferred", "skipped", "started", "running")


# Runs ------------------------------------------------------------------------------------------


def run_view(backend: Backend, run: dict, now: datetime) -> dict:
    """A run as the views show it: times, counts, and the execution behind it."""
    is_open = run.get("status") in OPEN_RUN_STATES
    view = {
        "organizationId": run["organizationId"],
        "runId": run["runId"],
        "status": run.get("status"),
        "startedAt": run.get("startedAt"),
        "endedAt": run.get("endedAt"),
        "durationSeconds": seconds_between(run.get("startedAt"), run.get("endedAt") or (iso(now) if is_open else None)),
        "counts": _counts(run),
        "skipReasons": run.get("skipReasons", {}),
        "error": run.get("error"),
        # Why a night did no work of its own (status SKIPPED).
        "reason": run.get("reason"),
        "executionArn": run.get("executionArn"),
        # None for a run of the whole organization; the count for a run of named mailboxes.
        "requestedMailboxes": len(run["requestedMailboxes"]) if run.get("requestedMailboxes") else None,
        "execution": execution_of(backend, run),
    }
    if is_open:
        active = _active_tasks(backend, run)
        view["runningNow"] = view["counts"]["running"] = len(active)
        view["overrunning"] = [_overrun(task, now) for task in active if is_overrunning(task, now)]
    return view


def is_overrunning(task: dict, now: datetime) -> bool:
    started = parse_iso(task["startedAt"]) if task.get("startedAt") else None
    return priority.is_overrunning(started, int(task.get("expectedSeconds") or 0), now)


def _overrun(task: dict, now: datetime) -> dict:
    return {
        "entityId": task["entityId"],
        "email": task.get("email", ""),
        "jobId": task.get("jobId"),
        "elapsedSeconds": age_seconds(task.get("startedAt"), now),
        "expectedSeconds": int(task["expectedSeconds"]),
    }


def _counts(run: dict) -> dict:
    counts = run.get("counts", {})
    return {name: int(counts.get(name, 0)) for name in COUNTERS}


def _active_tasks(backend: Backend, run: dict) -> list[dict]:
    return backend.ledger.active_tasks(run["organizationId"], run["runId"])


def recent_runs(backend: Backend, organization_id: str, limit: int = 20) -> list[dict]:
    """The newest runs, nightly and on-demand together, by start time.

    Run ids sort by kind before date (every ``nightly-`` after every ``manual-``), so the
    newest of each kind are read separately and merged.
    """
    runs = []
    for kind in RUN_KINDS:
        condition = Key("PK").eq(f"ORG#{organization_id}") & Key("SK").begins_with(f"RUN#{kind}-")
        page = backend.ledger.table.query(KeyConditionExpression=condition, ScanIndexForward=False, Limit=limit)
        runs.extend(from_dynamo(item) for item in page["Items"])
    return sorted(runs, key=lambda run: run.get("startedAt") or "", reverse=True)[:limit]


def run_problems(view: dict) -> list[str]:
    """What is wrong with one run, the same wherever a run is judged: `status`, `runs`, `run show`, `watch`."""
    problems = []
    if view["status"] == "FAILED":
        problems.append(f"run {view['runId']} failed: {view.get('error') or 'see `run show`'}")
    if view["counts"]["failed"]:
        problems.append(f"{view['counts']['failed']} mailbox(es) failed in {view['runId']}; see `retry-failed`")
    if is_stuck(view):
        problems.append(
            f"run {view['runId']} is still {view['status']} in the ledger but its execution "
            f"{how_it_ended(view['execution'])}: it is stuck"
        )
    return problems


def execution_of(backend: Backend, run: dict) -> dict | None:
    """The execution behind a run; one Step Functions no longer knows (it forgets closed executions
    after 90 days, and a redeployed stack's) has the status NOT_FOUND."""
    if not run.get("executionArn"):
        return None
    described = backend.executions.describe(run["executionArn"])
    return described or {"executionArn": run["executionArn"], "status": NOT_FOUND}


def how_it_ended(execution: dict) -> str:
    status = execution["status"]
    return "is no longer known to Step Functions" if status == NOT_FOUND else f"ended {status}"


def is_stuck(view: dict) -> bool:
    """An open run whose execution has ended: nothing carries it on (stopped by hand, say). A run
    handed over to a fresh execution names the fresh one, so an ended execution is never a live run's."""
    execution_status = (view.get("execution") or {}).get("status")
    return view["status"] in OPEN_RUN_STATES and execution_status not in (None, "RUNNING")


def latest_runs_healthy(listed: list[dict]) -> bool:
    """Whether the newest listed run of each organization has nothing wrong with it."""
    newest: dict[str, dict] = {}
    for view in listed:
        # A night left to a run still open did no work of its own; the run before it is judged.
        if view["status"] != "SKIPPED":
            newest.setdefault(view["organizationId"], view)
    return not any(run_problems(view) for view in newest.values())


def list_runs(backend: Backend, organization_id: str | None = None, limit: int = 20) -> list[dict]:
    now = utc_now()
    views = []
    for org in backend.organizations(organization_id):
        views.extend(run_view(backend, run, now) for run in recent_runs(backend, org, limit))
    return sorted(views, key=lambda view: view.get("startedAt") or "", reverse=True)


def organization_status(backend: Backend, organization_id: str) -> dict:
    """The last finished run, the open one, and the problems an operator must look at."""
    now = utc_now()
    runs = recent_runs(backend, organization_id)
    current = next((run for run in runs if run.get("status") in OPEN_RUN_STATES), None)
    # A night left to a run still open did no work of its own: the last run is the one before.
    last = next((run for run in runs if run.get("status") not in (*OPEN_RUN_STATES, "SKIPPED")), None)
    status = {
        "organizationId": organization_id,
        "current": run_view(backend, current, now) if current else None,
        "last": run_view(backend, last, now) if last else None,
    }
    status["problems"] = _problems(status)
    status["healthy"] = not status["problems"]
    return status


def _problems(status: dict) -> list[str]:
    problems = []
    last, current = status["last"], status["current"]
    if last is None and current is None:
        problems.append("no run recorded yet")
    for run in (last, current):
        if run:
            problems.extend(run_problems(run))
    for job in (current or {}).get("overrunning", []):
        problems.append(
            f"the export of {job['email'] or job['entityId']} (job {job['jobId']}) has run "
            f"{human_duration(job['elapsedSeconds'])}, expected {human_duration(job['expectedSeconds'])}: "
            "it holds a slot and keeps the run open; `watch` shows its progress"
        )
    return problems


def run_detail(backend: Backend, run_id: str, organization_id: str | None = None) -> dict:
    """One run: every mailbox's outcome, and the failed states of its execution."""
    if not naming.is_valid_run_id(run_id):
        raise InvalidRequestError(
            f"Run ids look like nightly-20261203 or manual-20261203T101500Z; got {run_id!r}. "
            "List them with `workmail-backup runs`."
        )
    found = [run for org in backend.organizations(organization_id) if (run := backend.ledger.get_run(org, run_id))]
    if len(found) > 1:
        organizations = ", ".join(run["organizationId"] for run in found)
        raise InvalidRequestError(
            f"Run {run_id} exists in {len(found)} organizations ({organizations}); pick one with --org."
        )
    if found:
        return _detail(backend, found[0])
    raise InvalidRequestError(
        f"Run {run_id} is not in {backend.description}; list the runs with `workmail-backup runs`."
    )


def _detail(backend: Backend, run: dict) -> dict:
    view = run_view(backend, run, utc_now())
    view["mailboxes"] = [_job_line(task) for task in backend.ledger.tasks(run["organizationId"], run["runId"])]
    view["mailboxes"].sort(key=lambda line: (line["outcome"] != "FAILED", line["email"] or line["entityId"]))
    went_wrong = view["status"] == "FAILED" or (view["execution"] or {}).get("status") in FINISHED_EXECUTION_PROBLEMS
    view["executionFailures"] = (
        backend.executions.failures(run["executionArn"]) if went_wrong and run.get("executionArn") else []
    )
    view["problems"] = run_problems(view)
    view["healthy"] = not view["problems"]
    # What the slots did in this run: the pace of a full pass, recorded when the run finished.
    view["pace"] = run.get("forecast")
    return view


def _job_line(task: dict) -> dict:
    return {
        "entityId": task["entityId"],
        "email": task.get("email", ""),
        "outcome": task.get("status"),
        "reason": task.get("error") or task.get("reason"),
        "jobId": task.get("jobId"),
        "startedAt": task.get("startedAt"),
        "endedAt": task.get("endedAt"),
        "durationSeconds": seconds_between(task.get("startedAt"), task.get("endedAt")),
        "sizeBytes": task.get("sizeBytes"),
        "s3Object": s3_uri(task.get("s3Bucket"), task.get("objectKey"), task.get("s3Path")),
        "verified": task.get("verified"),
    }


# Mailboxes --------------------------------------------------------------------------------------


def last_error(mailbox: dict) -> str | None:
    """Why the mailbox's last export failed or was skipped; an older error outlives a success."""
    return mailbox.get("lastError") if mailbox.get("lastOutcome") in ("FAILED", "SKIPPED") else None


def is_exportable(mailbox: dict) -> bool:
    """Enabled users and resources with a mailbox here; the rest never need an export."""
    return skip_reason_of(mailbox) is None


def skip_reason_of(mailbox: dict) -> str | None:
    """Why WorkMail cannot export this mailbox (disabled, no mailbox), or None."""
    return workmail.skip_reason(workmail.Entity.from_mailbox_item(mailbox))


def list_mailboxes(
    backend: Backend, organization_id: str | None = None, overdue: timedelta | None = None
) -> list[dict]:
    """Every mailbox with its last verified export; with ``overdue``, only those older than that."""
    now = utc_now()
    lines = []
    for org in backend.organizations(organization_id):
        lines.extend(_mailbox_line(mailbox, now) for mailbox in backend.ledger.mailboxes(org))
    if overdue is not None:
        lines = [line for line in lines if line["exportable"] and _older_than(line, overdue)]
    return sorted(lines, key=lambda line: (-(line["ageSeconds"] or 10**12), line["email"] or line["entityId"]))


def unlisted_organizations(backend: Backend, organization_id: str | None = None) -> list[str]:
    """Organizations no run has listed yet: no mailbox of theirs is known, so none can look overdue."""
    return [org for org in backend.organizations(organization_id) if not _is_listed(backend, org)]


def _is_listed(backend: Backend, organization_id: str, runs: list[dict] | None = None) -> bool:
    # Listing an organization that has no exportable mailbox leaves a planned run, but no item.
    if next(backend.ledger.mailboxes(organization_id), None) is not None:
        return True
    runs = recent_runs(backend, organization_id, limit=50) if runs is None else runs
    return any(run.get("plannedAt") for run in runs)


def _older_than(line: dict, limit: timedelta) -> bool:
    # A mailbox never exported is older than any limit.
    return line["ageSeconds"] is None or line["ageSeconds"] > limit.total_seconds()


def _mailbox_line(mailbox: dict, now: datetime) -> dict:
    return {
        "organizationId": mailbox["organizationId"],
        "entityId": mailbox["entityId"],
        "email": mailbox.get("email", ""),
        "kind": mailbox.get("kind"),
        "state": mailbox.get("state"),
        "exportable": is_exportable(mailbox),
        "notExportableBecause": skip_reason_of(mailbox),
        "lastSuccessAt": mailbox.get("lastSuccessAt"),
        "ageSeconds": age_seconds(mailbox.get("lastSuccessAt"), now),
        "lastSuccessJobId": mailbox.get("lastSuccessJobId"),
        "lastSuccessS3Object": s3_uri(
            mailbox.get("lastSuccessBucket"), mailbox.get("lastSuccessObjectKey"), mailbox.get("lastSuccessS3Path")
        ),
        "lastOutcome": mailbox.get("lastOutcome"),
        "lastError": last_error(mailbox),
        "lastStartedAt": mailbox.get("lastStartedAt"),
        "lastExportElsewhere": mailbox.get("lastExportElsewhere"),
    }


# Coverage ---------------------------------------------------------------------------------------


def coverage(
    backend: Backend,
    deadline: datetime = END_OF_SUPPORT,
    organization_id: str | None = None,
    now: datetime | None = None,
) -> dict:
    """Share of exportable mailboxes with a verified export by ``deadline``, and when all will have one.

    ``now`` is when the rate is measured and the forecast starts (default: this moment).
    """
    now = now or utc_now()
    organizations = [
        _organization_coverage(backend, org, deadline, now) for org in backend.organizations(organization_id)
    ]
    eligible = sum(item["eligible"] for item in organizations)
    covered = sum(item["covered"] for item in organizations)
    forecasts = [item["forecastComplete"] for item in organizations]
    forecast = None if None in forecasts else max(forecasts, default=iso(now))
    all_listed = all(item["listed"] for item in organizations)
    return {
        "deadline": iso(deadline),
        "measuredAt": iso(now),
        "deadlinePassed": deadline < now,
        "eligible": eligible,
        "covered": covered,
        "share": _share(covered, eligible, all_listed),
        "forecastComplete": forecast,
        "noForecastBecause": None if forecast else _why_no_forecast(deadline < now, all_listed),
        # No forecast at all is no promise either.
        "forecastMissesDeadline": (covered < eligible or not all_listed)
        and (forecast is None or forecast > iso(deadline)),
        "organizations": organizations,
        "healthy": eligible == covered and all_listed,
    }


def _why_no_forecast(deadline_passed: bool, all_listed: bool) -> str:
    if deadline_passed:
        return "the deadline has passed; what was missing then is history"
    if not all_listed:
        return "no run has listed the mailboxes of every organization yet"
    return f"no verified export in the last {RATE_WINDOW.days} days to measure a rate by"


def _organization_coverage(backend: Backend, organization_id: str, deadline: datetime, now: datetime) -> dict:
    known = list(backend.ledger.mailboxes(organization_id))
    mailboxes = [mailbox for mailbox in known if is_exportable(mailbox)]
    missing = [mailbox for mailbox in mailboxes if not _covered_by(backend, mailbox, deadline)]
    runs = recent_runs(backend, organization_id, limit=50)
    rate = _exports_per_day(runs, now)
    # An organization no run has listed yet is not covered, even though no mailbox is missing.
    listed = bool(known) or _is_listed(backend, organization_id, runs)
    # When the deadline has passed, what was missing then is history, not a thing to forecast.
    forecast = _forecast(missing, rate, now) if listed and deadline >= now else None
    return {
        "organizationId": organization_id,
        "listed": listed,
        "eligible": len(mailboxes),
        "covered": len(mailboxes) - len(missing),
        "share": _share(len(mailboxes) - len(missing), len(mailboxes), listed),
        "exportsPerDay": round(rate, 2),
        "forecastComplete": forecast,
        "missing": [
            {
                "entityId": mailbox["entityId"],
                "email": mailbox.get("email", ""),
                "lastOutcome": mailbox.get("lastOutcome"),
                "lastError": last_error(mailbox),
                # Someone else's export is no proof: its bucket, key and content were never checked.
                "lastExportElsewhere": mailbox.get("lastExportElsewhere"),
            }
            for mailbox in sorted(missing, key=lambda item: item.get("email") or item["entityId"])
        ],
    }


def _covered_by(backend: Backend, mailbox: dict, deadline: datetime) -> bool:
    """A verified export ended by ``deadline``. lastSuccessAt is written only after the export
    was found in S3 under the right key; it answers at once for any deadline after it."""
    last = mailbox.get("lastSuccessAt")
    if not last:
        return False
    if parse_iso(last) <= deadline:
        return True
    # A deadline in the past, and a newer export since: an earlier one may have been in time.
    jobs = backend.ledger.jobs_of_mailbox(mailbox["organizationId"], mailbox["entityId"])
    return any(job.get("verified") and job.get("endedAt") and parse_iso(job["endedAt"]) <= deadline for job in jobs)


def _exports_per_day(runs: list[dict], now: datetime) -> float:
    """Verified exports per day over the recent ones of ``runs``.

    Failed and never-exported mailboxes come first in every run's queue, so this is also the
    pace at which the missing ones are being covered.
    """
    recent = [run for run in runs if run.get("startedAt") and now - RATE_WINDOW <= parse_iso(run["startedAt"]) <= now]
    exported = sum(int(run.get("counts", {}).get("exported", 0)) for run in recent)
    if not recent or not exported:
        return 0.0
    first_start = min(parse_iso(run["startedAt"]) for run in recent)
    days = max((now - first_start).total_seconds() / 86400, 1.0)
    return exported / days


def _forecast(missing: list[dict], per_day: float, now: datetime) -> str | None:
    """When the last missing mailbox will have an export: at the measured rate, and not before
    WorkMail's 24-hour rule lets the last of them be exported again."""
    if not missing:
        return iso(now)
    if per_day <= 0:
        return None
    at_rate = now + timedelta(days=len(missing) / per_day)
    return iso(max([at_rate, *(allowed_again(mailbox) for mailbox in missing)]))


def _share(part: int, whole: int, listed: bool = True) -> float:
    if not whole:
        # Nothing to export is full coverage, once a run has listed the organization and found so.
        return 100.0 if listed else 0.0
    return coverage_percent(part, whole)


def coverage_percent(part: int, whole: int) -> float:
    """The share to one decimal, rounded down: one mailbox missing of 2,401 is 99.9%, never 100.0%."""
    return (1000 * part // whole) / 10


def allowed_again(mailbox: dict) -> datetime:
    """When this backup will next start the mailbox's export: 24 hours after its last start, by
    anyone, and the margin for clock skew the runs wait too (so the views name the runs' own times)."""
    starts = [mailbox.get("lastStartedAt"), (mailbox.get("lastExportElsewhere") or {}).get("startedAt")]
    known = [parse_iso(start) for start in starts if start]
    if not known:
        return datetime.min.replace(tzinfo=UTC)
    return workmail.next_start_after(max(known))


# A live run ------------------------------------------------------------------------------------


def current_run(backend: Backend, organization_id: str) -> dict | None:
    runs = recent_runs(backend, organization_id, limit=5)
    return next((run for run in runs if run.get("status") in OPEN_RUN_STATES), None)


def watch_snapshot(backend: Backend, organization_id: str | None = None) -> list[dict]:
    """For each open run: slots in use, the queue, and each running job's progress."""
    now = utc_now()
    snapshots = []
    for org in backend.organizations(organization_id):
        run = current_run(backend, org)
        if run:
            snapshots.append(_snapshot(backend, run, now))
    return snapshots


def _snapshot(backend: Backend, run: dict, now: datetime) -> dict:
    org, run_id = run["organizationId"], run["runId"]
    jobs = [_progress(backend, task, now) for task in _active_tasks(backend, run)]
    execution = execution_of(backend, run)
    counts = {**_counts(run), "running": len(jobs)}
    return {
        "organizationId": org,
        "runId": run_id,
        "status": run.get("status"),
        "execution": execution,
        "stuck": is_stuck({"status": run.get("status"), "execution": execution}),
        "startedAt": run.get("startedAt"),
        "elapsedSeconds": age_seconds(run.get("startedAt"), now),
        "slotsInUse": len(jobs),
        "slots": int(run.get("maxConcurrentExports") or 10),
        "queued": _count_lane(backend, queue_partition(org, run_id), "READY#"),
        "deferred": _count_lane(backend, queue_partition(org, run_id), "WAIT#"),
        "counts": counts,
        "jobs": sorted(jobs, key=lambda job: job.get("startedAt") or ""),
    }


def _count_lane(backend: Backend, partition: str, prefix: str) -> int:
    """Count one queue lane without reading its items."""
    arguments = {
        "IndexName": "GSI1",
        "KeyConditionExpression": Key("GSI1PK").eq(partition) & Key("GSI1SK").begins_with(prefix),
        "Select": "COUNT",
    }
    total = 0
    while True:
        page = backend.ledger.table.query(**arguments)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _progress(backend: Backend, task: dict, now: datetime) -> dict:
    """A running job's progress: WorkMail's estimate when reachable, else elapsed over expected time."""
    elapsed = age_seconds(task.get("startedAt"), now)
    expected = int(task.get("expectedSeconds") or 0)
    progress, source = None, "estimate"
    if backend.workmail is not None and task.get("jobId"):
        progress, source = _workmail_progress(backend, task), "workmail"
    if progress is None and elapsed is not None and expected:
        progress, source = min(99, int(100 * elapsed / expected)), "estimate"
    return {
        "entityId": task["entityId"],
        "email": task.get("email", ""),
        "status": task.get("status"),
        "jobId": task.get("jobId"),
        "startedAt": task.get("startedAt"),
        "elapsedSeconds": elapsed,
        "expectedSeconds": expected or None,
        "progress": progress,
        "progressSource": source,
        "overrunning": is_overrunning(task, now),
    }


def _workmail_progress(backend: Backend, task: dict) -> int | None:
    try:
        job = backend.workmail.describe_mailbox_export_job(OrganizationId=task["organizationId"], JobId=task["jobId"])
    except AWS_ERRORS:
        # A view degrades to the estimate rather than failing.
        return None
    return int(job.get("EstimatedProgress") or 0)
