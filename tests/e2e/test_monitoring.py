"""Monitoring, end to end: the real handlers emit the run's metrics and publish its summary."""

import json
import os

import yaml

from tests.e2e.conftest import ORG, organization, published_summaries, scenario
from workmail_backup.local.emulator import load_scenario
from workmail_backup.local.runner import LocalEnvironment

FAILING = {"job_outcomes": [{"entity": "user001", "state": "FAILED", "error_info": "Mailbox is being migrated."}]}


def test_run_summary_lists_the_failed_export_with_its_reason_and_where_to_look(local_environment):
    with local_environment(scenario(organization(users=4, faults=FAILING))) as environment:
        result = environment.run_nightly()

        ((subject, message),) = published_summaries(environment)
        assert subject == f"workmail-backup {result.run_id} with failures: {ORG}"
        assert "Exported 3 of 4 mailboxes; failed 1" in message
        assert "- user001@example.com: Mailbox is being migrated." in message
        assert f"workmail-backup run show {result.run_id} --org {ORG} --stack {environment.stack.stack_name}" in message


def test_handlers_emit_the_run_metrics_per_organization(local_environment, capfd):
    with local_environment(scenario(organization(users=4, faults=FAILING))) as environment:
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
        environment.run_nightly()

    documents = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    per_organization = [doc for doc in documents if doc.get("OrganizationId") == ORG]
    names = {metric["Name"] for doc in per_organization for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"SlotUtilization", "ExportsStarted", "ExportsSucceeded", "ExportsFailed", "BytesExported"} <= names
    assert {"ExportsDeferred", "MailboxesOverdue", "RunDuration"} <= names
    run = next(doc for doc in per_organization if "ExportsSucceeded" in doc)
    # EMF values may be a list of samples; a run writes one.
    assert (run["ExportsSucceeded"], run["ExportsFailed"], run["ExportsStarted"]) in ((3, 1, 4), ([3], [1], [4]))
    assert all(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "WorkMailBackup" for doc in documents)


def test_handler_logs_are_structured_and_name_the_service_run_organization_and_mailbox(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario(organization(users=4, faults=FAILING))))
    with LocalEnvironment(load_scenario(path), log_path=tmp_path / "handlers.log") as environment:
        result = environment.run_nightly()

    lines = [json.loads(line) for line in (tmp_path / "handlers.log").read_text().splitlines()]
    per_run = [line for line in lines if line.get("organization_id") == ORG]
    assert per_run and all(line["service"] == "workmail-backup" for line in lines)
    assert all(line["run_id"] == result.run_id for line in per_run)
    started = [line for line in per_run if line["message"] == "Export started"]
    assert len(started) == 4 and all(line["entity_id"] and line["job_id"] for line in started)
    failed = next(line for line in per_run if line["message"] == "Export failed")
    assert failed["error"] == "Mailbox is being migrated."
    assert not any("testing" in json.dumps(line) for line in lines), "credentials must not reach the logs"
