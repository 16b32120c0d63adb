"""A backup tool earns trust on its worst night: limits, faults, crashes and repeats."""

import json
import threading
import time
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from mailbox_backup.ledger import parse_iso
from tests.e2e.conftest import ORG, OTHER_ORG, organization, scenario
from workmail_backup.cli import app
from workmail_backup.local.runner import LocalRunError


def _by_email(result, organization_index: int = 0) -> dict[str, dict]:
    return {mailbox["email"]: mailbox for mailbox in result.organizations[organization_index].mailboxes()}


def _our_jobs(environment, org_id: str = ORG) -> list:
    return [job for job in environment.emulator.jobs(org_id) if job.started_by == "api"]


def _next_night(environment, first_night: datetime, hours: float) -> datetime:
    """Move simulated time to the next scheduled start, ``hours`` after the first one."""
    next_start = first_night + timedelta(hours=hours)
    environment.clock.advance((next_start - environment.clock.now()).total_seconds())
    return next_start


def test_a_run_at_the_same_time_every_night_exports_every_mailbox_each_night(local_environment):
    with local_environment(scenario(organization(users=15))) as environment:
        first_start = environment.clock.now()
        environment.run_nightly()

        second = environment.run_nightly(_next_night(environment, first_start, 24))

        assert {mailbox["outcome"] for mailbox in _by_email(second).values()} == {"EXPORTED"}
        assert environment.emulator.limit_exceeded_count(ORG) == 0
        assert len(_our_jobs(environment)) == 30


def test_a_23_hour_night_across_daylight_saving_still_exports_every_mailbox(local_environment):
    # 2027-03-14 is the spring-forward night in New York: 01:00 local to 01:00 local is 23 hours.
    definition = scenario(organization(users=12), start="2027-03-13T06:00:00Z")
    with local_environment(definition, ScheduleTimezone="America/New_York") as environment:
        first_start = environment.clock.now()
        first = environment.run_nightly()

        second = environment.run_nightly(_next_night(environment, first_start, 23))

        assert first.run_id == "nightly-20270313" and second.run_id == "nightly-20270314"
        assert {mailbox["outcome"] for mailbox in _by_email(second).values()} == {"EXPORTED"}
        assert environment.emulator.limit_exceeded_count(ORG) == 0
        for mailbox in _by_email(second).values():
            previous = [job.start for job in _our_jobs(environment) if job.entity_id == mailbox["entityId"]][0]
            assert parse_iso(mailbox["start"]) - previous >= timedelta(hours=24)


def test_jobs_someone_else_starts_during_the_run_never_push_the_organization_over_ten(local_environment):
    others = [{"entity": f"user{index:03d}", "started": f"+{20 + index}m", "duration": "2h"} for index in range(25, 31)]
    with local_environment(scenario(organization(users=31, jobs=others))) as environment:
        result = environment.run_nightly()

        run = result.organizations[0]
        assert run.peak_running <= 10
        assert run.run["counts"]["failed"] == 0
        assert run.run["status"] == "SUCCEEDED"
        assert sum(1 for mailbox in run.mailboxes() if mailbox["outcome"] == "EXPORTED") >= 25


def test_throttling_and_transient_errors_are_retried_and_the_run_completes(local_environment):
    faults = {
        "errors": [
            {"operation": "ListUsers", "error": "ThrottlingException", "times": 2},
            {"operation": "StartMailboxExportJob", "error": "TooManyRequestsException", "times": 3},
            {"operation": "DescribeMailboxExportJob", "error": "InternalServerError", "times": 3},
            {"operation": "GetMailboxDetails", "error": "ServiceUnavailable", "times": 2},
        ]
    }
    definition = scenario(organization(users=12, faults=faults))
    definition["environment_faults"] = {
        "aws_errors": [
            {
                "service": "dynamodb",
                "operation": "UpdateItem",
                "error": "ProvisionedThroughputExceededException",
                "times": 3,
            },
            {"service": "s3", "operation": "HeadObject", "error": "SlowDown", "times": 2},
        ]
    }
    with local_environment(definition) as environment:
        result = environment.run_nightly()

        assert result.organizations[0].run["status"] == "SUCCEEDED"
        assert {mailbox["outcome"] for mailbox in _by_email(result).values()} == {"EXPORTED"}


def test_a_mailbox_whose_size_workmail_never_returns_is_still_exported_with_the_others(local_environment):
    lasting = [{"operation": "GetMailboxDetails", "error": "InternalServerError", "times": None, "entity": "user002"}]
    with local_environment(scenario(organization(users=5, faults={"errors": lasting}))) as environment:
        result = environment.run_nightly()

        assert result.organizations[0].run["status"] == "SUCCEEDED"
        assert {mailbox["outcome"] for mailbox in _by_email(result).values()} == {"EXPORTED"}


def test_a_workmail_outage_of_ten_minutes_mid_run_is_waited_out(local_environment):
    outage = [{"operation": "*", "error": "InternalServerError", "from": "+1h", "until": "+1h10m", "times": None}]
    # Exports of about half an hour each, so that passes fall inside the outage.
    big = {"count": 40, "seed": 2, "median_mb": 1500, "min_mb": 1000, "max_mb": 2000}
    with local_environment(
        scenario(organization(users=0, generate_users=big, faults={"errors": outage}))
    ) as environment:
        result = environment.run_nightly()

        assert result.organizations[0].run["status"] == "SUCCEEDED"
        assert {mailbox["outcome"] for mailbox in _by_email(result).values()} == {"EXPORTED"}


def test_a_workmail_outage_as_the_night_starts_is_waited_out_by_the_prerequisite_checks(local_environment):
    outage = [{"operation": "*", "error": "InternalServerError", "until": "+5m", "times": None}]
    with local_environment(scenario(organization(users=4, faults={"errors": outage}))) as environment:
        result = environment.run_nightly()

        assert result.organizations[0].run["status"] == "SUCCEEDED"
        assert {mailbox["outcome"] for mailbox in _by_email(result).values()} == {"EXPORTED"}


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        # A refusal nothing explains: slots free, no export of the mailbox in 24 hours.
        ("LimitExceededException", "WorkMail refused this export 3 times"),
        # Server errors on this one mailbox's start, past the client's retries.
        ("InternalServerError", "WorkMail failed to start this export 3 times (InternalServerError"),
    ],
)
def test_a_mailbox_workmail_keeps_refusing_fails_alone_and_the_run_ends(local_environment, error, reason):
    refused = [{"operation": "StartMailboxExportJob", "error": error, "entity": "user003", "times": None}]
    with local_environment(scenario(organization(users=6, faults={"errors": refused}))) as environment:
        result = environment.run_nightly()

        mailboxes = _by_email(result)
        assert result.organizations[0].run["status"] == "SUCCEEDED"
        assert mailboxes["user003@example.com"]["outcome"] == "FAILED"
        assert reason in mailboxes["user003@example.com"]["reason"]
        assert [mailbox["outcome"] for mailbox in mailboxes.values()].count("EXPORTED") == 5
        ledger_mailbox = next(m for m in environment.ledger.mailboxes(ORG) if m["email"] == "user003@example.com")
        assert ledger_mailbox["lastOutcome"] == "FAILED", "retry-failed must find it"


def test_a_mailbox_deleted_or_disabled_after_listing_is_skipped_with_the_reason(local_environment):
    faults = {
        "entity_changes": [
            {"entity": "user014", "state": "DELETED", "at": "+1m"},
            {"entity": "user021", "state": "DISABLED", "at": "+1m"},
        ]
    }
    with local_environment(scenario(organization(users=22, faults=faults))) as environment:
        result = environment.run_nightly()

        mailboxes = _by_email(result)
        # The two smallest mailboxes: they are started last, after the change.
        for email in ("user014@example.com", "user021@example.com"):
            assert mailboxes[email]["outcome"] == "SKIPPED"
            assert "since the run was planned" in mailboxes[email]["reason"]
        assert result.organizations[0].run["counts"]["exported"] == 20
        # Counted under one reason, not one per mailbox.
        assert result.organizations[0].run["skipReasons"] == {"gone or disabled since the run was planned": 2}


def test_failed_and_cancelled_jobs_are_recorded_with_the_error_and_go_first_next_night(local_environment):
    faults = {
        "job_outcomes": [
            {"entity": "user013", "state": "FAILED", "error_info": "Mailbox is corrupt.", "times": 1},
            {"entity": "user014", "state": "CANCELLED", "times": 1},
        ]
    }
    with local_environment(scenario(organization(users=15, faults=faults))) as environment:
        first_start = environment.clock.now()
        first = environment.run_nightly()

        failed = _by_email(first)
        assert failed["user013@example.com"]["outcome"] == "FAILED"
        assert "Mailbox is corrupt." in failed["user013@example.com"]["reason"]
        assert failed["user014@example.com"]["outcome"] == "FAILED"
        assert "CANCELLED" in failed["user014@example.com"]["reason"]
        assert first.organizations[0].run["counts"]["failed"] == 2

        environment.run_nightly(_next_night(environment, first_start, 48))
        second_night = sorted(
            (job for job in _our_jobs(environment) if job.start >= first_start + timedelta(hours=48)),
            key=lambda job: job.start,
        )
        first_wave = {job.entity_id for job in second_night if job.start == second_night[0].start}
        # user014 has one of the smallest mailboxes: without its failure it would start in the last wave.
        assert {failed["user013@example.com"]["entityId"], failed["user014@example.com"]["entityId"]} <= first_wave


@pytest.mark.parametrize(
    ("problem", "named"), [("role_not_trusted", "role"), ("key_disabled", "key"), ("bucket_missing", "bucket")]
)
def test_a_broken_export_configuration_stops_the_run_with_one_clear_error(local_environment, problem, named):
    definition = scenario(organization(users=25))
    # Broken after planning, so that no check before the run can catch it: the exports must.
    definition["environment_faults"] = {"export_configuration": [{"problem": problem, "when": "after_planning"}]}
    with local_environment(definition) as environment:
        result = environment.run_nightly()

        run = result.organizations[0].run
        assert run["status"] == "FAILED"
        cited_error = run["error"].split(": ", 2)[2].split(". This points")[0]
        assert "export configuration" in run["error"] and named in cited_error.lower()
        assert run["counts"]["failed"] == 3
        assert len(_our_jobs(environment)) < 15

        # The operators' view of the stopped run adds up, jobs left running included.
        shown = CliRunner().invoke(app, ["runs", "--json", "--table", environment.stack.outputs["LedgerTableName"]])
        counts = json.loads(shown.stdout)["runs"][0]["counts"]
        assert counts["total"] == sum(counts[name] for name in ("exported", "failed", "deferred", "skipped", "running"))


def test_a_bad_organization_does_not_sink_the_others(local_environment):
    missing = "m-00000000000000000000000000000bad"
    definition = scenario(organization(users=5), organization(OTHER_ORG, users=5, state="Deleted"))
    with local_environment(definition, OrganizationIds=f"{ORG},{OTHER_ORG},{missing}") as environment:
        result = environment.run_nightly(organization_ids=[ORG, OTHER_ORG, missing])

        good, inactive = result.organizations[0], result.organizations[1]
        assert good.run["status"] == "SUCCEEDED" and good.run["counts"]["exported"] == 5
        assert inactive.run["status"] == "FAILED" and "not Active" in inactive.run["error"]
        lost = result.organizations[2].run
        assert lost["status"] == "FAILED" and "was not found" in lost["error"]


def test_a_crash_after_workmail_accepted_a_start_leads_to_exactly_one_job(local_environment):
    definition = scenario(organization(users=12))
    definition["environment_faults"] = {"crashes": [{"point": "after_export_start", "times": 2}]}
    with local_environment(definition) as environment:
        result = environment.run_nightly()

        jobs_per_mailbox = {}
        for job in _our_jobs(environment):
            jobs_per_mailbox[job.entity_id] = jobs_per_mailbox.get(job.entity_id, 0) + 1
        assert set(jobs_per_mailbox.values()) == {1} and len(jobs_per_mailbox) == 12
        assert {mailbox["outcome"] for mailbox in _by_email(result).values()} == {"EXPORTED"}
        assert all(mailbox["jobId"] for mailbox in _by_email(result).values())


def test_a_crash_while_planning_is_retried_and_the_run_completes(local_environment):
    definition = scenario(organization(users=8))
    definition["environment_faults"] = {"crashes": [{"point": "during_planning"}]}
    with local_environment(definition) as environment:
        result = environment.run_nightly()

        assert result.organizations[0].run["status"] == "SUCCEEDED"
        assert result.organizations[0].run["counts"]["exported"] == 8


def test_the_schedule_delivering_the_same_night_twice_gives_one_export_per_mailbox(local_environment):
    with local_environment(scenario(organization(users=8))) as environment:
        night = environment.clock.now()
        environment.run_nightly(night)
        environment.clock.advance(3600)

        again = environment.run_nightly(night)

        assert len(_our_jobs(environment)) == 8
        assert again.organizations[0].run["counts"]["exported"] == 8


def test_entity_ids_of_256_characters_still_export(local_environment):
    long_id = "u" * 250 + ".x-9_Z"
    extra = [{"id": long_id, "name": "long", "email": "long@example.com", "mailbox_mb": 10}]
    with local_environment(scenario(organization(users=2, more_users=extra))) as environment:
        result = environment.run_nightly()

        mailbox = _by_email(result)["long@example.com"]
        assert mailbox["entityId"] == long_id and mailbox["outcome"] == "EXPORTED"


def test_no_export_starts_after_the_backup_window_and_the_rest_goes_first_next_night(local_environment):
    with local_environment(scenario(organization(users=90)), BackupWindowEnd="02:00") as environment:
        first_start = environment.clock.now()
        first = environment.run_nightly()

        window_end = first_start.replace(hour=2, minute=0)
        jobs = _our_jobs(environment)
        run = first.organizations[0].run
        assert all(job.start < window_end for job in jobs)
        assert run["status"] == "SUCCEEDED" and run["counts"]["deferred"] > 0
        assert run["counts"]["exported"] == len(jobs)
        carried_over = {m["entityId"] for m in first.organizations[0].mailboxes() if m["outcome"] != "EXPORTED"}

        environment.run_nightly(_next_night(environment, first_start, 24))
        second_night = [job for job in _our_jobs(environment) if job.start >= first_start + timedelta(hours=24)]
        first_wave = {job.entity_id for job in second_night if job.start == min(j.start for j in second_night)}
        assert first_wave <= carried_over and len(first_wave) == 10


def test_two_deliveries_of_the_same_night_a_second_apart_give_one_run(local_environment):
    with local_environment(scenario(organization(users=8))) as environment:
        night = environment.clock.now()
        nightly = environment.stack.outputs["NightlyStateMachineArn"]
        delivery = json.dumps({"organizationIds": [ORG], "scheduledTime": night.strftime("%Y-%m-%dT%H:%M:%SZ")})

        for attempt in (1, 2):
            environment.stepfunctions.start_execution(
                stateMachineArn=nightly, name=f"delivery-{attempt}", input=delivery
            )
        result = environment.run_nightly(night)

        assert len(_our_jobs(environment)) == 8
        assert result.organizations[0].run["counts"]["exported"] == 8
        organization_runs = [item for item in environment.executions() if item["name"].startswith(ORG)]
        assert len(organization_runs) == 1


def test_a_mailbox_someone_else_exports_during_the_run_is_skipped_not_kept_for_a_day(local_environment):
    # user007 has one of the smallest mailboxes, so it is still queued when the other job starts.
    jobs = [{"entity": "user007", "started": "+5m", "duration": "10m", "by": "admin-script"}]
    with local_environment(scenario(organization(users=12, jobs=jobs)), MaxConcurrentExports="5") as environment:
        result = environment.run_nightly()

        mailbox = _by_email(result)["user007@example.com"]
        assert mailbox["outcome"] == "SKIPPED" and "someone else" in mailbox["reason"]
        assert result.simulated_end - result.simulated_start < timedelta(hours=6)
        assert result.organizations[0].run["counts"]["exported"] == 11


def test_a_night_stopped_at_its_time_limit_leaves_nothing_running(local_environment):
    # Exports of a day each: the night cannot end within a second of real time.
    slow = {**scenario(organization(users=3)), "export_speed": {"fixed_seconds": 86_400, "mb_per_minute": 60}}
    with local_environment(slow) as environment, pytest.raises(LocalRunError, match="did not finish"):
        environment.run_nightly(timeout_seconds=1)

    # Left running, an execution would wait on a clock nobody moves, and hold up the next night.
    deadline = time.monotonic() + 10
    while _execution_threads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _execution_threads() == []


def _execution_threads() -> list[str]:
    """The threads in which moto runs state machine executions."""
    return [thread.name for thread in threading.enumerate() if "(eval)" in thread.name]
