"""Mailbox export jobs: limits, idempotency, progress over simulated time, and the output in S3."""

import hashlib
import io
import json
import zipfile
from email import message_from_bytes

import pytest
from botocore.exceptions import ClientError

from .conftest import ORG, organization, scenario, trust_policy, users


def start(running, aws, entity: str, token: str | None = None, **overrides) -> str:
    response = running.client.start_mailbox_export_job(
        ClientToken=token or f"token-{entity}", EntityId=entity, **aws.export_arguments(**overrides)
    )
    return response["JobId"]


def describe(running, job_id: str) -> dict:
    return running.client.describe_mailbox_export_job(OrganizationId=ORG, JobId=job_id)


def refusal(call) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value


@pytest.fixture
def crowded(emulator_for, aws):
    """20 users of 60 MB (exports of 3 minutes) and one job someone else started 10 minutes ago."""
    definition = scenario(
        organization(
            users=users(20),
            resources=[],
            jobs=[{"entity": "user019", "started": "-10m", "duration": "1h", "by": "admin-script"}],
        )
    )
    return emulator_for(definition)


# Progress and output


def test_a_job_runs_then_completes_with_progress_proportional_to_time(running, aws):
    job_id = start(running, aws, "alice")  # 120 s + 480 MB at 60 MB/min = 10 minutes

    at_start = describe(running, job_id)
    running.clock.advance(minutes=5)
    halfway = describe(running, job_id)
    running.clock.advance(minutes=5)
    done = describe(running, job_id)

    assert (at_start["State"], at_start["EstimatedProgress"]) == ("RUNNING", 0)
    assert (halfway["State"], halfway["EstimatedProgress"]) == ("RUNNING", 50)
    assert "EndTime" not in halfway
    assert (done["State"], done["EstimatedProgress"]) == ("COMPLETED", 100)
    assert (done["EndTime"] - done["StartTime"]).total_seconds() == 600


def test_describe_returns_the_documented_fields(running, aws):
    job_id = start(running, aws, "bob", Description="nightly backup")
    running.clock.advance(minutes=5)

    described = describe(running, job_id)

    bob_id = running.client.describe_user(OrganizationId=ORG, UserId="bob")["UserId"]
    assert described["EntityId"] == bob_id
    assert described["Description"] == "nightly backup"
    assert described["RoleArn"] == aws.role_arn
    assert described["KmsKeyArn"] == aws.key_arn
    assert described["S3BucketName"] == aws.bucket
    assert described["S3Prefix"] == "nightly/2026-12-03"
    assert described["S3Path"] == f"{aws.bucket}/nightly/2026-12-03/{job_id}.zip"
    assert "ErrorInfo" not in described


def test_a_completed_job_leaves_a_kms_encrypted_zip_of_mime_messages(running, aws):
    job_id = start(running, aws, "alice")
    running.clock.advance(minutes=11)
    described = describe(running, job_id)

    key = described["S3Path"].split("/", 1)[1]
    head = aws.s3.head_object(Bucket=aws.bucket, Key=key)
    archive = zipfile.ZipFile(io.BytesIO(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()))

    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == aws.key_arn
    assert archive.testzip() is None
    names = archive.namelist()
    assert len(names) >= 3 and all(name.endswith(".eml") for name in names)
    message = message_from_bytes(archive.read(names[0]))
    assert message["Subject"] and message["Date"] and "alice@example.com" in (message["To"] + message["From"])


def test_the_export_log_describes_the_archive(running, aws):
    job_id = start(running, aws, "alice")
    running.clock.advance(minutes=11)
    describe(running, job_id)

    archive_bytes = aws.s3.get_object(Bucket=aws.bucket, Key=f"nightly/2026-12-03/{job_id}.zip")["Body"].read()
    log_object = aws.s3.get_object(Bucket=aws.bucket, Key=f"nightly/2026-12-03/{job_id}.log")
    log = json.loads(log_object["Body"].read())
    archive = zipfile.ZipFile(io.BytesIO(archive_bytes))

    assert log_object["SSEKMSKeyId"] == aws.key_arn
    assert set(log) == {
        "totalMessages",
        "totalBytes",
        "totalFolders",
        "totalNonExportableItems",
        "sha384Hash",
        "startTime",
        "endTime",
    }
    assert all(isinstance(value, str) for value in log.values())
    assert log["sha384Hash"] == hashlib.sha384(archive_bytes).hexdigest()
    assert int(log["totalMessages"]) == len(archive.namelist())
    assert int(log["totalBytes"]) == sum(info.file_size for info in archive.infolist())
    assert int(log["totalFolders"]) == len({name.split("/")[0] for name in archive.namelist()})
    assert int(log["endTime"]) - int(log["startTime"]) == 600_000


def test_nothing_is_written_while_the_job_runs(running, aws):
    job_id = start(running, aws, "alice")
    running.clock.advance(minutes=9)
    describe(running, job_id)

    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount") == 0


def test_a_job_with_a_missing_bucket_fails_with_error_info(running, aws):
    job_id = start(running, aws, "bob", S3BucketName="no-such-bucket")
    running.clock.advance(minutes=4)

    described = describe(running, job_id)

    assert described["State"] == "FAILED"
    assert "no-such-bucket" in described["ErrorInfo"] and "does not exist" in described["ErrorInfo"]


def test_a_job_whose_role_does_not_trust_the_export_service_fails(running, aws):
    untrusted = aws.iam.create_role(
        RoleName="LambdaOnly", AssumeRolePolicyDocument=trust_policy("lambda.amazonaws.com")
    )
    job_id = start(running, aws, "bob", RoleArn=untrusted["Role"]["Arn"])
    running.clock.advance(minutes=4)

    described = describe(running, job_id)

    assert described["State"] == "FAILED"
    assert "export.workmail.amazonaws.com" in described["ErrorInfo"]
    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount") == 0


def test_a_role_limited_to_another_account_fails_and_one_limited_to_this_one_succeeds(running, aws):
    elsewhere = aws.iam.create_role(
        RoleName="OtherAccount",
        AssumeRolePolicyDocument=trust_policy(StringEquals={"aws:SourceAccount": "999999999999"}),
    )["Role"]["Arn"]
    here = aws.iam.create_role(
        RoleName="ThisOrganization",
        AssumeRolePolicyDocument=trust_policy(ArnLike={"aws:SourceArn": f"arn:aws:workmail:*:*:organization/{ORG}"}),
    )["Role"]["Arn"]
    failing, working = (
        start(running, aws, "bob", RoleArn=elsewhere),
        start(running, aws, "alice", RoleArn=here),
    )
    running.clock.advance(minutes=11)

    assert describe(running, failing)["State"] == "FAILED"
    assert describe(running, working)["State"] == "COMPLETED"


def test_a_job_whose_role_does_not_exist_fails(running, aws):
    job_id = start(running, aws, "bob", RoleArn="arn:aws:iam::123456789012:role/Missing")
    running.clock.advance(minutes=4)

    assert describe(running, job_id)["State"] == "FAILED"


def test_a_job_whose_key_is_disabled_fails(running, aws):
    aws.kms.disable_key(KeyId=aws.key_arn.split("/")[-1])
    job_id = start(running, aws, "bob")
    running.clock.advance(minutes=4)

    described = describe(running, job_id)

    assert described["State"] == "FAILED"
    assert "not enabled" in described["ErrorInfo"]


# Who can be exported


@pytest.mark.parametrize(
    ("entity", "code"),
    [
        ("nobody@example.com", "EntityNotFoundException"),
        ("dave", "EntityNotFoundException"),
        ("carol", "EntityStateException"),
        ("mailer", "InvalidParameterException"),
        ("partner@example.com", "InvalidParameterException"),
    ],
)
def test_only_enabled_mailboxes_can_be_exported(running, aws, entity, code):
    error = refusal(lambda: start(running, aws, entity))

    assert error.response["Error"]["Code"] == code


def test_a_resource_can_be_exported_by_id_email_or_name(running, aws):
    room = running.client.list_resources(OrganizationId=ORG)["Resources"][0]

    job_id = start(running, aws, room["Id"])

    assert describe(running, job_id)["EntityId"] == room["Id"]


def test_an_organization_that_is_not_active_refuses_exports(emulator_for, aws):
    started = emulator_for(scenario(organization(state="Inactive")))

    error = refusal(lambda: start(started, aws, "alice"))

    assert error.response["Error"]["Code"] == "OrganizationStateException"


# The 10-running limit


def test_the_eleventh_running_job_is_refused_counting_a_job_someone_else_started(crowded, aws):
    for index in range(9):
        start(crowded, aws, f"user{index:03d}")

    error = refusal(lambda: start(crowded, aws, "user010"))

    assert error.response["Error"]["Code"] == "LimitExceededException"
    assert crowded.emulator.limit_exceeded_count(ORG) == 1
    assert sum(job.state == "RUNNING" for job in crowded.emulator.jobs(ORG)) == 10


def test_a_slot_frees_when_a_job_completes(crowded, aws):
    for index in range(9):
        start(crowded, aws, f"user{index:03d}")
    crowded.clock.advance(seconds=179)
    refused = refusal(lambda: start(crowded, aws, "user010", token="early"))

    crowded.clock.advance(seconds=1)
    job_id = start(crowded, aws, "user010", token="on-time")

    assert refused.response["Error"]["Code"] == "LimitExceededException"
    assert describe(crowded, job_id)["State"] == "RUNNING"


def test_a_cancelled_job_frees_its_slot(crowded, aws):
    job_ids = [start(crowded, aws, f"user{index:03d}") for index in range(9)]

    crowded.client.cancel_mailbox_export_job(OrganizationId=ORG, JobId=job_ids[0], ClientToken="cancel-1")
    replacement = start(crowded, aws, "user010")

    assert describe(crowded, job_ids[0])["State"] == "CANCELLED"
    assert describe(crowded, replacement)["State"] == "RUNNING"


def test_peak_running_counts_jobs_started_by_anyone(crowded, aws):
    for index in range(9):
        start(crowded, aws, f"user{index:03d}")
        crowded.clock.advance(seconds=10)
    crowded.clock.advance(hours=2)
    for index in range(10, 13):
        start(crowded, aws, f"user{index:03d}")

    assert crowded.emulator.peak_running(ORG) == 10


def test_peak_running_treats_a_job_ending_as_another_starts_as_a_handover(emulator_for, aws, clock):
    started = emulator_for(scenario(organization(users=users(3), resources=[])))
    start(started, aws, "user000")
    clock.advance(seconds=180)
    start(started, aws, "user001")

    assert started.emulator.peak_running(ORG) == 1


# The 24-hour rule


def test_a_mailbox_can_be_exported_again_only_24_hours_after_the_previous_start(running, aws):
    start(running, aws, "bob", token="first")
    running.clock.advance(hours=23, minutes=59)
    too_soon = refusal(lambda: start(running, aws, "bob", token="second"))

    running.clock.advance(minutes=1)
    again = start(running, aws, "bob", token="third")

    assert too_soon.response["Error"]["Code"] == "LimitExceededException"
    assert "24 hours" in too_soon.response["Error"]["Message"]
    assert describe(running, again)["State"] == "RUNNING"


def test_the_24_hour_rule_counts_a_job_someone_else_started_and_a_failed_one(emulator_for, aws):
    definition = scenario(
        organization(
            jobs=[
                {
                    "entity": "alice",
                    "started": "-2h",
                    "duration": "12m",
                    "state": "COMPLETED",
                    "by": "admin-script",
                },
                {
                    "entity": "bob@example.com",
                    "started": "-30h",
                    "duration": "5m",
                    "state": "FAILED",
                    "by": "admin-script",
                },
            ]
        )
    )
    started = emulator_for(definition)

    alice = refusal(lambda: start(started, aws, "alice"))
    started.clock.advance(hours=22)
    allowed = start(started, aws, "alice", token="alice-later")

    assert alice.response["Error"]["Code"] == "LimitExceededException"
    assert allowed
    assert start(started, aws, "bob")


def test_a_job_someone_else_starts_later_in_the_night_appears_then(emulator_for, aws):
    started = emulator_for(
        scenario(
            organization(
                jobs=[
                    {"entity": "bob", "started": "+1h", "duration": "30m", "by": "admin-script"},
                ]
            )
        )
    )

    before = started.client.list_mailbox_export_jobs(OrganizationId=ORG)["Jobs"]
    start(started, aws, "alice", token="before-them")
    started.clock.advance(hours=1)
    after = started.client.list_mailbox_export_jobs(OrganizationId=ORG)["Jobs"]

    assert before == []
    assert [job["State"] for job in after] == ["RUNNING", "COMPLETED"]


def test_a_later_job_someone_else_starts_on_a_mailbox_exported_an_hour_before_is_refused(emulator_for, aws):
    started = emulator_for(
        scenario(organization(jobs=[{"entity": "bob", "started": "+1h", "duration": "30m", "by": "admin-script"}]))
    )

    start(started, aws, "bob", token="before-them")
    started.clock.advance(hours=1)
    after = started.client.list_mailbox_export_jobs(OrganizationId=ORG)["Jobs"]

    assert [job["State"] for job in after] == ["COMPLETED"]


# Idempotency and cancellation


def test_a_repeated_client_token_returns_the_same_job_without_a_second_one(crowded, aws):
    for index in range(9):
        start(crowded, aws, f"user{index:03d}")

    again = [start(crowded, aws, "user000") for _ in range(3)]
    crowded.clock.advance(hours=25)
    after_a_day = start(crowded, aws, "user000")

    assert len(set(again)) == 1 and after_a_day == again[0]
    assert crowded.emulator.limit_exceeded_count(ORG) == 0
    assert len([job for job in crowded.emulator.jobs(ORG) if job.started_by == "api"]) == 9


def test_the_emulator_records_who_started_each_job_and_how(crowded, aws):
    start(crowded, aws, "user000", token="run-1/user000")

    jobs = {job.started_by: job for job in crowded.emulator.jobs(ORG)}

    assert jobs["api"].client_token == "run-1/user000"
    assert jobs["api"].kms_key_arn == aws.key_arn and jobs["api"].role_arn == aws.role_arn
    assert jobs["api"].s3_bucket == aws.bucket and jobs["api"].s3_prefix == "nightly/2026-12-03"
    assert jobs["admin-script"].state == "RUNNING" and jobs["admin-script"].client_token is None


def test_a_finished_job_cannot_be_cancelled(running, aws):
    job_id = start(running, aws, "bob")
    running.clock.advance(minutes=4)

    error = refusal(
        lambda: running.client.cancel_mailbox_export_job(OrganizationId=ORG, JobId=job_id, ClientToken="late")
    )

    assert error.response["Error"]["Code"] == "EntityStateException"
    assert describe(running, job_id)["State"] == "COMPLETED"


def test_an_unknown_job_is_not_found(running):
    error = refusal(lambda: describe(running, "0f0f0f0f-0000-4000-8000-000000000000"))

    assert error.response["Error"]["Code"] == "EntityNotFoundException"


# Listing


def test_list_shows_only_jobs_started_in_the_last_7_days(emulator_for, aws):
    started = emulator_for(
        scenario(
            organization(
                jobs=[
                    {"entity": "alice", "started": "-8d", "duration": "10m", "by": "admin-script"},
                    {"entity": "bob", "started": "-6d", "duration": "10m", "by": "admin-script"},
                ]
            )
        )
    )

    listed = started.client.list_mailbox_export_jobs(OrganizationId=ORG)["Jobs"]

    bob = started.client.describe_user(OrganizationId=ORG, UserId="bob")["UserId"]
    assert [job["EntityId"] for job in listed] == [bob]
    assert listed[0]["State"] == "COMPLETED"


def test_list_pages_hold_100_jobs_newest_first_and_survive_new_jobs(emulator_for, aws, clock):
    population = users(250)
    history = [
        {
            "entity": user["name"],
            "started": f"-{index + 1}m",
            "duration": "1s",
            "state": "COMPLETED",
            "by": "script",
        }
        for index, user in enumerate(population[:230])
    ]
    started = emulator_for(scenario(organization(users=population, resources=[], jobs=history)))

    first = started.client.list_mailbox_export_jobs(OrganizationId=ORG)
    start(started, aws, "user240")
    second = started.client.list_mailbox_export_jobs(OrganizationId=ORG, NextToken=first["NextToken"])
    third = started.client.list_mailbox_export_jobs(OrganizationId=ORG, NextToken=second["NextToken"])

    pages = [first["Jobs"], second["Jobs"], third["Jobs"]]
    assert [len(page) for page in pages] == [100, 100, 30]
    assert "NextToken" not in third
    start_times = [job["StartTime"] for page in pages for job in page]
    assert start_times == sorted(start_times, reverse=True)
    assert len({job["JobId"] for page in pages for job in page}) == 230


def test_list_with_a_forged_token_is_refused(running):
    error = refusal(lambda: running.client.list_mailbox_export_jobs(OrganizationId=ORG, NextToken="eyJvcCI6IngifQ=="))

    assert error.response["Error"]["Code"] == "InvalidParameterException"


def test_listing_a_finished_job_delivers_its_output(running, aws):
    job_id = start(running, aws, "bob")
    running.clock.advance(minutes=4)

    listed = running.client.list_mailbox_export_jobs(OrganizationId=ORG)["Jobs"]

    assert [(job["JobId"], job["State"]) for job in listed] == [(job_id, "COMPLETED")]
    assert aws.s3.head_object(Bucket=aws.bucket, Key=f"nightly/2026-12-03/{job_id}.zip")["SSEKMSKeyId"] == aws.key_arn


def test_a_job_that_will_fail_shows_no_error_while_it_runs(emulator_for, aws, clock):
    started = emulator_for(
        scenario(
            organization(
                jobs=[
                    {
                        "entity": "bob",
                        "started": "-5m",
                        "duration": "1h",
                        "state": "FAILED",
                        "error_info": "Mailbox is locked.",
                        "by": "admin-script",
                    }
                ]
            )
        )
    )
    job_id = started.client.list_mailbox_export_jobs(OrganizationId=ORG)["Jobs"][0]["JobId"]

    running_view = (started.emulator.jobs(ORG)[0], describe(started, job_id))
    clock.advance(hours=1)
    failed_view = (started.emulator.jobs(ORG)[0], describe(started, job_id))

    assert (running_view[0].state, running_view[0].error_info) == ("RUNNING", None)
    assert "ErrorInfo" not in running_view[1]
    assert (failed_view[0].state, failed_view[0].error_info) == ("FAILED", "Mailbox is locked.")
    assert failed_view[1]["ErrorInfo"] == "Mailbox is locked."
