"""The wire protocol and model validation, as a boto3 client and a raw HTTP client see them."""

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from .conftest import ORG, error_code


def raw_post(url: str, target: str, body: bytes) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_errors_carry_the_code_in_the_body_and_the_header(running):
    status, headers, body = raw_post(
        running.emulator.url,
        "WorkMailService.DescribeOrganization",
        json.dumps({"OrganizationId": "m-" + "f" * 32}).encode(),
    )

    assert status == 400
    assert headers["x-amzn-ErrorType"] == "OrganizationNotFoundException"
    assert body["__type"] == "OrganizationNotFoundException"
    assert "m-ffff" in body["Message"]


def test_an_operation_the_emulator_does_not_implement_is_named_in_the_error(running):
    with pytest.raises(ClientError) as raised:
        running.client.list_groups(OrganizationId=ORG)

    assert error_code(raised) == "UnknownOperationException"
    assert "ListGroups" in str(raised.value)


def test_an_operation_workmail_does_not_have_is_refused(running):
    status, _, body = raw_post(running.emulator.url, "WorkMailService.ExportEverything", b"{}")

    assert status == 400
    assert body["__type"] == "UnknownOperationException"


def test_a_body_that_is_not_json_is_a_serialization_error(running):
    status, _, body = raw_post(running.emulator.url, "WorkMailService.ListUsers", b"{not json")

    assert status == 400
    assert body["__type"] == "SerializationException"


def test_a_missing_required_member_is_named(running):
    status, _, body = raw_post(running.emulator.url, "WorkMailService.ListUsers", b"{}")

    assert (status, body["__type"]) == (400, "ValidationException")
    assert "'OrganizationId'" in body["Message"] and "must not be null" in body["Message"]


@pytest.mark.parametrize("prefix", ["exports/alice@example.com", "a+b", "2026-12-03T01:00:00", "with space"])
def test_s3_prefix_outside_the_model_pattern_is_refused(running, aws, prefix):
    with pytest.raises(ClientError) as raised:
        running.client.start_mailbox_export_job(
            ClientToken="prefix-test", EntityId="alice", **aws.export_arguments(S3Prefix=prefix)
        )

    assert error_code(raised) == "ValidationException"
    assert "S3Prefix" in str(raised.value) and "regular expression pattern" in str(raised.value)
    assert running.emulator.jobs(ORG) == []


def test_s3_prefix_of_1024_characters_is_refused_and_1023_accepted(running, aws):
    with pytest.raises(ClientError) as raised:
        running.client.start_mailbox_export_job(
            ClientToken="long-prefix", EntityId="alice", **aws.export_arguments(S3Prefix="p" * 1024)
        )
    accepted = running.client.start_mailbox_export_job(
        ClientToken="ok-prefix", EntityId="alice", **aws.export_arguments(S3Prefix="p" * 1023)
    )

    assert "less than or equal to 1023" in str(raised.value)
    assert accepted["JobId"]


def test_client_token_of_129_characters_is_refused_and_128_accepted(running, aws):
    with pytest.raises(ClientError) as raised:
        running.client.start_mailbox_export_job(ClientToken="t" * 129, EntityId="alice", **aws.export_arguments())
    accepted = running.client.start_mailbox_export_job(
        ClientToken="t" * 128, EntityId="alice", **aws.export_arguments()
    )

    assert error_code(raised) == "ValidationException"
    assert "ClientToken" in str(raised.value) and "128" in str(raised.value)
    assert accepted["JobId"]


def test_client_token_with_a_space_breaks_its_printable_ascii_pattern(running, aws):
    with pytest.raises(ClientError) as raised:
        running.client.start_mailbox_export_job(ClientToken="run 1", EntityId="alice", **aws.export_arguments())

    assert error_code(raised) == "ValidationException"
    assert "ClientToken" in str(raised.value)


@pytest.mark.parametrize(
    "organization_id", ["m-0123456789ABCDEF0123456789ABCDEF", "x-0123456789abcdef0123456789abcdef"]
)
def test_organization_id_outside_its_pattern_is_refused(running, organization_id):
    with pytest.raises(ClientError) as raised:
        running.client.describe_organization(OrganizationId=organization_id)

    assert error_code(raised) == "ValidationException"
    assert "OrganizationId" in str(raised.value)


def test_max_results_above_100_is_refused(running):
    with pytest.raises(ClientError) as raised:
        running.client.list_users(OrganizationId=ORG, MaxResults=101)

    assert error_code(raised) == "ValidationException"
    assert "MaxResults" in str(raised.value) and "100" in str(raised.value)


def test_an_enum_member_outside_its_values_is_refused(running):
    with pytest.raises(ClientError) as raised:
        running.client.list_users(OrganizationId=ORG, Filters={"State": "ACTIVE"})

    assert error_code(raised) == "ValidationException"
    assert "Filters.State" in str(raised.value)


def test_role_arn_outside_its_pattern_is_refused(running, aws):
    with pytest.raises(ClientError) as raised:
        running.client.start_mailbox_export_job(
            ClientToken="bad-role",
            EntityId="alice",
            **aws.export_arguments(RoleArn="role/WorkMailExport-role"),
        )

    assert error_code(raised) == "ValidationException"
    assert "RoleArn" in str(raised.value)


def test_the_endpoint_is_reached_through_the_environment_variable(running, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_WORKMAIL", running.emulator.url)
    client = boto3.client(
        "workmail", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )

    assert client.describe_organization(OrganizationId=ORG)["Alias"] == "example-corp"


def test_a_clock_without_a_time_zone_is_an_internal_failure_not_a_guess(emulator_for, clock):
    from datetime import datetime

    from .conftest import scenario

    started = emulator_for(scenario())
    clock.current = datetime(2026, 12, 3, 1, 0)

    with pytest.raises(ClientError) as raised:
        started.client.describe_organization(OrganizationId=ORG)

    assert error_code(raised) == "InternalFailure"
