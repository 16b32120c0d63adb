"""With several organizations, one organization's failure is never hidden by another's success."""

import csv
import io

import pytest
import yaml

from tests.cli.conftest import open_environment
from tests.e2e.conftest import ORG, OTHER_ORG, organization, scenario
from workmail_backup.ops.local_state import save_state


@pytest.fixture(scope="module")
def two_organizations(tmp_path_factory):
    """A night in which one organization succeeds and the other, no longer active, fails."""
    base = tmp_path_factory.mktemp("two")
    definition = scenario(organization(users=3), organization(OTHER_ORG, users=3, state="Deleted"))
    with open_environment(base, definition) as environment:
        environment.run_nightly()
        save_state(environment, base / "state")
    return ["--local", str(base / "state")]


def test_runs_exits_non_zero_when_one_organizations_newest_run_failed(cli, two_organizations):
    code, answer = cli.json("runs", *two_organizations)

    assert code == 1 and answer["healthy"] is False
    assert {run["organizationId"]: run["status"] for run in answer["runs"]} == {ORG: "SUCCEEDED", OTHER_ORG: "FAILED"}
    # The failed run ended before it listed a mailbox: it is over, not waiting for counts.
    failed_row = next(line for line in cli("runs", *two_organizations).stdout.splitlines() if OTHER_ORG[:12] in line)
    assert "no mailbox" in failed_row and "nothing yet" not in failed_row


def test_run_show_asks_which_organization_when_the_run_exists_in_several(cli, two_organizations):
    result = cli("run", "show", "nightly-20261203", *two_organizations)

    assert result.exit_code == 2
    assert "exists in 2 organizations" in result.output and "--org" in result.output


def test_run_show_of_the_failed_organization_shows_its_error(cli, two_organizations):
    code, answer = cli.json("run", "show", "nightly-20261203", "--org", OTHER_ORG, *two_organizations)

    assert code == 1 and answer["status"] == "FAILED"
    assert "not Active" in answer["error"]
    # The execution's own account: which state failed, with what error and cause.
    assert answer["execution"]["status"] == "FAILED"
    failed_state = answer["executionFailures"][0]
    assert (failed_state["state"], failed_state["error"]) == ("CheckPrerequisites", "PreflightFailedError")
    assert "Deleted, not Active" in failed_state["cause"]
    table = cli("run", "show", "nightly-20261203", "--org", OTHER_ORG, *two_organizations).stdout
    assert "Failed state CheckPrerequisites" in table and "PreflightFailedError" in table


def test_coverage_of_an_organization_whose_users_were_never_listed_is_not_complete(cli, two_organizations):
    code, answer = cli.json("coverage", *two_organizations)

    failed = next(item for item in answer["organizations"] if item["organizationId"] == OTHER_ORG)
    assert code == 1 and answer["healthy"] is False
    assert failed["eligible"] == 0 and failed["share"] == 0.0
    table = cli("coverage", *two_organizations).stdout
    assert "no run has listed its mailboxes yet" in table
    # The listed organization measured a rate; the forecast waits for the other one, and says so.
    assert "No forecast: no run has listed the mailboxes of every organization yet." in table
    assert "Nothing yet shows that the deadline 2027-03-31 will be met." in table
    assert "At this pace" not in table


def test_report_of_an_organization_whose_users_were_never_listed_does_not_call_it_covered(
    cli, two_organizations, tmp_path
):
    output = tmp_path / "report.html"

    result = cli("report", "-o", str(output), *two_organizations)

    html = output.read_text()
    section = html[html.index(f"Organization {OTHER_ORG}") :]
    assert result.exit_code == 1
    assert "No run has listed this organization's mailboxes yet, so none is covered" in section
    assert "every exportable mailbox has a verified export" not in section
    assert "no forecast: no run has listed the mailboxes of every organization yet" in html
    table = cli("report", "--format", "csv", "-o", "-", *two_organizations).stdout
    rows = [row for row in csv.DictReader(io.StringIO(table)) if row["organizationId"] == OTHER_ORG]
    assert [row["error"] for row in rows] == ["no run has listed this organization's mailboxes yet, so none is covered"]


def test_overdue_mailboxes_of_an_organization_never_listed_are_not_called_healthy(cli, two_organizations):
    code, answer = cli.json("mailboxes", "--overdue", "1d", "--org", OTHER_ORG, *two_organizations)
    table = cli("mailboxes", "--overdue", "1d", "--org", OTHER_ORG, *two_organizations).stdout

    assert code == 1
    assert answer["mailboxes"] == [] and answer["unlistedOrganizations"] == [OTHER_ORG]
    assert "no run has listed its mailboxes yet" in table and "No mailbox" not in table


def test_an_organization_with_nothing_to_export_is_fully_covered_once_listed(cli, tmp_path):
    leavers = [
        {"name": f"leaver{n}", "email": f"leaver{n}@example.com", "state": "DISABLED", "mailbox_mb": 5}
        for n in range(2)
    ]
    with open_environment(tmp_path, scenario(organization(users=0, more_users=leavers))) as environment:
        environment.run_nightly()
        save_state(environment, tmp_path / "state")

    code, answer = cli.json("coverage", "--local", str(tmp_path / "state"))

    assert code == 0 and (answer["eligible"], answer["share"]) == (0, 100.0)
    report = cli("report", "--format", "json", "-o", str(tmp_path / "r.json"), "--local", str(tmp_path / "state"))
    assert report.exit_code == 0


def test_a_local_run_of_several_organizations_tells_them_apart_by_alias(cli, tmp_path):
    definition = scenario(organization(users=2), organization(OTHER_ORG, users=2))
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(definition))

    result = cli("local", "run", "--scenario", str(scenario_file), "--log-file", str(tmp_path / "log"))

    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "┃" in line)
    for org in definition["organizations"]:
        assert org["alias"] in header, "each column of the summary is headed by its organization's alias"
        assert f"{org['alias']} is organization {org['id']}" in result.stdout
