"""Dispatch: one organization whose run cannot start keeps none of the others from theirs."""

from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from mailbox_backup.dispatch import start_runs
from mailbox_backup.errors import RunsNotStartedError

STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:backup-organization-backup"
REFUSED, STARTED = "m-" + "a" * 32, "m-" + "b" * 32


def test_an_organization_whose_run_cannot_start_leaves_the_others_started_and_is_named():
    stepfunctions = boto3.client("stepfunctions", region_name="us-east-1")
    stubber = Stubber(stepfunctions)
    stubber.add_client_error("start_execution", service_error_code="ExecutionLimitExceeded")
    started_arn = STATE_MACHINE.replace(":stateMachine:", ":execution:") + ":night-b"
    stubber.add_response("start_execution", {"executionArn": started_arn, "startDate": datetime.now(UTC)})

    with stubber, pytest.raises(RunsNotStartedError) as raised:
        start_runs(stepfunctions, STATE_MACHINE, [REFUSED, STARTED], "nightly-20261203")

    stubber.assert_no_pending_responses()
    assert str(raised.value) == (
        f"nightly-20261203 could not be started for {REFUSED} (ExecutionLimitExceeded); "
        "1 other organization(s) started."
    )


def test_a_night_delivered_twice_starts_nothing_new_and_is_no_error():
    stepfunctions = boto3.client("stepfunctions", region_name="us-east-1")
    stubber = Stubber(stepfunctions)
    stubber.add_client_error("start_execution", service_error_code="ExecutionAlreadyExists")

    with stubber:
        (run,) = start_runs(stepfunctions, STATE_MACHINE, [STARTED], "nightly-20261203")

    assert run["started"] is False and "was started before" in run["reason"]


def test_an_unreachable_endpoint_for_one_organization_leaves_the_others_started():
    stepfunctions = boto3.client("stepfunctions", region_name="us-east-1")
    started_arn = STATE_MACHINE.replace(":stateMachine:", ":execution:") + ":night-b"
    answers = iter([EndpointConnectionError(endpoint_url="https://states"), {"executionArn": started_arn}])

    def start_execution(**request):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    stepfunctions.start_execution = start_execution

    with pytest.raises(RunsNotStartedError) as raised:
        start_runs(stepfunctions, STATE_MACHINE, [REFUSED, STARTED], "nightly-20261203")

    assert f"{REFUSED} (EndpointConnectionError)" in str(raised.value) and "1 other organization(s) started" in str(
        raised.value
    )
