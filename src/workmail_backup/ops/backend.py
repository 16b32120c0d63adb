"""Where the answers come from: a deployed stack, or the saved state of a local run.

A ``Backend`` bundles the ledger, the organizations it covers and the Step Functions
executions behind its runs. The queries never ask which kind they are reading.
"""

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from boto3.dynamodb.conditions import Attr
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from mailbox_backup import clients
from mailbox_backup.ledger import Ledger, from_dynamo, iso
from workmail_backup.ops.errors import InvalidRequestError, OperationsError

# History events whose details say why a state failed.
_FAILURE_DETAILS = (
    "taskFailedEventDetails",
    "lambdaFunctionFailedEventDetails",
    "executionFailedEventDetails",
    "activityFailedEventDetails",
)
MAX_FAILURE_EVENTS = 10
# Someone waits at a terminal: an unreachable endpoint or a throttled call is reported after
# a few seconds and three attempts, not after the handlers' eight with backoff.
AT_A_TERMINAL = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3})
ORGANIZATION_ID = re.compile(r"m-[0-9a-f]{32}")


class Executions(Protocol):
    """The Step Functions executions behind the runs."""

    def describe(self, execution_arn: str) -> dict | None: ...

    def failures(self, execution_arn: str) -> list[dict]: ...

    def start(self, name: str, execution_input: dict) -> str: ...


@dataclass
class Backend:
    ledger: Ledger
    organization_ids: list[str]
    executions: Executions
    description: str
    # Asked for the live progress of running jobs; None where WorkMail cannot be reached.
    workmail: Any | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    # Set where runs cannot be started, saying what to use instead.
    cannot_start_because: str | None = None
    # False for saved state: a snapshot that no refresh changes.
    live: bool = True

    def organizations(self, organization_id: str | None) -> list[str]:
        """The organizations a command covers: the one asked for, or every one."""
        if organization_id is None:
            return list(self.organization_ids)
        if organization_id not in self.organization_ids:
            known = ", ".join(self.organization_ids) or "none"
            raise InvalidRequestError(
                f"Organization {organization_id} is not in {self.description} (known: {known}); check --org."
            )
        return [organization_id]


class StepFunctionsExecutions:
    """Executions read from, and started in, Step Functions."""

    def __init__(self, stepfunctions, state_machine_arn: str | None):
        self.stepfunctions = stepfunctions
        self.state_machine_arn = state_machine_arn

    def describe(self, execution_arn: str) -> dict | None:
        try:
            described = self.stepfunctions.describe_execution(executionArn=execution_arn)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ExecutionDoesNotExist", "InvalidArn"):
                return None
            raise
        return execution_summary(described)

    def failures(self, execution_arn: str) -> list[dict]:
        paginator = self.stepfunctions.get_paginator("get_execution_history")
        events = [event for page in paginator.paginate(executionArn=execution_arn) for event in page["events"]]
        return failure_events(events)

    def require_state_machine(self) -> None:
        if not self.state_machine_arn:
            raise InvalidRequestError(
                "Starting a run needs the OrganizationBackup state machine: pass --stack, or --state-machine ARN."
            )

    def start(self, name: str, execution_input: dict) -> str:
        self.require_state_machine()
        response = self.stepfunctions.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
        )
        return response["executionArn"]


def execution_summary(described: dict) -> dict:
    return {
        "executionArn": described["executionArn"],
        "name": described.get("name") or described["executionArn"].split(":")[-1],
        "status": described["status"],
        "startDate": _iso_or_none(described.get("startDate")),
        "stopDate": _iso_or_none(described.get("stopDate")),
        "error": described.get("error"),
        "cause": described.get("cause"),
    }


def failure_events(events: list[dict]) -> list[dict]:
    """The failed states of an execution: which state, with what error and cause."""
    failures = []
    current_state = None
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered:
            current_state = entered.get("name")
        for detail_name in _FAILURE_DETAILS:
            detail = event.get(detail_name)
            if detail:
                failures.append(
                    {
                        "timestamp": _iso_or_none(event.get("timestamp")),
                        "type": event.get("type"),
                        "state": current_state,
                        "error": detail.get("error"),
                        "cause": _readable_cause(detail.get("cause")),
                    }
                )
    return failures[-MAX_FAILURE_EVENTS:]


def _readable_cause(cause: str | None) -> str | None:
    # Lambda failures carry a JSON document; its errorMessage is what a person needs.
    if not cause:
        return cause
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    return parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause


def _iso_or_none(value) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else iso(value)


# Connecting to a deployed stack ----------------------------------------------------------------


def connect_deployed(
    stack: str | None = None,
    table: str | None = None,
    state_machine: str | None = None,
    region: str | None = None,
    profile: str | None = None,
) -> Backend:
    """Find the ledger and state machine of a deployed stack, by stack name or given directly."""
    use_aws_settings(region, profile)
    with aws_setup_explained():
        if table:
            outputs = {"LedgerTableName": table, "OrganizationBackupStateMachineArn": state_machine or ""}
            return _backend(outputs, organization_ids=None, description=f"table {table}")
        if stack:
            outputs, organization_ids = _stack_outputs(stack)
            return _backend(outputs, organization_ids, description=f"stack {stack}")
    raise InvalidRequestError(
        "Say which backup to read: --stack NAME (or WORKMAIL_BACKUP_STACK), --table NAME, "
        "or --local DIR for the saved state of `workmail-backup local run --state-dir DIR`."
    )


@contextmanager
def aws_setup_explained() -> Iterator[None]:
    """Turn a missing region or missing credentials into a line saying which option sets it."""
    try:
        yield
    except NoRegionError:
        raise OperationsError("No AWS region is set; pass --region or set AWS_REGION.") from None
    except NoCredentialsError:
        raise OperationsError("No AWS credentials found; pass --profile or set AWS_PROFILE.") from None


def use_aws_settings(region: str | None, profile: str | None) -> None:
    # The ledger builds its clients from the environment, so the choices go there first.
    # boto3 reads AWS_DEFAULT_REGION only; AWS_REGION is what Lambda and most tools set.
    region = region or os.environ.get("AWS_REGION")
    if region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
    if profile:
        os.environ["AWS_PROFILE"] = profile
    if region or profile:
        clients.forget()


def _stack_outputs(stack: str) -> tuple[dict[str, str], list[str]]:
    outputs, parameters = read_stack(stack, required_outputs=("LedgerTableName",))
    # Read the ids by their pattern: CloudFormation gives "m-a,m-b"; moto the list's repr.
    organization_ids = ORGANIZATION_ID.findall(parameters.get("OrganizationIds", ""))
    return outputs, organization_ids or None


def read_stack(stack: str, required_outputs: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """A deployed stack's outputs and parameters; a missing stack or output is named in one line."""
    try:
        described = boto3.client("cloudformation", config=AT_A_TERMINAL).describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            region = boto3.session.Session().region_name
            raise InvalidRequestError(
                f"Stack {stack} was not found in {region}; pass --stack with the name given to `sam deploy` "
                "(and --region), or --table and --state-machine."
            ) from None
        raise
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    missing = [name for name in required_outputs if name not in outputs]
    if missing:
        raise InvalidRequestError(f"Stack {stack} has no {', '.join(missing)} output; is it a workmail-backup stack?")
    parameters = {item["ParameterKey"]: item.get("ParameterValue", "") for item in described.get("Parameters", [])}
    return outputs, parameters


def _backend(outputs: dict[str, str], organization_ids: list[str] | None, description: str) -> Backend:
    ledger = Ledger(outputs["LedgerTableName"], dynamodb=boto3.resource("dynamodb", config=AT_A_TERMINAL))
    try:
        ledger.table.load()
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            raise InvalidRequestError(
                f"Ledger table {outputs['LedgerTableName']} was not found; check --table, --stack and --region."
            ) from None
        raise
    executions = StepFunctionsExecutions(
        boto3.client("stepfunctions", config=AT_A_TERMINAL), outputs.get("OrganizationBackupStateMachineArn") or None
    )
    return Backend(
        ledger=ledger,
        organization_ids=organization_ids or organizations_in_ledger(ledger),
        executions=executions,
        description=description,
        workmail=boto3.client("workmail", config=AT_A_TERMINAL),
        outputs=outputs,
    )


def organizations_in_ledger(ledger: Ledger) -> list[str]:
    """Organizations that have runs, when no stack parameter lists them.

    A scan reads the whole table, so it is only the fallback for ``--table`` without ``--org``.
    """
    found: set[str] = set()
    arguments: dict[str, Any] = {"FilterExpression": Attr("type").eq("RUN"), "ProjectionExpression": "organizationId"}
    while True:
        page = ledger.table.scan(**arguments)
        found.update(from_dynamo(item)["organizationId"] for item in page["Items"] if "organizationId" in item)
        if "LastEvaluatedKey" not in page:
            return sorted(found)
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


AWS_ERRORS = (ClientError, BotoCoreError)
