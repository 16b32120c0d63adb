"""Dispatch: turn one schedule delivery into one run per organization.

Each organization's run gets its own execution, named after the organization and the
night it belongs to. Step Functions refuses a second execution of the same name, so a
schedule that delivers the same night twice cannot start a second run.
"""

import json
import os

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from mailbox_backup import clients, inputs, naming
from mailbox_backup.clock import utc_now
from mailbox_backup.errors import InvalidInputError, RunsNotStartedError
from mailbox_backup.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    state_machine_arn = os.environ["ORGANIZATION_STATE_MACHINE_ARN"]
    timezone_name = os.environ.get("SCHEDULE_TIMEZONE", "UTC")
    organization_ids = _organization_ids(event)
    scheduled = inputs.timestamp(event, "scheduledTime") if event.get("scheduledTime") else utc_now()
    run_id = naming.nightly_run_id(scheduled, timezone_name)
    logger.append_keys(run_id=run_id)

    runs = start_runs(clients.stepfunctions(), state_machine_arn, organization_ids, run_id)
    return {"runId": run_id, "runs": runs}


def start_runs(stepfunctions, state_machine_arn: str, organization_ids: list[str], run_id: str) -> list[dict]:
    """Start every organization's run; one that cannot start keeps none of the others from theirs.

    Raises RunsNotStartedError afterwards, naming the ones left, so that the state machine
    tries again (execution names make the started ones a no-op) and then fails visibly.
    """
    runs, not_started = [], []
    for organization_id in organization_ids:
        try:
            runs.append(_start_run(stepfunctions, state_machine_arn, organization_id, run_id))
        except (ClientError, BotoCoreError) as error:
            # A connection error names no code; its class says what happened.
            code = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
            logger.error("Run could not be started", extra={"organization_id": organization_id, "error": code})
            not_started.append(f"{organization_id} ({code})")
    if not_started:
        raise RunsNotStartedError(
            f"{run_id} could not be started for {', '.join(not_started)}; {len(runs)} other organization(s) started."
        )
    return runs


def _organization_ids(event: dict) -> list[str]:
    ids = event.get("organizationIds")
    if not isinstance(ids, list) or not ids:
        raise InvalidInputError("organizationIds must be a non-empty list of WorkMail organization ids.")
    return [inputs.organization_id({"organizationId": value}) for value in ids]


def _start_run(stepfunctions, state_machine_arn: str, organization_id: str, run_id: str) -> dict:
    name = naming.execution_name(organization_id, run_id)
    execution_input = {"organizationId": organization_id, "runId": run_id}
    try:
        response = stepfunctions.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
        )
    except stepfunctions.exceptions.ExecutionAlreadyExists:
        logger.info("Run already started; not starting it again", extra={"organization_id": organization_id})
        return {
            "organizationId": organization_id,
            "runId": run_id,
            "started": False,
            "reason": f"execution {name} already exists: this night's run was started before",
        }
    logger.info("Run started", extra={"organization_id": organization_id, "execution_arn": response["executionArn"]})
    return {
        "organizationId": organization_id,
        "runId": run_id,
        "started": True,
        "executionArn": response["executionArn"],
    }
