"""Monitoring, end to end: the real handlers emit the run's metrics and publish its summary."""

import json
import os

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from tests.e2e.conftest import ORG, organization, scenario

FAILING = {"job_outcomes": [{"entity": "user001", "state": "FAILED", "error_info": "Mailbox is being migrated."}]}


def _published(environment) -> list[tuple[str, str]]:
    topic = sns_backends[DEFAULT_ACCOUNT_ID][environment.region].topics[
        environment.stack.outputs["NotificationTopicArn"]
    ]
    return [(subject, message) for _, message, subject, *_ in topic.sent_notifications]


def test_run_summary_lists_the_failed_export_with_its_reason_and_where_to_look(local_environment):
    with local_environment(scenario(organization(users=4, faults=FAILING))) as environment:
        result = environment.run_nightly()

        ((subject, message),) = _published(environment)
        assert subject == f"workmail-backup {result.run_id} with failures: {ORG}"
        assert "Exported 3 of 4 mailboxes; failed 1" in message
        assert "- user001@example.com: Mailbox is being migrated." in message
        assert f"workmail-backup run show {result.run_id} --stack {environment.stack.stack_name}" in message


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
