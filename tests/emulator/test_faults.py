"""Injected faults: error responses, forced job outcomes, and mailboxes changing during the night."""

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from workmail_backup.local.emulator import ScenarioError, load_scenario

from .conftest import ORG, error_code, organization, scenario


def with_faults(**faults) -> dict:
    return scenario(organization(faults=faults))


def start(running, aws, entity: str, token: str | None = None, **overrides) -> str:
    response = running.client.start_mailbox_export_job(
        ClientToken=token or f"token-{entity}", EntityId=entity, **aws.export_arguments(**overrides)
    )
    return response["JobId"]


def test_an_error_fault_answers_the_next_n_matching_requests_then_stops(emulator_for, aws):
    started = emulator_for(with_faults(errors=[{"operation": "ListUsers", "error": "ThrottlingException", "times": 2}]))

    codes = []
    for _ in range(3):
        try:
            started.client.list_users(OrganizationId=ORG)
            codes.append("ok")
        except ClientError as error:
            codes.append(error.response["Error"]["Code"])

    assert codes == ["ThrottlingException", "ThrottlingException", "ok"]
    assert started.client.list_resources(OrganizationId=ORG)["Resources"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("ThrottlingException", 400),
        ("TooManyRequestsException", 429),
        ("InternalServerError", 500),
        ("ServiceUnavailable", 503),
        ("OrganizationStateException", 400),
    ],
)
def test_injected_errors_carry_the_status_the_service_would_use(emulator_for, aws, error, status):
    started = emulator_for(with_faults(errors=[{"operation": "DescribeOrganization", "error": error}]))

    with pytest.raises(ClientError) as raised:
        started.client.describe_organization(OrganizationId=ORG)

    assert error_code(raised) == error
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_a_retrying_client_rides_out_a_short_burst_of_throttling(emulator_for, aws):
    started = emulator_for(
        with_faults(errors=[{"operation": "GetMailboxDetails", "error": "ThrottlingException", "times": 2}])
    )
    client = _client_with_retries(started.emulator.url)

    details = client.get_mailbox_details(OrganizationId=ORG, UserId="alice")

    assert details["MailboxSize"] == 480.0


def _client_with_retries(url: str):
    import boto3

    return boto3.client(
        "workmail",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=5, read_timeout=5),
    )


def test_an_error_fault_for_one_mailbox_leaves_the_others_alone(emulator_for, aws):
    started = emulator_for(
        with_faults(
            errors=[
                {
                    "operation": "StartMailboxExportJob",
                    "error": "EntityNotFoundException",
                    "entity": "alice@example.com",
                    "times": None,
                }
            ]
        )
    )

    with pytest.raises(ClientError) as first:
        start(started, aws, "alice")
    with pytest.raises(ClientError) as second:
        start(started, aws, "alice", token="again")

    assert error_code(first) == error_code(second) == "EntityNotFoundException"
    assert start(started, aws, "bob")


def test_an_injected_limit_is_counted_like_a_real_one(emulator_for, aws):
    started = emulator_for(
        with_faults(errors=[{"operation": "StartMailboxExportJob", "error": "LimitExceededException"}])
    )

    with pytest.raises(ClientError):
        start(started, aws, "alice")

    assert started.emulator.limit_exceeded_count(ORG) == 1
    assert start(started, aws, "alice")


def test_an_error_fault_applies_only_within_its_window(emulator_for, aws, clock):
    started = emulator_for(
        with_faults(
            errors=[
                {
                    "operation": "*",
                    "error": "InternalServerError",
                    "times": None,
                    "from": "+1h",
                    "until": "+2h",
                }
            ]
        )
    )

    before = started.client.describe_organization(OrganizationId=ORG)
    clock.advance(hours=1)
    with pytest.raises(ClientError) as during:
        started.client.list_users(OrganizationId=ORG)
    clock.advance(hours=1)
    after = started.client.describe_organization(OrganizationId=ORG)

    assert before["State"] == after["State"] == "Active"
    assert error_code(during) == "InternalServerError"


def test_a_describe_fault_for_a_mailbox_matches_its_jobs(emulator_for, aws):
    started = emulator_for(
        with_faults(errors=[{"operation": "DescribeMailboxExportJob", "error": "ThrottlingException", "entity": "bob"}])
    )
    alice_job, bob_job = start(started, aws, "alice"), start(started, aws, "bob")

    assert started.client.describe_mailbox_export_job(OrganizationId=ORG, JobId=alice_job)["State"] == "RUNNING"
    with pytest.raises(ClientError) as raised:
        started.client.describe_mailbox_export_job(OrganizationId=ORG, JobId=bob_job)

    assert error_code(raised) == "ThrottlingException"


def test_a_job_outcome_fault_fails_a_mailbox_with_its_error_text_and_duration(emulator_for, aws, clock):
    started = emulator_for(
        with_faults(
            job_outcomes=[
                {
                    "entity": "alice",
                    "state": "FAILED",
                    "duration": "2m",
                    "error_info": "Mailbox is corrupted.",
                }
            ]
        )
    )
    job_id = start(started, aws, "alice")

    clock.advance(minutes=1)
    running = started.client.describe_mailbox_export_job(OrganizationId=ORG, JobId=job_id)
    clock.advance(minutes=1)
    failed = started.client.describe_mailbox_export_job(OrganizationId=ORG, JobId=job_id)

    assert running["State"] == "RUNNING"
    assert failed["State"] == "FAILED"
    assert failed["ErrorInfo"] == "Mailbox is corrupted."
    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount") == 0


def test_a_job_outcome_fault_can_cancel_a_job_and_then_let_later_ones_complete(emulator_for, aws, clock):
    started = emulator_for(with_faults(job_outcomes=[{"entity": "bob", "state": "CANCELLED", "times": 1}]))
    first = start(started, aws, "bob", token="first")
    clock.advance(hours=25)
    second = start(started, aws, "bob", token="second")
    clock.advance(minutes=5)

    states = [
        started.client.describe_mailbox_export_job(OrganizationId=ORG, JobId=job)["State"] for job in (first, second)
    ]

    assert states == ["CANCELLED", "COMPLETED"]


def test_a_slow_job_outcome_holds_its_slot_longer(emulator_for, aws, clock):
    started = emulator_for(with_faults(job_outcomes=[{"entity": "bob", "state": "COMPLETED", "duration": "3h"}]))
    job_id = start(started, aws, "bob")

    clock.advance(hours=2)
    midway = started.client.describe_mailbox_export_job(OrganizationId=ORG, JobId=job_id)
    clock.advance(hours=1)
    done = started.client.describe_mailbox_export_job(OrganizationId=ORG, JobId=job_id)

    assert (midway["State"], midway["EstimatedProgress"]) == ("RUNNING", 66)
    assert done["State"] == "COMPLETED"


def test_a_mailbox_deleted_during_the_night_disappears_then(emulator_for, aws, clock):
    started = emulator_for(
        with_faults(
            entity_changes=[
                {"entity": "bob", "state": "DELETED", "at": "+30m"},
                {"entity": "alice", "state": "DISABLED", "at": "+30m"},
            ]
        )
    )

    before = started.client.get_mailbox_details(OrganizationId=ORG, UserId="bob")
    clock.advance(minutes=30)
    with pytest.raises(ClientError) as deleted:
        start(started, aws, "bob")
    with pytest.raises(ClientError) as disabled:
        start(started, aws, "alice")
    states = {user["Name"]: user["State"] for user in started.client.list_users(OrganizationId=ORG)["Users"]}

    assert before["MailboxSize"] == 60.0
    assert error_code(deleted) == "EntityNotFoundException"
    assert error_code(disabled) == "EntityStateException"
    assert (states["bob"], states["alice"]) == ("DELETED", "DISABLED")


def test_a_generated_user_can_be_the_target_of_a_fault(emulator_for, aws):
    definition = scenario(organization(users=[], resources=[], generate_users={"count": 5, "seed": 3}))
    first_name = load_scenario(definition).organizations[0].all_users()[0].name
    definition["organizations"][0]["faults"] = {
        "entity_changes": [{"entity": first_name, "state": "DELETED", "at": "-1m"}]
    }
    started = emulator_for(definition)

    with pytest.raises(ClientError) as raised:
        started.client.get_mailbox_details(OrganizationId=ORG, UserId=first_name)

    assert error_code(raised) == "EntityNotFoundException"


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (
            {"errors": [{"operation": "ListUser", "error": "ThrottlingException"}]},
            "organizations[0].faults.errors[0].operation: WorkMail has no operation 'ListUser'",
        ),
        (
            {"errors": [{"operation": "ListUsers", "error": "Throttled"}]},
            "organizations[0].faults.errors[0].error: must be one of",
        ),
        (
            {"errors": [{"operation": "ListUsers", "error": "ThrottlingException", "times": 0}]},
            "organizations[0].faults.errors[0].times: must be >= 1, got 0",
        ),
        (
            {"errors": [{"operation": "ListUsers", "error": "ThrottlingException", "from": "+2h", "until": "+1h"}]},
            "organizations[0].faults.errors[0].until: must be later than 'from'",
        ),
        (
            {"errors": [{"operation": "ListUsers", "error": "ThrottlingException", "untill": "+2h"}]},
            "organizations[0].faults.errors[0].untill: unknown key 'untill'; did you mean 'until'?",
        ),
        (
            {"job_outcomes": [{"entity": "nobody", "state": "FAILED"}]},
            "organizations[0].faults.job_outcomes[0].entity: no user or resource has the id, email or name",
        ),
        (
            {"job_outcomes": [{"entity": "bob", "state": "CANCELLED", "error_info": "x"}]},
            "organizations[0].faults.job_outcomes[0].error_info: only a FAILED outcome has error_info",
        ),
        (
            {"entity_changes": [{"entity": "bob", "state": "ENABLED", "at": "+1h"}]},
            "organizations[0].faults.entity_changes[0].state: must be one of 'DISABLED' or 'DELETED'",
        ),
    ],
)
def test_malformed_faults_name_the_field(faults, expected):
    with pytest.raises(ScenarioError) as raised:
        load_scenario(with_faults(**faults))

    assert any(problem.startswith(expected) for problem in raised.value.problems), raised.value.problems
