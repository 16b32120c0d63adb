"""A nightly run, end to end: schedule input, real state machine, handlers, emulator, ledger."""

import json
from datetime import timedelta

import boto3

from mailbox_backup.ledger import active_partition, iso, queue_partition
from tests.e2e.conftest import ORG, organization, published_summaries, scenario


def _outcomes(result) -> dict[str, str]:
    return {mailbox["email"]: mailbox["outcome"] for mailbox in result.organizations[0].mailboxes()}


def test_every_mailbox_is_exported_and_never_more_than_ten_run_at_once(local_environment):
    with local_environment(scenario(organization(users=25))) as environment:
        result = environment.run_nightly()

        outcomes = _outcomes(result)
        run = result.organizations[0]
        assert set(outcomes.values()) == {"EXPORTED"} and len(outcomes) == 25
        assert run.run["status"] == "SUCCEEDED"
        assert run.run["counts"]["exported"] == 25
        assert run.peak_running == 10
        assert run.limit_exceeded == 0


def test_every_export_is_verified_in_s3_with_the_stack_key(local_environment):
    with local_environment(scenario(organization(users=3))) as environment:
        result = environment.run_nightly()

        s3 = boto3.client("s3")
        bucket = environment.stack.outputs["ExportBucketName"]
        key_arn = environment.stack.outputs["KmsKeyArn"]
        for task in result.organizations[0].tasks:
            head = s3.head_object(Bucket=bucket, Key=task["objectKey"])
            assert task["verified"] is True
            assert head["ServerSideEncryption"] == "aws:kms"
            assert head["SSEKMSKeyId"].split("/")[-1] == key_arn.split("/")[-1]


def test_jobs_started_by_someone_else_count_against_the_ten_slots(local_environment):
    foreign_jobs = [
        {"entity": f"user{index:03d}", "started": "-10m", "duration": "3h", "by": "admin-script"} for index in range(3)
    ]
    with local_environment(scenario(organization(users=25, jobs=foreign_jobs))) as environment:
        result = environment.run_nightly()

        run = result.organizations[0]
        assert run.peak_running == 10
        assert run.limit_exceeded == 0
        assert run.run["counts"]["exported"] == 22


def test_a_mailbox_exported_by_someone_else_two_hours_ago_is_skipped_with_the_reason(local_environment):
    jobs = [{"entity": "user004", "started": "-2h", "duration": "20m", "by": "admin-script"}]
    with local_environment(scenario(organization(users=6, jobs=jobs))) as environment:
        result = environment.run_nightly()

        mailbox = next(item for item in result.organizations[0].mailboxes() if item["email"] == "user004@example.com")
        assert mailbox["outcome"] == "SKIPPED"
        assert "someone else" in mailbox["reason"] and "24 hours" in mailbox["reason"]
        assert [job.entity_id for job in environment.emulator.jobs(ORG) if job.started_by == "api"].count(
            mailbox["entityId"]
        ) == 0
        # Someone else's export is no verified one: the run's forecast still waits for this mailbox.
        forecast = result.organizations[0].run["forecast"]
        assert forecast["mailboxesWithoutExport"] == 1
        # Its start, two hours before the night began, lets WorkMail take it again 24 hours later.
        assert forecast["allExportedBy"] >= "2026-12-03T23:00:00Z"


def test_a_second_run_right_after_the_first_exports_nothing_and_says_why(local_environment):
    with local_environment(scenario(organization(users=12))) as environment:
        environment.run_nightly()
        jobs_after_first = len(environment.emulator.jobs(ORG))

        second = environment.run_on_demand(ORG)

        assert len(environment.emulator.jobs(ORG)) == jobs_after_first
        assert environment.emulator.limit_exceeded_count(ORG) == 0
        assert set(_outcomes(second).values()) == {"SKIPPED"}
        assert all("24 hours" in mailbox["reason"] for mailbox in second.organizations[0].mailboxes())
        assert second.organizations[0].run["status"] == "SUCCEEDED"


def test_a_long_run_continues_in_fresh_executions_and_still_exports_everything_once(local_environment):
    with local_environment(scenario(organization(users=25))) as environment:
        # A handful of passes per execution instead of a thousand, to reach the hand-over quickly.
        controller = environment.stack.function("ControllerFunction").name
        lambdas = boto3.client("lambda")
        variables = lambdas.get_function_configuration(FunctionName=controller)["Environment"]["Variables"]
        lambdas.update_function_configuration(
            FunctionName=controller,
            Environment={"Variables": {**{k: str(v) for k, v in variables.items()}, "TICKS_PER_EXECUTION": "3"}},
        )

        named_while_open = set()

        def note_the_runs_execution(_environment) -> None:
            run = environment.ledger.get_run(ORG, "nightly-20261203") or {}
            if run.get("status") == "RUNNING":
                named_while_open.add(run["executionArn"].rsplit(":", 1)[-1])

        result = environment.run_nightly(on_progress=note_the_runs_execution)

        parts = [item for item in result.executions if item["name"].startswith(ORG)]
        assert len(parts) >= 3
        # While open, the run names the execution carrying it, so views never show a finished part.
        assert any(name.endswith("-part2") for name in named_while_open)
        assert {item["status"] for item in parts} == {"SUCCEEDED"}
        assert _outcomes(result) and set(_outcomes(result).values()) == {"EXPORTED"}
        jobs = [job for job in environment.emulator.jobs(ORG) if job.started_by == "api"]
        assert len(jobs) == len({job.entity_id for job in jobs}) == 25


def test_a_run_longer_than_a_day_is_left_to_finish_and_the_next_night_plans_no_second_one(local_environment):
    # 35 exports of ten hours through ten slots: four waves, the last starting 30 hours in, so
    # the next night comes while five mailboxes still wait for a slot.
    slow = {**scenario(organization(users=35)), "export_speed": {"fixed_seconds": 36_000, "mb_per_minute": 60}}
    with local_environment(slow) as environment:
        nightly = environment.stack.outputs["NightlyStateMachineArn"]
        next_night = environment.clock.now() + timedelta(hours=24)
        delivered = []

        def deliver_the_next_night(_environment) -> None:
            if delivered or environment.clock.now() < next_night:
                return
            schedule = {"organizationIds": [ORG], "scheduledTime": iso(next_night)}
            delivered.append(
                environment.stepfunctions.start_execution(stateMachineArn=nightly, input=json.dumps(schedule))
            )

        first = environment.run_nightly(on_progress=deliver_the_next_night)

        assert delivered, "the first run ended before the next night came"
        second = environment.ledger.get_run(ORG, "nightly-20261204")
        assert second["status"] == "SKIPPED" and "run nightly-20261203 is still working" in second["reason"]
        assert first.organizations[0].run["status"] == "SUCCEEDED"
        night_summary, run_summary = published_summaries(environment)
        assert night_summary[0] == f"workmail-backup nightly-20261204 SKIPPED: {ORG}"
        assert "Why: run nightly-20261203 is still working through the organization's queue" in night_summary[1]
        assert f"workmail-backup run show nightly-20261203 --org {ORG}" in night_summary[1]
        assert run_summary[0] == f"workmail-backup nightly-20261203 OK: {ORG}"
        # StartRun retried after it recorded the skipped night still leads to the night's summary.
        retried = boto3.client("lambda").invoke(
            FunctionName=environment.stack.function("StartRunFunction").name,
            Payload=json.dumps({"organizationId": ORG, "runId": "nightly-20261204"}).encode(),
        )
        assert json.loads(retried["Payload"].read())["leftToRunId"] == "nightly-20261203"
        assert set(_outcomes(first).values()) == {"EXPORTED"}
        jobs = [job for job in environment.emulator.jobs(ORG) if job.started_by == "api"]
        assert len(jobs) == len({job.entity_id for job in jobs}) == 35


def test_a_run_left_open_by_a_stopped_execution_does_not_hold_up_the_next_night(local_environment):
    with local_environment(scenario(organization(users=3))) as environment:
        # An open run, queue and all, whose controller has been silent for two days.
        two_days_ago = iso(environment.clock.now() - timedelta(days=2))
        abandoned = {"organizationId": ORG, "runId": "nightly-20261201", "status": "RUNNING", "counts": {}}
        environment.ledger.create_run({**abandoned, "startedAt": two_days_ago, "lastPassAt": two_days_ago})
        queue = queue_partition(ORG, "nightly-20261201")
        environment.ledger.put_items(
            [
                {
                    "PK": f"RUN#{ORG}#nightly-20261201",
                    "SK": "MAILBOX#somebody",
                    "type": "TASK",
                    "status": "QUEUED",
                    "GSI1PK": queue,
                    "GSI1SK": "READY#1#0000#0000000001#somebody",
                }
            ]
        )

        result = environment.run_nightly()

        assert result.organizations[0].run["status"] == "SUCCEEDED"
        assert set(_outcomes(result).values()) == {"EXPORTED"}


def test_a_whole_organization_run_an_operator_just_started_is_left_the_night(local_environment):
    with local_environment(scenario(organization(users=3))) as environment:
        # GIVEN an on-demand run recorded a minute ago, whose execution is about to plan it
        a_minute_ago = iso(environment.clock.now() - timedelta(minutes=1))
        requested = {"organizationId": ORG, "runId": "manual-20261203T005900Z", "status": "REQUESTED"}
        environment.ledger.create_run({**requested, "startedAt": a_minute_ago})

        result = environment.run_nightly()

        night = result.organizations[0].run
        assert night["status"] == "SKIPPED"
        assert night["reason"].startswith(f"run manual-20261203T005900Z was started at {a_minute_ago}")
        assert not [job for job in environment.emulator.jobs(ORG) if job.started_by == "api"]


def test_a_run_of_a_few_named_mailboxes_still_waiting_does_not_hold_up_the_night(local_environment):
    with local_environment(scenario(organization(users=3))) as environment:
        # GIVEN an operator's run of one mailbox, alive, that waits for its 24-hour window
        just_now = iso(environment.clock.now() - timedelta(minutes=5))
        named = {"organizationId": ORG, "runId": "manual-20261203T005500Z", "status": "RUNNING", "counts": {}}
        environment.ledger.create_run(
            {**named, "startedAt": just_now, "lastPassAt": just_now, "requestedMailboxes": ["somebody"]}
        )
        environment.ledger.put_items(
            [
                {
                    "PK": f"RUN#{ORG}#manual-20261203T005500Z",
                    "SK": "MAILBOX#somebody",
                    "type": "TASK",
                    "status": "DEFERRED",
                    "GSI1PK": queue_partition(ORG, "manual-20261203T005500Z"),
                    "GSI1SK": "WAIT#2026-12-03T05:00:00Z#somebody",
                    "notBefore": "2026-12-03T05:00:00Z",
                }
            ]
        )

        result = environment.run_nightly()

        assert result.organizations[0].run["status"] == "SUCCEEDED"
        assert set(_outcomes(result).values()) == {"EXPORTED"}


def test_organizations_in_another_account_are_backed_up_by_a_stack_in_that_account(local_environment):
    with local_environment({**scenario(organization(users=3)), "account_id": "210987654321"}) as environment:
        result = environment.run_nightly()

        assert set(_outcomes(result).values()) == {"EXPORTED"}
        assert ":210987654321:" in environment.stack.outputs["OrganizationBackupStateMachineArn"]


def test_exports_of_an_operators_run_beside_the_night_count_against_the_organizations_setting(local_environment):
    with local_environment(scenario(organization(users=8)), MaxConcurrentExports="5") as environment:
        # GIVEN an operator's run of named mailboxes, open, with three exports going
        just_now = iso(environment.clock.now() - timedelta(minutes=5))
        named = {"organizationId": ORG, "runId": "manual-20261203T005500Z", "status": "RUNNING", "counts": {}}
        environment.ledger.create_run(
            {**named, "startedAt": just_now, "lastPassAt": just_now, "requestedMailboxes": ["a", "b", "c"]}
        )
        environment.ledger.put_items(
            [
                {
                    "PK": f"RUN#{ORG}#manual-20261203T005500Z",
                    "SK": f"MAILBOX#{entity}",
                    "type": "TASK",
                    "status": "RUNNING",
                    "GSI1PK": active_partition(ORG, "manual-20261203T005500Z"),
                    "GSI1SK": entity,
                }
                for entity in ("a", "b", "c")
            ]
        )

        result = environment.run_nightly()

        # THEN the night keeps to the two slots left of five, and still exports everything
        assert result.organizations[0].peak_running == 2
        assert set(_outcomes(result).values()) == {"EXPORTED"}
