"""The sample events in events/ still drive the functions they are for, so they cannot go stale."""

import json
from pathlib import Path

import boto3
import pytest

from tests.e2e.conftest import ORG, organization, scenario

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def _invoke(environment, logical_id: str, event: dict) -> dict:
    """Invoke a function of the local stack through the Lambda API, as Step Functions does."""
    response = boto3.client("lambda").invoke(
        FunctionName=environment.stack.function(logical_id).name, Payload=json.dumps(event).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return payload


@pytest.fixture
def environment(local_environment):
    with local_environment(scenario(organization(users=4))) as local:
        yield local


def test_every_event_file_is_exercised():
    exercised = {
        "schedule.json", "preflight.json", "start_run.json", "controller.json", "finish_run.json",
        "finish_run_after_error.json",
    }  # fmt: skip

    assert {path.name for path in EVENTS.glob("*.json")} == exercised


def test_the_function_events_plan_pass_and_finish_a_run(environment):
    assert _event("start_run.json")["organizationId"] == ORG

    preflight = _invoke(environment, "PreflightFunction", _event("preflight.json"))
    planned = _invoke(environment, "StartRunFunction", _event("start_run.json"))
    first_pass = _invoke(environment, "ControllerFunction", _event("controller.json"))
    finished = _invoke(environment, "FinishRunFunction", _event("finish_run.json"))

    assert preflight["passed"] is True
    assert planned["runId"] == "nightly-20261203" and planned["counts"]["queued"] == 4
    assert first_pass["running"] == 4 and first_pass["done"] is False
    assert finished["status"] == "SUCCEEDED"


def test_the_error_event_records_a_failed_run_with_the_error_text(environment):
    finished = _invoke(environment, "FinishRunFunction", _event("finish_run_after_error.json"))

    run = environment.ledger.get_run(ORG, "nightly-20261203")
    assert finished["status"] == "FAILED" and run["status"] == "FAILED"
    assert run["error"].startswith("OrganizationUnavailableError: WorkMail organization")


def test_the_schedule_event_runs_the_night_of_every_organization(environment):
    schedule = _event("schedule.json")
    nightly = environment.stack.outputs["NightlyStateMachineArn"]

    environment.run_state_machine(nightly, schedule, "schedule-event")

    dispatched = json.loads(
        environment.stepfunctions.describe_execution(executionArn=_only(environment, nightly))["output"]
    )
    assert [run["organizationId"] for run in dispatched["runs"]] == schedule["organizationIds"]
    assert dispatched["runId"] == "nightly-20261203"
    assert environment.organization_result(ORG, "nightly-20261203").run["counts"]["exported"] == 4


def _only(environment, state_machine_arn: str) -> str:
    executions = environment.stepfunctions.list_executions(stateMachineArn=state_machine_arn)["executions"]
    assert len(executions) == 1
    return executions[0]["executionArn"]
