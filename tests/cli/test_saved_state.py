"""Each read-only command against the saved state of a real local night (``--local DIR``)."""

import csv
import io
import json
import re
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from mailbox_backup.ledger import iso, parse_iso
from tests.cli.conftest import (
    DISABLED,
    EXPORTED_BY_SOMEONE_ELSE,
    FAILING,
    ORG,
    open_environment,
    troubled_scenario,
)
from tests.e2e.conftest import organization, scenario
from workmail_backup.local import runner
from workmail_backup.ops.local_state import save_state

CHROMIUM = "/usr/bin/chromium"


def _local(saved_states, which: str = "after_night") -> list[str]:
    return ["--local", str(saved_states[which])]


def _unfolded(text: str) -> str:
    """Text without the spacing and line breaks that the terminal's width put in."""
    return "".join(text.split())


def test_status_after_a_night_with_a_failed_mailbox_is_unhealthy_and_says_why(cli, saved_states):
    code, answer = cli.json("status", *_local(saved_states))

    organization = answer["organizations"][0]
    assert code == 1 and answer["healthy"] is False
    assert organization["last"]["runId"] == "nightly-20261203"
    assert organization["last"]["status"] == "SUCCEEDED"
    assert organization["last"]["counts"]["failed"] == 1
    assert organization["last"]["execution"]["status"] == "SUCCEEDED"
    assert organization["current"] is None
    assert any("1 mailbox(es) failed" in problem for problem in organization["problems"])


def test_status_table_names_the_run_and_its_execution(cli, saved_states):
    _, answer = cli.json("status", *_local(saved_states))
    result = cli("status", *_local(saved_states))

    assert result.exit_code == 1
    assert "Last run: nightly-20261203" in result.stdout
    assert answer["organizations"][0]["last"]["executionArn"] in _unfolded(result.stdout)
    assert "retry-failed" in result.stdout


def test_status_of_an_empty_ledger_says_no_run_yet(cli, saved_states):
    code, answer = cli.json("status", *_local(saved_states, "empty"))

    assert code == 1
    assert answer["organizations"][0]["problems"] == ["no run recorded yet"]


def test_runs_lists_the_night_with_its_counts_and_exits_1_for_its_failed_mailbox(cli, saved_states):
    code, answer = cli.json("runs", *_local(saved_states))

    # The same judgement as `status` and `run show`: a night with a failed mailbox needs a look.
    assert code == 1 and answer["healthy"] is False
    assert [run["runId"] for run in answer["runs"]] == ["nightly-20261203"]
    counts = answer["runs"][0]["counts"]
    assert {name: counts[name] for name in ("total", "exported", "failed", "deferred", "skipped")} == {
        "total": 13,
        "exported": 10,
        "failed": 1,
        "deferred": 0,
        "skipped": 2,
    }


def test_runs_of_an_empty_ledger_is_an_empty_list(cli, saved_states):
    assert cli.json("runs", *_local(saved_states, "empty")) == (0, {"runs": [], "healthy": True})


def test_run_show_puts_the_failed_mailbox_first_with_its_reason(cli, saved_states):
    code, detail = cli.json("run", "show", "nightly-20261203", *_local(saved_states))

    first = detail["mailboxes"][0]
    exported = [line for line in detail["mailboxes"] if line["outcome"] == "EXPORTED"]
    assert code == 1
    assert (first["email"], first["outcome"], first["reason"]) == (FAILING, "FAILED", "Mailbox is corrupt.")
    assert len(exported) == 10
    assert all(
        line["verified"]
        and line["s3Object"].startswith("s3://")
        and line["s3Object"].endswith(".zip")
        and line["sizeBytes"]
        for line in exported
    )
    assert all(line["durationSeconds"] > 0 for line in exported)


def test_run_show_gives_the_pace_of_a_full_pass(cli, saved_states):
    _, detail = cli.json("run", "show", "nightly-20261203", *_local(saved_states))
    table = cli("run", "show", "nightly-20261203", *_local(saved_states)).stdout

    pace = detail["pace"]
    # Ten slots, each export a few minutes: hundreds a day, and twelve mailboxes take a fraction of one.
    assert pace["mailboxesPerDay"] > 100 and 0 < pace["fullPassDays"] < 1
    # The failing one, and the one exported by someone else: no verified export, as `coverage` counts them.
    assert pace["mailboxesWithoutExport"] == 2
    _, coverage = cli.json("coverage", *_local(saved_states))
    assert coverage["eligible"] - coverage["covered"] == 2
    # WorkMail's 24-hour rule sets the date, and both name the minute the runs will start them.
    assert pace["allExportedBy"] == coverage["forecastComplete"]
    assert f"exportabout{round(pace['mailboxesPerDay']):,}mailboxesaday" in _unfolded(table)
    # The failing mailbox was started this night: WorkMail allows its next export a day later, not sooner.
    failed_start = next(line["startedAt"] for line in detail["mailboxes"] if line["email"] == FAILING)
    assert pace["allExportedBy"] >= iso(parse_iso(failed_start) + timedelta(hours=24))
    assert f"allowthemallby{pace['allExportedBy']}" in _unfolded(table)


def test_run_show_reads_in_an_80_column_terminal(cli, saved_states):
    result = cli("run", "show", "nightly-20261203", *_local(saved_states), columns=80)

    lines = result.stdout.splitlines()
    # The run's own facts are whole sentences, not cells cut down to a few letters.
    assert any(line.startswith("Mailboxes  10 exported, 1 failed, 0 deferred, 2 skipped") for line in lines)
    assert any(line.startswith("Status     SUCCEEDED") for line in lines)


@pytest.mark.parametrize(
    "command", [["status"], ["runs"], ["run", "show", "nightly-20261203"], ["mailboxes"], ["coverage"]]
)
def test_every_table_fits_an_80_column_terminal_without_cutting_values_short(cli, saved_states, command):
    result = cli(*command, *_local(saved_states), columns=80)

    assert max(len(line.rstrip()) for line in result.stdout.splitlines()) <= 80
    assert "…" not in result.stdout


def test_run_show_of_an_unknown_run_is_one_line_and_exit_2(cli, saved_states):
    result = cli("run", "show", "nightly-20261204", *_local(saved_states))

    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nightly-20261204 is not in" in result.stderr and "workmail-backup runs" in result.stderr


def test_run_show_of_a_malformed_run_id_says_what_ids_look_like(cli, saved_states):
    result = cli("run", "show", "last-night", *_local(saved_states))

    assert result.exit_code == 2
    assert "nightly-20261203" in result.stderr and "'last-night'" in result.stderr


def test_mailboxes_lists_every_mailbox_with_its_last_verified_export(cli, saved_states):
    code, answer = cli.json("mailboxes", *_local(saved_states))

    by_email = {line["email"]: line for line in answer["mailboxes"]}
    assert code == 1, "a mailbox whose last export failed is not healthy, as in status and runs"
    assert len(by_email) == 13
    assert by_email["user000@example.com"]["lastSuccessAt"] and by_email["user000@example.com"]["ageSeconds"] >= 0
    assert by_email[FAILING]["lastSuccessAt"] is None and by_email[FAILING]["lastError"] == "Mailbox is corrupt."
    assert (
        by_email[DISABLED]["exportable"] is False and by_email[DISABLED]["notExportableBecause"] == "user is disabled"
    )


def test_mailboxes_is_healthy_when_the_only_failed_mailbox_needs_no_export_any_more(cli, saved_states, tmp_path):
    state = json.loads((saved_states["after_night"] / "state.json").read_text())
    failed = next(item for item in state["items"] if item.get("email") == FAILING and item.get("type") == "MAILBOX")
    failed["state"] = "DISABLED"
    (tmp_path / "state.json").write_text(json.dumps(state))

    code, answer = cli.json("mailboxes", "--local", str(tmp_path))

    assert code == 0
    assert next(line for line in answer["mailboxes"] if line["email"] == FAILING)["lastOutcome"] == "FAILED"


def test_mailboxes_overdue_lists_the_never_exported_and_exits_1(cli, saved_states):
    code, answer = cli.json("mailboxes", "--overdue", "2d", *_local(saved_states))

    assert code == 1
    assert sorted(line["email"] for line in answer["mailboxes"]) == [FAILING, EXPORTED_BY_SOMEONE_ELSE]
    # Someone else's export two hours before the night is shown, but is no verified export of ours.
    elsewhere = next(line for line in answer["mailboxes"] if line["email"] == EXPORTED_BY_SOMEONE_ELSE)
    assert elsewhere["lastSuccessAt"] is None
    assert elsewhere["lastExportElsewhere"]["startedAt"] == "2026-12-02T23:00:00Z"
    assert elsewhere["lastExportElsewhere"]["description"] == "started by admin-script"
    assert elsewhere["lastExportElsewhere"]["seenAt"] == "2026-12-03T01:00:00Z"


def test_mailboxes_overdue_before_any_run_is_not_called_healthy(cli, saved_states):
    result = cli("mailboxes", "--overdue", "36h", *_local(saved_states, "empty"))

    # No mailbox is known yet, so none can be shown to be overdue, nor to be safe.
    assert result.exit_code == 1
    assert "no run has listed its mailboxes yet" in result.stdout and "No mailbox" not in result.stdout


def test_mailboxes_with_a_malformed_duration_says_what_to_type(cli, saved_states):
    result = cli("mailboxes", "--overdue", "2x", *_local(saved_states))

    assert result.exit_code == 2
    assert "--overdue takes a number and a unit" in result.stderr and "'2x'" in result.stderr


def test_coverage_counts_exportable_mailboxes_and_lists_the_missing(cli, saved_states):
    code, answer = cli.json("coverage", *_local(saved_states))

    organization = answer["organizations"][0]
    assert code == 1
    assert (answer["eligible"], answer["covered"], answer["share"]) == (12, 10, 83.3)
    assert sorted(item["email"] for item in organization["missing"]) == [FAILING, EXPORTED_BY_SOMEONE_ELSE]
    assert [item["email"] for item in organization["missing"] if item["lastExportElsewhere"]] == [
        EXPORTED_BY_SOMEONE_ELSE
    ]
    assert organization["exportsPerDay"] == 10.0
    # Two missing at ten a day would take hours; WorkMail takes the failed mailbox again only
    # 24 hours after its start in the night that began at 01:00.
    assert answer["forecastComplete"] >= "2026-12-04T01:00:00Z"
    assert answer["forecastMissesDeadline"] is False


def test_coverage_with_a_deadline_before_the_night_covers_nothing_and_says_it_has_passed(cli, saved_states):
    code, answer = cli.json("coverage", "--deadline", "2026-12-01", *_local(saved_states))
    table = cli("coverage", "--deadline", "2026-12-01", *_local(saved_states)).stdout

    assert code == 1 and answer["covered"] == 0
    assert answer["deadlinePassed"] is True and answer["forecastMissesDeadline"] is True
    # Nothing to forecast about a day gone by: the mailboxes have exports now.
    assert answer["forecastComplete"] is None
    assert "The deadline 2026-12-01 has passed; 12 mailbox(es) had no verified export by then." in table


def test_coverage_with_a_deadline_at_a_time_of_day_says_that_time(cli, saved_states):
    table = cli("coverage", "--deadline", "2026-12-03T00:30Z", *_local(saved_states)).stdout

    assert "by 2026-12-03T00:30:00Z" in table
    assert "The deadline 2026-12-03T00:30:00Z has passed" in table


@pytest.mark.parametrize(
    ("deadline", "says"),
    [
        ("31/03/2027", "--deadline takes a date such as 2027-03-31"),
        # Python reads these, as the start of a day or a week's day: too easy to mistype.
        ("20270331", "--deadline takes a date such as 2027-03-31"),
        ("2027-W13-3", "--deadline takes a date such as 2027-03-31"),
        ("2027-02-30", "'2027-02-30' is no date on the calendar"),
        ("2027-03-31T25:00Z", "is no time of day (hours 00-23"),
        ("2027-03-31T10:00+25:00", "is no time of day"),
        ("0001-01-01", "must fall between 2000 and 2099"),
        ("2099-12-31T23:00-05:00", "must fall between 2000 and 2099"),
        ("9999-12-31T23:00-05:00", "must fall between 2000 and 2099"),
        ("2027-03-31T18:00", "a time with its zone such as 2027-03-31T18:00Z"),
    ],
)
def test_coverage_with_a_malformed_deadline_is_refused(cli, saved_states, deadline, says):
    result = cli("coverage", "--deadline", deadline, *_local(saved_states))

    assert result.exit_code == 2 and says in result.stderr


def test_report_until_a_year_near_the_calendars_start_is_refused_in_one_line(cli, saved_states, tmp_path):
    result = cli("report", "--until", "0001-01-02", "-o", str(tmp_path / "r.html"), *_local(saved_states))

    assert result.exit_code == 2 and "--until must fall between 2000 and 2099" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_watch_without_a_run_in_progress_says_so(cli, saved_states):
    result = cli("watch", "--once", *_local(saved_states))

    assert result.exit_code == 0 and "No run in progress" in result.stdout


def test_start_on_saved_state_explains_where_runs_can_start(cli, saved_states):
    result = cli("start", *_local(saved_states, "empty"))

    assert result.exit_code == 2 and "local run" in result.stderr


def _garble_the_run_start(state: dict) -> dict:
    run = next(item for item in state["items"] if item["SK"].startswith("RUN#"))
    run["startedAt"] = "garbage"
    return state


def _garble_the_run_counts(state: dict) -> dict:
    run = next(item for item in state["items"] if item["SK"].startswith("RUN#"))
    run["counts"] = "x"
    return state


def _drop_a_ledger_key(state: dict) -> dict:
    del state["items"][0]["PK"]
    return state


def _empty_a_ledger_key(state: dict) -> dict:
    state["items"][1]["SK"] = ""
    return state


def _repeat_a_ledger_item(state: dict) -> dict:
    state["items"].append(dict(state["items"][0]))
    return state


def _make_a_ledger_item_too_large_for_dynamodb(state: dict) -> dict:
    state["items"][0]["note"] = "x" * 500_000
    return state


def _rename_the_partition_key(state: dict) -> dict:
    return json.loads(json.dumps(state).replace('"PK"', '"pk"'))


def _drop_a_failed_state_name(state: dict) -> dict:
    state["executions"][0]["failures"] = [{"timestamp": None, "error": "States.Timeout", "cause": None}]
    return state


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda state: [], "written by another version"),
        (lambda state: {**state, "executions": [{}]}, "is damaged (executions.0.executionArn: Field required)"),
        (lambda state: {**state, "executions": [{"executionArn": 7}]}, "is damaged (executions.0.executionArn:"),
        (_drop_a_failed_state_name, "is damaged (executions.0.failures.0.state: Field required)"),
        (_drop_a_ledger_key, "is damaged (items.0.PK: Field required)"),
        (_rename_the_partition_key, "is damaged (table.KeySchema: the ledger is keyed by PK and SK, not pk and SK)"),
        (
            lambda state: {**state, "table": {**state["table"], "GlobalSecondaryIndexes": []}},
            "the ledger's index GSI1 is keyed by GSI1PK and GSI1SK",
        ),
        (_empty_a_ledger_key, "is damaged (items.1.SK: "),
        (_repeat_a_ledger_item, "has the same key as items.0"),
        (lambda state: {**state, "table": {**state["table"], "KeySchema": [{}]}}, "is damaged (table.KeySchema.0."),
        (
            lambda state: {**state, "table": {**state["table"], "KeySchema": state["table"]["KeySchema"][::-1]}},
            "is damaged (table.KeySchema: a key is one HASH attribute, then at most one RANGE attribute)",
        ),
        (
            _make_a_ledger_item_too_large_for_dynamodb,
            "is damaged (the ledger cannot be rebuilt from it: An error occurred (ValidationException)",
        ),
        (lambda state: {**state, "savedAt": float("nan")}, "is not valid JSON (NaN is no JSON number)"),
        (lambda state: {**state, "savedAt": "garbage"}, "is damaged (savedAt:"),
        (lambda state: {**state, "outputs": {}}, "is damaged (outputs.LedgerTableName: Field required)"),
        (lambda state: {**state, "table": {}}, "is damaged (table.KeySchema: Field required)"),
        (_garble_the_run_start, "is damaged (items."),
        (lambda state: {**state, "region": "xx-nowhere-1"}, "'xx-nowhere-1' is no AWS region"),
        (_garble_the_run_counts, "is damaged (items."),
        (lambda state: {**state, "organizationIds": []}, f"organization {ORG} is missing from organizationIds"),
    ],
)
def test_a_damaged_saved_state_is_named_with_what_is_wrong(cli, saved_states, tmp_path, damage, says):
    state = json.loads((saved_states["after_night"] / "state.json").read_text())
    (tmp_path / "state.json").write_text(json.dumps(damage(state)))

    result = cli("status", "--local", str(tmp_path))

    assert result.exit_code == 2 and says in result.stderr and "local run --state-dir" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output


def test_the_saved_state_file_itself_names_the_state_as_well_as_its_folder(cli, saved_states):
    code, answer = cli.json("status", "--local", str(saved_states["after_night"] / "state.json"))

    assert answer["organizations"][0]["last"]["runId"] == "nightly-20261203"


def test_local_state_and_a_stack_together_are_refused_not_silently_chosen(cli, saved_states):
    result = cli("status", "--stack", "production", *_local(saved_states))

    assert result.exit_code == 2 and "either --local" in result.stderr


def test_a_missing_state_directory_says_how_to_create_it(cli, tmp_path):
    result = cli("status", "--local", str(tmp_path / "nowhere"))

    assert result.exit_code == 2
    assert "--state-dir" in result.stderr


def test_no_source_at_all_names_the_options(cli, monkeypatch):
    for variable in ("WORKMAIL_BACKUP_STACK", "WORKMAIL_BACKUP_TABLE", "WORKMAIL_BACKUP_LOCAL"):
        monkeypatch.delenv(variable, raising=False)

    result = cli("status")

    assert result.exit_code == 2 and "--stack NAME" in result.stderr and "--local DIR" in result.stderr


def test_report_json_holds_every_export_with_its_verification(cli, saved_states, tmp_path):
    output = tmp_path / "report.json"

    result = cli("report", "--format", "json", "--output", str(output), *_local(saved_states))

    report = json.loads(output.read_text())
    organization = report["organizations"][0]
    exports = [export for mailbox in organization["mailboxes"] for export in mailbox["exports"]]
    verified = [export for export in exports if export["verified"]]
    # Written in full, and exit 1 like `coverage`: two of the twelve enabled mailboxes have no verified export.
    assert result.exit_code == 1 and "10 of 12 mailboxes covered" in result.stdout
    assert len(verified) == 10
    assert all(
        export["s3Object"].startswith("s3://") and export["kmsKeyArn"].startswith("arn:aws:kms") for export in verified
    )
    assert [failure["reason"] for failure in organization["failures"]] == ["Mailbox is corrupt."]
    assert report["coverage"]["covered"] == 10
    by_email = {mailbox["email"]: mailbox for mailbox in organization["mailboxes"]}
    assert by_email[DISABLED]["notExportableBecause"] == "user is disabled"
    assert by_email[EXPORTED_BY_SOMEONE_ELSE]["lastExportElsewhere"]["description"] == "started by admin-script"
    assert organization["slotRun"]["runId"] == "nightly-20261203"
    assert max(job["slot"] for job in organization["slotRun"]["jobs"]) == 10


def test_report_csv_has_one_row_per_export_and_one_per_mailbox_without(cli, saved_states, tmp_path):
    output = tmp_path / "report.csv"

    result = cli("report", "--format", "csv", "-o", str(output), *_local(saved_states))

    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    by_email = {row["email"]: row for row in rows}
    assert result.exit_code == 1
    assert len(rows) == 13
    assert by_email[FAILING]["jobState"] == "FAILED" and by_email[FAILING]["error"] == "Mailbox is corrupt."
    assert by_email[EXPORTED_BY_SOMEONE_ELSE]["jobState"] == "no export in period"
    assert by_email["user000@example.com"]["verified"] == "True"


def test_report_csv_says_why_a_mailbox_needs_no_export_and_who_else_exported_one(cli, saved_states, tmp_path):
    output = tmp_path / "report.csv"

    cli("report", "--format", "csv", "-o", str(output), *_local(saved_states))

    by_email = {row["email"]: row for row in csv.DictReader(io.StringIO(output.read_text()))}
    assert by_email[DISABLED]["notExportableBecause"] == "user is disabled"
    assert by_email[EXPORTED_BY_SOMEONE_ELSE]["exportedElsewhereStartedAt"] == "2026-12-02T23:00:00Z"
    assert by_email[EXPORTED_BY_SOMEONE_ELSE]["exportedElsewhereJobId"]
    assert by_email[EXPORTED_BY_SOMEONE_ELSE]["exportedElsewhereS3Object"].startswith("s3://")
    assert by_email["user000@example.com"]["exportedElsewhereJobId"] == ""


def test_report_takes_its_format_from_the_file_name_when_none_is_given(cli, saved_states, tmp_path):
    cli("report", "-o", str(tmp_path / "audit.csv"), *_local(saved_states))
    cli("report", "-o", str(tmp_path / "audit.json"), *_local(saved_states))
    cli("report", "-o", str(tmp_path / "audit.csv.txt"), *_local(saved_states))

    assert (tmp_path / "audit.csv").read_text().startswith("organizationId,entityId,email")
    assert json.loads((tmp_path / "audit.json").read_text())["coverage"]["covered"] == 10
    assert (tmp_path / "audit.csv.txt").read_text().startswith("<!DOCTYPE html>")


def test_report_to_stdout_is_the_report_alone(cli, saved_states):
    result = cli("report", "--format", "json", "-o", "-", *_local(saved_states))

    assert json.loads(result.stdout)["coverage"]["covered"] == 10
    assert "Report written to stdout" in result.stderr


def test_report_for_a_period_without_runs_lists_no_exports(cli, saved_states, tmp_path):
    output = tmp_path / "old.json"

    cli(
        "report",
        "--format",
        "json",
        "-o",
        str(output),
        "--since",
        "2026-10-01",
        "--until",
        "2026-10-31",
        *_local(saved_states),
    )

    report = json.loads(output.read_text())
    assert all(not mailbox["exports"] for mailbox in report["organizations"][0]["mailboxes"])
    assert report["organizations"][0]["runs"] == []
    # The failure came after the period: it is no reason within it.
    assert all(mailbox["lastError"] is None for mailbox in report["organizations"][0]["mailboxes"])


def test_report_with_since_after_until_is_refused(cli, saved_states, tmp_path):
    result = cli(
        "report",
        "-o",
        str(tmp_path / "r.html"),
        "--since",
        "2026-12-02",
        "--until",
        "2026-11-30",
        *_local(saved_states),
    )

    assert result.exit_code == 2 and "must come before" in result.stderr


def test_report_starting_in_the_future_is_refused(cli, saved_states, tmp_path):
    result = cli("report", "-o", str(tmp_path / "r.html"), "--since", "2099-01-01", *_local(saved_states))

    assert result.exit_code == 2 and "--since (2099-01-01T00:00:00Z) is in the future" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_report_forecasts_full_coverage_as_the_coverage_command_does(cli, saved_states):
    code, answer = cli.json("coverage", *_local(saved_states))
    report = json.loads(cli("report", "--format", "json", "-o", "-", *_local(saved_states)).stdout)

    assert answer["forecastComplete"] and report["coverage"]["noForecastBecause"] is None
    assert report["coverage"]["forecastComplete"][:10] == answer["forecastComplete"][:10]


@pytest.mark.parametrize("command", [["start"], ["start", "-m", FAILING], ["retry-failed"]])
def test_saved_state_cannot_start_a_run_and_says_what_can(cli, saved_states, command):
    result = cli(*command, *_local(saved_states))

    # Not the 24-hour rule, which would suggest that waiting helps.
    assert result.exit_code == 2
    assert "Saved local state cannot start runs" in result.stderr and "--stack" in result.stderr
    assert "24 hours" not in result.stderr


def test_local_typed_on_the_command_line_wins_over_a_stack_in_the_environment(cli, saved_states, monkeypatch):
    monkeypatch.setenv("WORKMAIL_BACKUP_STACK", "production")

    code, answer = cli.json("status", *_local(saved_states))
    both_typed = cli("status", "--stack", "production", *_local(saved_states))

    assert code == 1 and answer["organizations"][0]["last"]["runId"] == "nightly-20261203"
    assert both_typed.exit_code == 2 and "not both" in both_typed.stderr


def test_an_unknown_organization_is_named_with_the_known_ones(cli, saved_states):
    result = cli("status", "--org", "m-ffffffffffffffffffffffffffffffff", *_local(saved_states))

    assert result.exit_code == 2 and ORG in result.stderr


def test_report_html_opens_offline_in_a_headless_browser(cli, saved_states, tmp_path):
    output = tmp_path / "report.html"
    cli("report", "--format", "html", "--output", str(output), *_local(saved_states))
    html = output.read_text()

    dom = render_in_headless_chromium(output, tmp_path / "profile")

    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the report must not load anything"
    assert "@import" not in html and "url(http" not in html
    assert "WorkMail backup audit report" in dom
    assert dom.count("<svg") == 3
    assert "Mailboxes with a verified export" in dom and "Export slots during nightly-20261203" in dom
    assert FAILING in dom and "Mailbox is corrupt." in dom
    assert "not exportable: user is disabled" in dom
    assert "exported outside this tool, started 2026-12-02T23:00:00Z" in dom
    missing = re.search(r'<table class="missing">(.*?)</table>', dom, re.S).group(1)
    assert re.search(rf"{EXPORTED_BY_SOMEONE_ELSE}</td>\s*<td>no export by this backup</td>", missing)
    assert "exported outside this tool, started 2026-12-02T23:00:00Z (COMPLETED), not verified here" in missing
    assert "83.3%" in dom


def render_in_headless_chromium(page: Path, profile: Path) -> str:
    """The DOM as Chromium builds it from the file, with networking off."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it with apt-get (Debian's chromium package).")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--dump-dom",
        page.as_uri(),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return finished.stdout


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["mailboxes", "--overdue", "1000000000d"], "--overdue is longer than 100 years"),
        (["report", "--output", "{tmp}"], "cannot be written"),
        (["start", "-m", " "], "no mailbox named"),
        (["start", "--mailboxes-from", "{tmp}/latin1.txt"], "--mailboxes-from is not UTF-8 text"),
        (["report", "--output", ""], "is empty; give the file to write, or '-' for stdout"),
        (["report", "--output", "{tmp}/no/such/r.html"], "the directory {tmp}/no/such does not exist"),
        (["status", "--org", ""], "is empty; give an organization id, or leave --org out"),
        (["coverage", "--org", "acme"], "is not a WorkMail organization id"),
    ],
)
def test_bad_input_to_the_commands_gets_one_line_and_exit_2(cli, saved_states, tmp_path, arguments, says):
    (tmp_path / "latin1.txt").write_bytes("b\xe9atrice@example.com\n".encode("latin-1"))

    result = cli(*[argument.format(tmp=tmp_path) for argument in arguments], *_local(saved_states))

    assert result.exit_code == 2 and says.format(tmp=tmp_path) in result.stderr
    assert result.stderr.strip().count("\n") == 0, "one line saying what to fix"
    assert not (tmp_path / "no").exists(), "a mistyped directory is named, not created"
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--state-dir", "{tmp}/taken"], "--state-dir {tmp}/taken cannot be written"),
        (["--log-file", "{tmp}"], "is a directory; give a file name"),
        (["--template", "{tmp}/taken"], "has no Resources section"),
        (["--template", "{tmp}"], "is a directory, not a template file"),
        (["--scenario", "{tmp}"], "is a directory; give the scenario file inside it"),
        (["--state-dir", "{tmp}/scenario.yaml"], "is a file; give a directory"),
        (["--scenario", "/dev/null"], "is not a regular file"),
        (["--time-limit", "soon"], "--time-limit takes a number and a unit (s, m, h, d or w), such as 30m or 2h"),
        (["--time-limit", "2d"], "--time-limit must be more than nothing and at most a day"),
    ],
)
def test_a_local_run_with_a_bad_path_stops_before_the_night_starts(cli, tmp_path, arguments, says):
    (tmp_path / "taken").write_text("Description: not a SAM template\n")
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(troubled_scenario()))

    result = cli("local", "run", "--scenario", str(scenario_file), *[a.format(tmp=tmp_path) for a in arguments])

    assert result.exit_code == 2 and says.format(tmp=tmp_path) in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--state-dir", "--state-dir is empty; give the directory to save the state in"),
        ("--scenario", "--scenario is empty; give the scenario file"),
        ("--template", "--template is empty; give the SAM template file"),
        ("--log-file", "--log-file is empty; give a file name"),
    ],
)
def test_a_local_run_with_an_empty_path_is_refused_not_taken_as_the_current_directory(
    cli, tmp_path, monkeypatch, option, says
):
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(troubled_scenario()))
    monkeypatch.chdir(tmp_path)

    result = cli("local", "run", "--scenario", str(scenario_file), option, "")

    assert result.exit_code == 2 and says in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scenario.yaml"]


def test_a_local_run_with_an_aws_fault_that_would_never_fire_is_refused_before_the_night(cli, tmp_path):
    definition = troubled_scenario()
    definition["environment_faults"] = {
        "aws_errors": [{"service": "dynamodb", "operation": "Foo", "error": "ThrottlingException"}]
    }
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(definition))

    result = cli("local", "run", "--scenario", str(scenario_file), "--log-file", str(tmp_path / "log"))

    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert (
        "environment_faults.aws_errors[0].operation: the functions make no dynamodb request 'Foo', so the fault "
        "would never fire; dynamodb requests that can be faulted: BatchWriteItem, GetItem, PutItem, Query, UpdateItem"
    ) in result.stderr


@pytest.mark.parametrize(
    ("jobs", "says"),
    [
        (
            [{"entity": f"user{n:03d}", "started": "-10m", "duration": "5h"} for n in range(11)],
            "organizations[0].jobs: 11 jobs run at the scenario's start",
        ),
        (
            [{"entity": "user001", "started": "-5h"}, {"entity": "user001", "started": "-3h"}],
            "organizations[0].jobs[1]: starts within 24 hours of another job of the same mailbox",
        ),
    ],
)
def test_a_local_run_of_a_history_workmail_could_not_have_is_refused_in_one_line(cli, tmp_path, jobs, says):
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario(organization(users=12, jobs=jobs))))

    result = cli("local", "run", "--scenario", str(scenario_file), "--log-file", str(tmp_path / "log"))

    assert result.exit_code == 2 and says in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output


def test_a_night_stopped_at_its_time_limit_is_saved_as_far_as_it_got(cli, tmp_path):
    # Exports of a day each: the night cannot end within a second of real time.
    slow = {**troubled_scenario(), "export_speed": {"fixed_seconds": 86_400, "mb_per_minute": 60}}
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(slow))
    state = tmp_path / "state"

    result = cli("local", "run", "--scenario", str(scenario_file), "--time-limit", "1s", "--state-dir", str(state))
    code, status = cli.json("status", "--local", str(state))

    assert result.exit_code == 1
    assert "did not finish within 1 s of real time" in result.stderr and f"saved in {state}" in result.stderr
    # The handlers' logs are kept with the state they explain.
    assert '"run_id":"nightly-20261203"' in (state / "local-run.log").read_text()
    assert status["organizations"][0]["current"]["status"] == "RUNNING"
    # Stopped, as StopExecution leaves it: status says the run is left open, and watch shows it once.
    assert code == 1 and status["organizations"][0]["current"]["execution"]["status"] == "ABORTED"
    assert "ended ABORTED" in status["organizations"][0]["problems"][0]
    watched = cli("watch", "--local", str(state))
    assert watched.exit_code == 1 and "nightly-20261203" in watched.stdout
    assert "execution ended ABORTED" in watched.stdout
    code, snapshot = cli.json("watch", "--local", str(state))
    assert code == 1 and snapshot["runs"][0]["stuck"]
    assert snapshot["runs"][0]["counts"]["running"] == snapshot["runs"][0]["slotsInUse"] > 0
    # Every command that judges the run agrees that it is stuck, and the runs table stays readable
    listed = cli("runs", "--local", str(state), columns=80)
    assert listed.exit_code == 1 and "running" in listed.stdout and "so far" in listed.stdout
    assert len(listed.stdout.splitlines()) < 12
    shown = cli("run", "show", "nightly-20261203", "--local", str(state))
    assert shown.exit_code == 1
    # A script asking for JSON learns on stdout that the night did not finish, and where it is saved.
    scripted = cli(
        "local", "run", "--scenario", str(scenario_file), "--time-limit", "1s", "--json", "--state-dir", str(state)
    )
    answer = json.loads(scripted.stdout)
    assert scripted.exit_code == 1 and answer["finished"] is False and answer["stateSavedIn"] == str(state)


def test_a_night_stopped_inside_a_long_lambda_call_is_saved_as_stopped(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "STOP_TIMEOUT_SECONDS", 0.2)
    release = threading.Event()

    def hold_the_first_controller_pass(handler: str, event: dict) -> None:
        if handler.endswith("controller.handler"):
            release.wait(60)

    with open_environment(tmp_path, scenario(organization(users=3))) as environment:
        environment.lambdas.before_invoke = hold_the_first_controller_pass
        with pytest.raises(runner.LocalRunError):
            environment.run_nightly(timeout_seconds=1)
        # GIVEN the stop asked for while the controller's call still runs on
        environment.stop_unfinished_executions("local run stopped at its --time-limit of 1s")
        save_state(environment, tmp_path / "state")
        release.set()

    code, status = cli.json("status", "--local", str(tmp_path / "state"))

    # THEN it is saved as StopExecution leaves it, and status names the run left open
    assert code == 1 and status["organizations"][0]["current"]["execution"]["status"] == "ABORTED"
    assert "ended ABORTED" in status["organizations"][0]["problems"][0]


def test_version_names_the_installed_release(cli):
    result = cli("--version")

    assert result.exit_code == 0 and result.stdout.strip() == f"workmail-backup {version('workmail-backup')}"


def test_a_reader_that_stops_early_ends_the_command_quietly_as_it_ends_any_unix_tool(saved_states):
    command = Path(sys.executable).parent / "workmail-backup"
    process = subprocess.Popen(
        [str(command), "mailboxes", *_local(saved_states)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # Nobody reads: as `| head` that has already stopped.
    process.stdout.close()
    stderr = process.stderr.read()

    assert process.wait(timeout=120) == -signal.SIGPIPE
    assert stderr == b""


def test_run_show_prints_a_failed_state_whose_details_step_functions_left_empty(cli, saved_states, tmp_path):
    state = json.loads((saved_states["after_night"] / "state.json").read_text())
    run = next(item for item in state["items"] if item["SK"].startswith("RUN#"))
    run["status"] = "FAILED"
    execution = next(item for item in state["executions"] if item["executionArn"] == run["executionArn"])
    execution["failures"] = [{"timestamp": None, "state": None, "error": None, "cause": None}]
    (tmp_path / "state.json").write_text(json.dumps(state))

    result = cli("run", "show", "nightly-20261203", "--local", str(tmp_path))

    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Failed state - at an unknown time: -: -" in result.stdout
