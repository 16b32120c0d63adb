"""Text from WorkMail and the ledger (error messages, addresses) is shown as stored: never read
as terminal markup, never run as a spreadsheet formula."""

import csv
import io
import json

import pytest
import yaml

from tests.cli.conftest import open_environment
from tests.e2e.conftest import ORG, organization, scenario
from workmail_backup.ops.local_state import save_state

BRACKETED_ERROR = "Access denied to [/exports] prefix [bold red]x[/bold red]"
FORMULA_ERROR = '=HYPERLINK("http://example.invalid")'


@pytest.fixture(scope="module")
def hostile_state(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    people = [
        {"name": "cy", "email": "cy@example.com", "mailbox_mb": 5},
        {"name": "dash", "email": "-ops@example.com", "mailbox_mb": 5},
    ]
    faults = {
        "job_outcomes": [
            {"entity": "cy", "state": "FAILED", "error_info": BRACKETED_ERROR},
            {"entity": "dash", "state": "FAILED", "error_info": FORMULA_ERROR},
        ]
    }
    with open_environment(base, scenario(organization(users=1, more_users=people, faults=faults))) as environment:
        environment.run_nightly()
        save_state(environment, base / "state")
    return ["--local", str(base / "state")]


@pytest.mark.parametrize("command", [["run", "show", "nightly-20261203"], ["mailboxes"], ["coverage"]])
def test_an_error_with_brackets_is_shown_exactly_as_stored(cli, hostile_state, command):
    result = cli(*command, *hostile_state, columns=250)

    assert result.exit_code in (0, 1), result.output  # answered, not crashed
    assert BRACKETED_ERROR in result.stdout


def test_report_csv_cells_never_start_a_formula(cli, hostile_state, tmp_path):
    output = tmp_path / "report.csv"

    cli("report", "--format", "csv", "-o", str(output), *hostile_state)

    rows = {row["entityId"]: row for row in csv.DictReader(io.StringIO(output.read_text()))}
    dash = next(row for row in rows.values() if row["email"].endswith("ops@example.com"))
    assert dash["email"] == "'-ops@example.com"
    assert dash["error"] == "'" + FORMULA_ERROR
    assert all(not value.startswith(("=", "+", "-", "@")) for row in rows.values() for value in row.values())


def test_report_json_keeps_every_value_as_stored(cli, hostile_state):
    report = json.loads(cli("report", "--format", "json", "-o", "-", *hostile_state).stdout)

    mailboxes = {mailbox["email"]: mailbox for mailbox in report["organizations"][0]["mailboxes"]}
    assert report["organizations"][0]["organizationId"] == ORG
    assert mailboxes["-ops@example.com"]["exports"][0]["error"] == FORMULA_ERROR


def test_a_local_run_names_its_failed_mailboxes_with_their_errors_as_stored(cli, tmp_path):
    faults = {"job_outcomes": [{"entity": "user000", "state": "FAILED", "error_info": BRACKETED_ERROR}]}
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario(organization(users=2, faults=faults))))

    result = cli("local", "run", "--scenario", str(scenario_file), "--log-file", str(tmp_path / "log"), columns=250)

    assert result.exit_code == 1, "a night with a failed mailbox is not healthy"
    assert f"user000@example.com: {BRACKETED_ERROR}" in result.stdout
