"""Organizations, users, resources and mailboxes, through a boto3 client."""

import pytest
from botocore.exceptions import ClientError

from .conftest import ORG, OTHER_ORG, error_code, organization, scenario, users


@pytest.fixture
def large(emulator_for, aws):
    """An organization of 250 users and no resources."""
    return emulator_for(scenario(organization(users=users(250), resources=[])))


def test_describe_organization_reports_alias_state_domain_and_arn(running):
    described = running.client.describe_organization(OrganizationId=ORG)

    assert described["OrganizationId"] == ORG
    assert described["Alias"] == "example-corp"
    assert described["State"] == "Active"
    assert described["DefaultMailDomain"] == "example-corp.awsapps.com"
    assert described["ARN"] == f"arn:aws:workmail:us-east-1:123456789012:organization/{ORG}"


def test_an_unknown_organization_is_not_found(running):
    with pytest.raises(ClientError) as raised:
        running.client.list_users(OrganizationId=OTHER_ORG)

    assert error_code(raised) == "OrganizationNotFoundException"


def test_an_organization_that_is_not_active_refuses_work_but_can_be_described(emulator_for, aws):
    started = emulator_for(scenario(organization(state="Deleting")))

    with pytest.raises(ClientError) as raised:
        started.client.list_users(OrganizationId=ORG)

    assert error_code(raised) == "OrganizationStateException"
    assert started.client.describe_organization(OrganizationId=ORG)["State"] == "Deleting"


def test_list_users_shows_every_state_and_role(running):
    listed = {user["Name"]: user for user in running.client.list_users(OrganizationId=ORG)["Users"]}

    assert listed["alice"]["State"] == "ENABLED" and listed["alice"]["UserRole"] == "USER"
    assert listed["alice"]["DisplayName"] == "Alice Adams"
    assert listed["carol"]["State"] == "DISABLED" and "DisabledDate" in listed["carol"]
    assert listed["dave"]["State"] == "DELETED"
    assert listed["mailer"]["UserRole"] == "SYSTEM_USER"
    assert listed["partner"]["UserRole"] == "REMOTE_USER"
    assert listed["room-1"]["UserRole"] == "RESOURCE"


def test_resources_can_be_left_out_of_list_users(emulator_for, aws):
    started = emulator_for(scenario(organization(list_users_includes_resources=False)))

    names = [user["Name"] for user in started.client.list_users(OrganizationId=ORG)["Users"]]

    assert "room-1" not in names and "alice" in names


def test_250_users_come_in_pages_of_100_100_and_50(large):
    first = large.client.list_users(OrganizationId=ORG)
    second = large.client.list_users(OrganizationId=ORG, NextToken=first["NextToken"])
    third = large.client.list_users(OrganizationId=ORG, NextToken=second["NextToken"])

    assert [len(page["Users"]) for page in (first, second, third)] == [100, 100, 50]
    assert "NextToken" not in third
    names = [user["Name"] for page in (first, second, third) for user in page["Users"]]
    assert len(set(names)) == 250


def test_the_boto3_paginator_walks_every_user_with_a_smaller_page_size(large):
    paginator = large.client.get_paginator("list_users")
    pages = list(paginator.paginate(OrganizationId=ORG, PaginationConfig={"PageSize": 40}))

    assert len(pages) == 7
    assert sum(len(page["Users"]) for page in pages) == 250


def test_a_forged_next_token_is_refused(large):
    with pytest.raises(ClientError) as raised:
        large.client.list_users(OrganizationId=ORG, NextToken="not-a-token")

    assert error_code(raised) == "InvalidParameterException"


def test_a_next_token_from_another_listing_is_refused(large):
    token = large.client.list_users(OrganizationId=ORG)["NextToken"]

    with pytest.raises(ClientError) as by_operation:
        large.client.list_resources(OrganizationId=ORG, NextToken=token)
    with pytest.raises(ClientError) as by_filter:
        large.client.list_users(OrganizationId=ORG, NextToken=token, Filters={"State": "ENABLED"})

    assert error_code(by_operation) == "InvalidParameterException"
    assert error_code(by_filter) == "InvalidParameterException"


def test_list_users_filters_combine(running):
    def names(**filters):
        return sorted(user["Name"] for user in running.client.list_users(OrganizationId=ORG, Filters=filters)["Users"])

    assert names(State="ENABLED", UsernamePrefix="a") == ["alice"]
    assert names(PrimaryEmailPrefix="CAROL@") == ["carol"]
    assert names(DisplayNamePrefix="Alice") == ["alice"]
    assert names(State="DELETED") == ["dave"]


def test_list_resources_reports_type_and_state_and_honours_max_results(emulator_for, aws):
    rooms = [{"name": f"room-{index}", "email": f"room-{index}@example.com", "mailbox_mb": 5} for index in range(5)]
    started = emulator_for(scenario(organization(resources=rooms)))

    first = started.client.list_resources(OrganizationId=ORG, MaxResults=3)
    rest = started.client.list_resources(OrganizationId=ORG, MaxResults=3, NextToken=first["NextToken"])

    assert [len(first["Resources"]), len(rest["Resources"])] == [3, 2]
    assert first["Resources"][0]["Type"] == "ROOM"
    assert first["Resources"][0]["Id"].startswith("r-") and len(first["Resources"][0]["Id"]) == 34


def test_get_mailbox_details_reports_size_in_mb_and_quota(running):
    details = running.client.get_mailbox_details(OrganizationId=ORG, UserId="alice@example.com")

    assert details["MailboxSize"] == 480.0
    assert details["MailboxQuota"] == 51200


def test_get_mailbox_details_accepts_the_user_id(running):
    alice = running.client.list_users(OrganizationId=ORG, Filters={"UsernamePrefix": "alice"})["Users"][0]

    details = running.client.get_mailbox_details(OrganizationId=ORG, UserId=alice["Id"])

    assert details["MailboxSize"] == 480.0


@pytest.mark.parametrize(
    ("user", "code"),
    [
        ("nobody", "EntityNotFoundException"),
        ("dave", "EntityNotFoundException"),
        ("carol", "EntityStateException"),
        ("mailer", "EntityStateException"),
    ],
)
def test_get_mailbox_details_for_a_user_without_a_usable_mailbox(running, user, code):
    with pytest.raises(ClientError) as raised:
        running.client.get_mailbox_details(OrganizationId=ORG, UserId=user)

    assert error_code(raised) == code


def test_describe_user_reports_role_state_and_email(running):
    described = running.client.describe_user(OrganizationId=ORG, UserId="bob")

    assert described["Name"] == "bob"
    assert described["Email"] == "bob@example.com"
    assert described["State"] == "ENABLED"
    assert described["UserRole"] == "USER"


def test_generated_ids_are_stable_across_emulators(emulator_for, aws):
    first = emulator_for(scenario()).client.list_users(OrganizationId=ORG)["Users"]
    second = emulator_for(scenario()).client.list_users(OrganizationId=ORG)["Users"]

    assert [user["Id"] for user in first] == [user["Id"] for user in second]
