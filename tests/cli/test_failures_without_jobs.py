"""Mailboxes whose export never became a job: WorkMail refused it, or the mailbox went away.

No job record holds their story, so the views must take it from the mailbox itself.
"""

import csv
import io
import json

import pytest

from tests.cli.conftest import open_environment
from tests.e2e.conftest import organization, scenario
from workmail_backup.ops.local_state import save_state

REFUSED, GONE = "user003@example.com", "user014@example.com"


@pytest.fixture(scope="module")
def night_with_refusals(tmp_path_factory):
    base = tmp_path_factory.mktemp("refusals")
    faults = {
        # WorkMail refuses user003 for no reason it gives; user014 is deleted before its turn.
        "errors": [
            {
                "operation": "StartMailboxExportJob",
                "error": "LimitExceededException",
                "entity": "user003",
                "times": None,
            }
        ],
        "entity_changes": [{"entity": "user014", "state": "DELETED", "at": "+1m"}],
    }
    with open_environment(base, scenario(organization(users=22, faults=faults))) as environment:
        environment.run_nightly()
        save_state(environment, base / "state")
    return ["--local", str(base / "state")]


def test_the_report_lists_a_refused_export_among_the_failures_with_its_reason(cli, night_with_refusals):
    report = json.loads(cli("report", "--format", "json", "-o", "-", *night_with_refusals).stdout)

    failures = report["organizations"][0]["failures"]
    (refused,) = [failure for failure in failures if failure["what"].startswith(REFUSED)]
    assert refused["what"] == f"{REFUSED} (not started, run nightly-20261203)"
    assert "refused this export 3 times" in refused["reason"]


def test_the_csv_row_of_a_mailbox_without_an_export_says_why(cli, night_with_refusals):
    table = cli("report", "--format", "csv", "-o", "-", *night_with_refusals).stdout

    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(table))}
    assert "refused this export 3 times" in rows[REFUSED]["error"]
    assert rows[GONE]["error"].startswith("mailbox is gone or disabled since the run was planned")


def test_the_mailboxes_table_says_why_a_gone_mailbox_was_skipped(cli, night_with_refusals):
    listing = cli("mailboxes", *night_with_refusals, columns=200).stdout

    line = next(line for line in listing.splitlines() if GONE in line)
    assert "skipped: mailbox is gone or disabled since the run was planned" in line
