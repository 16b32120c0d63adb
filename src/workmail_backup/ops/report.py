"""The audit report: every mailbox and its exports in a period, coverage, failures and charts.

``build_report`` gathers the data once; ``render_html``, ``render_csv`` and ``render_json``
only format it, so the three formats always agree.
"""

import csv
import io
import json
from datetime import datetime, timedelta

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from mailbox_backup.clock import utc_now
from mailbox_backup.ledger import iso, parse_iso
from workmail_backup.ops import charts
from workmail_backup.ops.backend import Backend
from workmail_backup.ops.errors import InvalidRequestError
from workmail_backup.ops.queries import coverage, coverage_percent, is_exportable, last_error, skip_reason_of
from workmail_backup.ops.values import age_seconds, human_duration, human_size, s3_uri, seconds_between

DEFAULT_PERIOD = timedelta(days=30)
NEVER_LISTED = "no run has listed this organization's mailboxes yet, so none is covered"
MAX_CHART_DAYS = 400
CSV_COLUMNS = (
    "organizationId",
    "entityId",
    "email",
    "kind",
    "state",
    "lastVerifiedExportAt",
    "runId",
    "jobId",
    "jobState",
    "startedAt",
    "endedAt",
    "verified",
    "verificationProblem",
    "s3Object",
    "sizeBytes",
    "etag",
    "versionId",
    "kmsKeyArn",
    "error",
    "notExportableBecause",
    "exportedElsewhereStartedAt",
    "exportedElsewhereJobId",
    "exportedElsewhereS3Object",
)


def build_report(
    backend: Backend,
    since: datetime | None = None,
    until: datetime | None = None,
    organization_id: str | None = None,
) -> dict:
    now = utc_now()
    until = until or now
    since = since or until - DEFAULT_PERIOD
    if since > now:
        raise InvalidRequestError(f"--since ({iso(since)}) is in the future: the ledger ends at {iso(now)}.")
    if since >= until:
        raise InvalidRequestError(f"--since ({iso(since)}) must come before --until ({iso(until)}).")
    # Coverage is as of the period's end; a period ending now or later is measured now, with a forecast.
    as_of = min(until, now)
    summary = coverage(backend, as_of, organization_id, now=as_of)
    organizations = [
        _organization(backend, covered, since, until, reaches_now=until >= now) for covered in summary["organizations"]
    ]
    return {
        "generatedAt": iso(now),
        "source": backend.description,
        "since": iso(since),
        "until": iso(until),
        "coverage": {key: value for key, value in summary.items() if key != "organizations"},
        "organizations": organizations,
    }


def _organization(backend: Backend, covered: dict, since: datetime, until: datetime, reaches_now: bool) -> dict:
    """One organization's part of the report, around its coverage (read once, for the summary too)."""
    organization_id = covered["organizationId"]
    mailboxes = sorted(
        backend.ledger.mailboxes(organization_id), key=lambda item: item.get("email") or item["entityId"]
    )
    jobs = {
        mailbox["entityId"]: backend.ledger.jobs_of_mailbox(organization_id, mailbox["entityId"])
        for mailbox in mailboxes
    }
    runs = [
        run
        for run in sorted(
            backend.ledger.runs(organization_id), key=lambda run: run.get("startedAt") or "", reverse=True
        )
        if _in_period(run.get("startedAt"), since, until)
    ]
    return {
        "organizationId": organization_id,
        "coverage": covered,
        "mailboxes": [_mailbox(mailbox, jobs[mailbox["entityId"]], since, until, reaches_now) for mailbox in mailboxes],
        "failures": _failures(mailboxes, jobs, runs, since, until),
        "runs": [_run_line(run) for run in runs],
        "coverageSeries": _coverage_series(mailboxes, jobs, since, until),
        "slotRun": _slot_run(backend, runs),
    }


def _in_period(moment: str | None, since: datetime, until: datetime) -> bool:
    return bool(moment) and since <= parse_iso(moment) <= until


def _mailbox(mailbox: dict, jobs: list[dict], since: datetime, until: datetime, reaches_now: bool) -> dict:
    return {
        "entityId": mailbox["entityId"],
        "email": mailbox.get("email", ""),
        "kind": mailbox.get("kind"),
        "state": mailbox.get("state"),
        "exportable": is_exportable(mailbox),
        "notExportableBecause": skip_reason_of(mailbox),
        # Why it has no export: told only where it belongs to the period, so a past period's report
        # does not give a reason from after it.
        "lastError": _reason_in_period(mailbox, since, until, reaches_now),
        "lastVerifiedExportAt": _last_verified(jobs, until),
        "lastExportElsewhere": _export_elsewhere(mailbox),
        "exports": [
            _export(job)
            for job in sorted(jobs, key=lambda job: job["startedAt"])
            if _in_period(job["startedAt"], since, until)
        ],
    }


def _reason_in_period(mailbox: dict, since: datetime, until: datetime, reaches_now: bool) -> str | None:
    refusal = mailbox.get("lastNotStarted") or {}
    if _in_period(refusal.get("at"), since, until):
        return refusal.get("reason")
    # The mailbox's last error has no time of its own: it is today's, right for a period up to now.
    return last_error(mailbox) if reaches_now else None


def _last_verified(jobs: list[dict], until: datetime) -> str | None:
    ends = [
        job["endedAt"]
        for job in jobs
        if job.get("verified") and job.get("endedAt") and parse_iso(job["endedAt"]) <= until
    ]
    return max(ends, default=None)


def _export_elsewhere(mailbox: dict) -> dict | None:
    """The newest export someone else started, as last seen; it is no verified export of ours."""
    elsewhere = mailbox.get("lastExportElsewhere")
    if not elsewhere:
        return None
    return {**elsewhere, "s3Object": s3_uri(elsewhere.get("s3Bucket"), None, elsewhere.get("s3Path"))}


def _export(job: dict) -> dict:
    bucket, key = job.get("s3Bucket"), job.get("objectKey")
    return {
        "runId": job.get("runId"),
        "jobId": job.get("jobId"),
        "jobState": job.get("state"),
        "startedAt": job.get("startedAt"),
        "endedAt": job.get("endedAt"),
        "durationSeconds": seconds_between(job.get("startedAt"), job.get("endedAt")),
        "verified": bool(job.get("verified")),
        "verificationProblem": job.get("verificationProblem"),
        "s3Object": s3_uri(bucket, key, job.get("s3Path")),
        "sizeBytes": job.get("sizeBytes"),
        "etag": job.get("etag"),
        "versionId": job.get("versionId"),
        "kmsKeyArn": job.get("objectKmsKeyId") or job.get("kmsKeyArn"),
        "error": job.get("error"),
    }


def _failures(mailboxes: list[dict], jobs: dict, runs: list[dict], since: datetime, until: datetime) -> list[dict]:
    """Failed exports and failed runs in the period, each with its reason."""
    failures = [
        {"when": run.get("endedAt") or run.get("startedAt"), "what": f"run {run['runId']}", "reason": run.get("error")}
        for run in runs
        if run.get("status") == "FAILED"
    ]
    for mailbox in mailboxes:
        for job in jobs[mailbox["entityId"]]:
            if _in_period(job["startedAt"], since, until) and job.get("state") not in ("COMPLETED", "RUNNING"):
                what = f"{mailbox.get('email') or mailbox['entityId']} (job {job.get('jobId')})"
                failures.append(
                    {"when": job.get("endedAt") or job["startedAt"], "what": what, "reason": job.get("error")}
                )
        failures += _not_started(mailbox, since, until)
    return sorted(failures, key=lambda failure: failure["when"] or "", reverse=True)


def _not_started(mailbox: dict, since: datetime, until: datetime) -> list[dict]:
    """The last time WorkMail would not start the mailbox's export at all: no job records it."""
    refusal = mailbox.get("lastNotStarted") or {}
    if not _in_period(refusal.get("at"), since, until):
        return []
    what = f"{mailbox.get('email') or mailbox['entityId']} (not started, run {refusal.get('runId')})"
    return [{"when": refusal["at"], "what": what, "reason": refusal.get("reason")}]


def _run_line(run: dict) -> dict:
    return {
        "runId": run["runId"],
        "status": run.get("status"),
        "startedAt": run.get("startedAt"),
        "endedAt": run.get("endedAt"),
        "counts": run.get("counts", {}),
        "error": run.get("error"),
    }


def _coverage_series(mailboxes: list[dict], jobs: dict, since: datetime, until: datetime) -> list[tuple[str, float]]:
    """For each day of the period: the share of exportable mailboxes with a verified export by its end."""
    exportable = [mailbox["entityId"] for mailbox in mailboxes if is_exportable(mailbox)]
    first_verified = {}
    for entity_id in exportable:
        ends = [job["endedAt"] for job in jobs[entity_id] if job.get("verified") and job.get("endedAt")]
        if ends:
            first_verified[entity_id] = parse_iso(min(ends))
    end = min(until, utc_now())
    day = max(since, end - timedelta(days=MAX_CHART_DAYS)).replace(hour=23, minute=59, second=59, microsecond=0)
    series = []
    while True:
        covered = sum(1 for moment in first_verified.values() if moment <= min(day, end))
        series.append((day.strftime("%Y-%m-%d"), coverage_percent(covered, len(exportable)) if exportable else 100.0))
        if day >= end:
            return series
        day += timedelta(days=1)


def _slot_run(backend: Backend, runs: list[dict]) -> dict | None:
    """The newest run of the period that started exports, with each export placed on a slot."""
    for run in runs:
        tasks = [
            task
            for task in backend.ledger.tasks(run["organizationId"], run["runId"])
            if task.get("startedAt") and task.get("status") in ("EXPORTED", "FAILED", "RUNNING")
        ]
        if tasks:
            return {"runId": run["runId"], "startedAt": run["startedAt"], "jobs": _place_on_slots(tasks, run)}
    return None


def _place_on_slots(tasks: list[dict], run: dict) -> list[dict]:
    """Give each export the first slot free when it started (interval partitioning)."""
    slot_free_at: list[datetime] = []
    placed = []
    for task in sorted(tasks, key=lambda item: item["startedAt"]):
        start = parse_iso(task["startedAt"])
        end = parse_iso(task.get("endedAt") or run.get("endedAt") or iso(utc_now()))
        slot = next((index for index, free in enumerate(slot_free_at) if free <= start), len(slot_free_at))
        if slot == len(slot_free_at):
            slot_free_at.append(end)
        slot_free_at[slot] = end
        label = task.get("email") or task["entityId"]
        placed.append({"slot": slot + 1, "start": start, "end": end, "label": label, "outcome": task["status"]})
    return placed


# Formats ---------------------------------------------------------------------------------------


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=str) + "\n"


def render_csv(report: dict) -> str:
    """One row per export in the period; a mailbox without one, and an organization never
    listed, get a row that says so."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for organization in report["organizations"]:
        if not organization["coverage"]["listed"]:
            writer.writerow({"organizationId": organization["organizationId"], "error": NEVER_LISTED})
        for mailbox in organization["mailboxes"]:
            common = {"organizationId": organization["organizationId"], **mailbox, **_elsewhere_columns(mailbox)}
            without = {"jobState": "no export in period", "error": mailbox["lastError"]}
            for export in mailbox["exports"] or [without]:
                writer.writerow({name: _inert(value) for name, value in {**common, **export}.items()})
    return buffer.getvalue()


def _inert(value: object) -> object:
    """A cell a spreadsheet shows as text, never runs as a formula (OWASP's CSV injection advice).

    An address such as ``-ops@example.com`` or an error text starting with ``=`` gets a leading
    quote, which spreadsheets hide; the JSON report keeps every value exactly as stored.
    """
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def _elsewhere_columns(mailbox: dict) -> dict:
    elsewhere = mailbox["lastExportElsewhere"] or {}
    return {
        "exportedElsewhereStartedAt": elsewhere.get("startedAt"),
        "exportedElsewhereJobId": elsewhere.get("jobId"),
        "exportedElsewhereS3Object": elsewhere.get("s3Object"),
    }


def render_html(report: dict) -> str:
    environment = Environment(loader=PackageLoader("workmail_backup.ops"), autoescape=select_autoescape(["html", "j2"]))
    environment.filters["duration"] = human_duration
    environment.filters["size"] = human_size
    template = environment.get_template("report.html.j2")
    return template.render(report=report, charts=_charts(report))


def _charts(report: dict) -> dict[str, dict[str, Markup]]:
    until = parse_iso(report["until"])
    drawn = {}
    for organization in report["organizations"]:
        ages = [
            None if not mailbox["lastVerifiedExportAt"] else age_seconds(mailbox["lastVerifiedExportAt"], until) / 86400
            for mailbox in organization["mailboxes"]
            if mailbox["exportable"]
        ]
        org_charts = {
            "coverage": Markup(charts.coverage_over_time(organization["coverageSeries"])),
            "ages": Markup(charts.age_of_last_export(ages)),
        }
        slot_run = organization["slotRun"]
        if slot_run:
            start = parse_iso(slot_run["startedAt"])
            org_charts["slots"] = Markup(charts.slot_timeline(slot_run["runId"], slot_run["jobs"], start))
        drawn[organization["organizationId"]] = org_charts
    return drawn
