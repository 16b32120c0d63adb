"""The report of a finished run: its metrics, and the summary published to the operators' topic.

Built once per run by FinishRun, from the ledger. Reads NOTIFICATION_TOPIC_ARN (no summary is
sent when it is empty), OVERDUE_AFTER_HOURS (default 48) and STACK_NAME, for the pointers.
"""

import os
from datetime import datetime, timedelta

from aws_lambda_powertools import Metrics

from mailbox_backup import clients, workmail
from mailbox_backup.clock import utc_now
from mailbox_backup.ledger import Ledger, parse_iso
from mailbox_backup.observability import RunReport, logger, record_run_metrics, summary_message, summary_subject

DEFAULT_OVERDUE_AFTER_HOURS = 48


def report_run(ledger: Ledger, sink: Metrics, organization_id: str, run_id: str) -> RunReport:
    """Emit the run's metrics and publish its summary; return what was reported."""
    report = build_report(ledger, organization_id, run_id, utc_now(), _overdue_after())

    if report.status != "SKIPPED":
        # A skipped night exported nothing; the run it was left to reports the numbers when it ends.
        record_run_metrics(sink, report)

    topic_arn = os.environ.get("NOTIFICATION_TOPIC_ARN", "").strip()
    if topic_arn:
        run_to_look_at = report.left_to_run_id or run_id
        clients.sns().publish(
            TopicArn=topic_arn,
            Subject=summary_subject(report),
            Message=summary_message(report, where_to_look(organization_id, run_to_look_at, ledger.table.name)),
        )
        logger.info("Run summary published", extra={"topic_arn": topic_arn})
    return report


def build_report(
    ledger: Ledger, organization_id: str, run_id: str, now: datetime, overdue_after: timedelta
) -> RunReport:
    run = ledger.get_run(organization_id, run_id) or {}
    tasks = list(ledger.tasks(organization_id, run_id))

    counts = {name: int(value) for name, value in (run.get("counts") or {}).items() if _is_number(value)}
    counts["started"] = sum(1 for task in tasks if task.get("jobId"))
    return RunReport(
        organization_id=organization_id,
        run_id=run_id,
        status=run.get("status", "FAILED"),
        started_at=parse_iso(run["startedAt"]) if run.get("startedAt") else None,
        ended_at=parse_iso(run["endedAt"]) if run.get("endedAt") else now,
        counts=counts,
        bytes_exported=sum(int(task.get("sizeBytes") or 0) for task in tasks if task.get("status") == "EXPORTED"),
        overdue_mailboxes=count_overdue(ledger.mailboxes(organization_id), now, overdue_after),
        failures=[
            (task.get("email") or task.get("name") or task["entityId"], task.get("error") or "no reason recorded")
            for task in tasks
            if task.get("status") == "FAILED"
        ],
        error=run.get("error"),
        reason=run.get("reason"),
        left_to_run_id=run.get("leftToRunId"),
    )


def count_overdue(mailboxes, now: datetime, overdue_after: timedelta) -> int:
    """Exportable mailboxes whose last verified export is older than ``overdue_after``, or missing."""
    overdue = 0
    for mailbox in mailboxes:
        if _skip_reason(mailbox):
            continue
        last_success = mailbox.get("lastSuccessAt")
        overdue += not last_success or now - parse_iso(last_success) > overdue_after
    return overdue


def where_to_look(organization_id: str, run_id: str, table_name: str) -> list[str]:
    stack = os.environ.get("STACK_NAME") or "<stack>"
    return [
        f"workmail-backup run show {run_id} --org {organization_id} --stack {stack}: "
        "every mailbox of the run, with its outcome.",
        f"workmail-backup mailboxes --overdue 2d --org {organization_id} --stack {stack}: "
        "mailboxes without a recent export.",
        f"workmail-backup doctor --stack {stack}: the organization, bucket, key and export role checks.",
        f"DynamoDB table {table_name}, partition RUN#{organization_id}#{run_id}: the run's tasks and errors.",
        "CloudWatch Logs of the Controller function, filtered on the run_id key, for each export's story.",
    ]


def _skip_reason(mailbox: dict) -> str | None:
    return workmail.skip_reason(workmail.Entity.from_mailbox_item(mailbox))


def _overdue_after() -> timedelta:
    return timedelta(hours=float(os.environ.get("OVERDUE_AFTER_HOURS", DEFAULT_OVERDUE_AFTER_HOURS)))


def _is_number(value) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True
