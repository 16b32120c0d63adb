"""Run metrics (names, units, the organization dimension) and the run summary operators receive."""

import json
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools import Metrics

from mailbox_backup.observability import (
    RunReport,
    record_run_metrics,
    record_slot_utilization,
    summary_message,
    summary_subject,
)

ORG = "m-" + "a" * 32
REPORT = RunReport(
    organization_id=ORG,
    run_id="nightly-20261203",
    status="SUCCEEDED",
    started_at=datetime(2026, 12, 3, 1, 0, tzinfo=UTC),
    ended_at=datetime(2026, 12, 3, 4, 30, tzinfo=UTC),
    counts={"total": 30, "started": 27, "exported": 25, "failed": 2, "deferred": 1, "skipped": 2},
    bytes_exported=123_456_789,
    overdue_mailboxes=3,
    failures=[("ceo@example.com", "Mailbox is being migrated."), ("room@example.com", "job ended CANCELLED")],
)


@pytest.fixture
def sink(monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    metrics = Metrics(namespace="WorkMailBackup", service="workmail-backup")
    # Powertools keeps metrics and dimensions in state shared by every Metrics instance.
    metrics.clear_metrics()
    yield metrics
    metrics.clear_metrics()


def _value(emf: dict, name: str) -> float:
    # EMF holds a list when a metric was added more than once, a number otherwise.
    value = emf[name]
    (single,) = value if isinstance(value, list) else [value]
    return single


def _directive(emf: dict) -> dict:
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    return directive


def test_run_metrics_carry_the_organization_and_the_run_numbers(sink, capsys):
    record_run_metrics(sink, REPORT)
    emf = sink.serialize_metric_set()

    directive = _directive(emf)
    assert directive["Namespace"] == "WorkMailBackup"
    assert sorted(directive["Dimensions"][0]) == ["OrganizationId", "service"]
    assert emf["OrganizationId"] == ORG
    units = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert units == {
        "ExportsStarted": "Count",
        "ExportsSucceeded": "Count",
        "ExportsFailed": "Count",
        "ExportsDeferred": "Count",
        "BytesExported": "Bytes",
        "MailboxesOverdue": "Count",
        "RunDuration": "Seconds",
        "RunsSucceeded": "Count",
        "RunsFailed": "Count",
    }
    values = {name: _value(emf, name) for name in units}
    assert (values["ExportsStarted"], values["ExportsSucceeded"], values["ExportsFailed"]) == (27, 25, 2)
    assert (values["ExportsDeferred"], values["BytesExported"], values["MailboxesOverdue"]) == (1, 123_456_789, 3)
    assert (values["RunDuration"], values["RunsSucceeded"], values["RunsFailed"]) == (3.5 * 3600, 1, 0)


def test_alarmed_metrics_are_also_written_without_the_organization(sink, capsys):
    record_run_metrics(sink, REPORT)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    by_name = {_directive(line)["Metrics"][0]["Name"]: line for line in lines}
    assert set(by_name) == {"ExportsFailed", "MailboxesOverdue"}
    for name, value in (("ExportsFailed", 2), ("MailboxesOverdue", 3)):
        assert _directive(by_name[name])["Dimensions"] == [["service"]]
        assert _value(by_name[name], name) == value


def test_slot_utilization_is_the_busy_share_of_the_configured_slots(sink):
    record_slot_utilization(sink, ORG, running=7, overrunning=1, max_concurrent=10)
    emf = sink.serialize_metric_set()

    assert (_value(emf, "SlotUtilization"), _value(emf, "ExportsRunning")) == (70, 7)
    assert _value(emf, "ExportsOverrunning") == 1
    assert emf["OrganizationId"] == ORG


def test_overrunning_exports_are_also_written_without_the_organization_for_their_alarm(sink, capsys):
    record_slot_utilization(sink, ORG, running=3, overrunning=2, max_concurrent=10)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [_directive(line)["Metrics"][0]["Name"] for line in lines] == ["ExportsOverrunning"]
    assert _directive(lines[0])["Dimensions"] == [["service"]] and _value(lines[0], "ExportsOverrunning") == 2


def test_summary_says_what_happened_what_failed_and_where_to_look():
    message = summary_message(REPORT, ["workmail-backup run show nightly-20261203 --stack prod"])

    assert f"Run nightly-20261203 of organization {ORG}: SUCCEEDED." in message
    assert "Exported 25 of 30 mailboxes; failed 2, deferred 1, skipped 2." in message
    assert "- ceo@example.com: Mailbox is being migrated." in message
    assert "- room@example.com: job ended CANCELLED" in message
    assert "Mailboxes overdue (no verified export recently): 3." in message
    assert message.endswith("Where to look:\n- workmail-backup run show nightly-20261203 --stack prod")


def test_summary_of_a_stopped_run_leads_with_its_error_and_caps_the_failure_list():
    failures = [(f"user{index}@example.com", "failed") for index in range(25)]
    report = RunReport(
        **{**REPORT.__dict__, "status": "FAILED", "error": "PreflightFailedError: bucket", "failures": failures}
    )

    message = summary_message(report, [], max_failures=20)

    assert "The run stopped early: PreflightFailedError: bucket" in message
    assert "- user19@example.com: failed" in message and "user20@example.com" not in message
    assert "- and 5 more." in message


def test_summary_of_a_skipped_night_names_the_run_that_goes_on_and_why():
    reason = "run nightly-20261202 is still working through the organization's queue and goes on"
    report = RunReport(
        **{**REPORT.__dict__, "status": "SKIPPED", "reason": reason, "left_to_run_id": "nightly-20261202"}
    )

    message = summary_message(report, ["workmail-backup run show nightly-20261202 --stack prod"])

    assert summary_subject(report) == f"workmail-backup nightly-20261203 SKIPPED: {ORG}"
    assert f"Why: {reason}." in message
    assert "Exported" not in message and "Failed exports" not in message
    assert message.endswith("Where to look:\n- workmail-backup run show nightly-20261202 --stack prod")
