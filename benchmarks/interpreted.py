"""Run a design through the real state machine interpreter (moto) and measure it."""

import io
import json
import time
import uuid
import zipfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import boto3

from benchmarks.measure import Job, Measurement, lower_bound_seconds, seconds_between, utilization_while_queued
from mailbox_backup import clients, naming
from workmail_backup.local.emulator import load_scenario
from workmail_backup.local.runner import PROJECT_ROOT, LocalEnvironment

BENCHMARKS = Path(__file__).resolve().parent
BASELINES = {
    "fixed batches of 10": (
        "baseline_batches.asl.json",
        {"StartBatchFunctionArn": "start_batch", "CheckBatchFunctionArn": "check_batch"},
    ),
    "Map, a poll loop per mailbox": (
        "baseline_per_mailbox_map.asl.json",
        {
            "ListMailboxesFunctionArn": "list_mailboxes",
            "StartOneFunctionArn": "start_one",
            "CheckOneFunctionArn": "check_one",
        },
    ),
}
THIS_DESIGN = "this design (controller loop)"
LISTING_OPERATIONS = ("ListUsers", "ListResources")
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem")
TIMEOUT_SECONDS = 3600


def run_interpreted(design: str, scenario: dict, log_dir: Path) -> Measurement:
    organization_id = scenario["organizations"][0]["id"]
    log_path = log_dir / f"{design.split()[0]}-{len_of(scenario)}.log"
    wall_start = time.monotonic()
    with LocalEnvironment(load_scenario(scenario), log_path=log_path) as environment, _dynamodb_counter() as dynamodb:
        started_at = environment.clock.now()
        if design == THIS_DESIGN:
            environment.run_nightly(timeout_seconds=TIMEOUT_SECONDS)
            machines = ["NightlyStateMachineArn", "OrganizationBackupStateMachineArn"]
            arns = [environment.stack.outputs[name] for name in machines]
        else:
            arn = _deploy_baseline(environment, design)
            run_id = naming.on_demand_run_id(started_at)
            environment.run_state_machine(
                arn, {"organizationId": organization_id, "runId": run_id}, f"baseline-{uuid.uuid4()}", TIMEOUT_SECONDS
            )
            arns = [arn]
        measurement = _measure(environment, design, organization_id, started_at, arns, dynamodb)
    measurement.wall_seconds = time.monotonic() - wall_start
    if measurement.mailboxes < len_of(scenario):
        # Shown, not hidden: a run that did not export everything measures something else.
        measurement.limits_broken.append(f"incomplete run: {measurement.mailboxes} of {len_of(scenario)} exported")
    return measurement


def len_of(scenario: dict) -> int:
    return scenario["organizations"][0]["generate_users"]["count"]


def _measure(environment, design, organization_id, started_at, arns, dynamodb) -> Measurement:
    jobs = [
        Job(seconds_between(started_at, job.start), seconds_between(started_at, job.end))
        for job in environment.emulator.jobs(organization_id)
        if job.started_by == "api"
    ]
    durations = [job.end - job.start for job in jobs]
    histories = [_history(environment, execution) for arn in arns for execution in _executions(environment, arn)]
    requests = environment.emulator.request_counts(organization_id)
    return Measurement(
        design=design,
        mailboxes=len(jobs),
        source="interpreter",
        makespan_hours=max(job.end for job in jobs) / 3600,
        lower_bound_hours=lower_bound_seconds(durations) / 3600,
        utilization=utilization_while_queued(jobs),
        transitions=sum(1 for events in histories for event in events if event["type"].endswith("StateEntered")),
        lambda_invocations=len(environment.lambdas.invocations),
        workmail_calls=sum(count for name, count in requests.items() if name not in LISTING_OPERATIONS),
        dynamodb_writes=dynamodb["writes"],
        dynamodb_reads=dynamodb["reads"],
        peak_payload_bytes=max(_payload_bytes(event) for events in histories for event in events),
        max_history_events=max(len(events) for events in histories),
    )


def _executions(environment, state_machine_arn: str) -> list[str]:
    paginator = environment.stepfunctions.get_paginator("list_executions")
    return [
        execution["executionArn"]
        for page in paginator.paginate(stateMachineArn=state_machine_arn)
        for execution in page["executions"]
    ]


def _history(environment, execution_arn: str) -> list[dict]:
    paginator = environment.stepfunctions.get_paginator("get_execution_history")
    return [event for page in paginator.paginate(executionArn=execution_arn) for event in page["events"]]


def _payload_bytes(event: dict) -> int:
    sizes = [0]
    for details in event.values():
        if isinstance(details, dict):
            sizes += [len(str(details.get(key, "")).encode()) for key in ("input", "output")]
    return max(sizes)


@contextmanager
def _dynamodb_counter():
    """Count the functions' DynamoDB requests, in write and read units of items up to 1 KB."""
    counts: Counter = Counter()

    def count(params, model, **kwargs):
        if model.name in WRITE_OPERATIONS:
            counts["writes"] += 1
        elif model.name == "BatchWriteItem":
            counts["writes"] += sum(len(items) for items in params.get("RequestItems", {}).values())
        elif model.name in ("GetItem", "Query"):
            counts["reads"] += 1

    # The handlers share one cached DynamoDB client (mailbox_backup.clients); count on it.
    events = clients.dynamodb().meta.client.meta.events
    events.register("before-call.dynamodb", count, unique_id="benchmark-dynamodb-counter")
    try:
        yield counts
    finally:
        events.unregister("before-call.dynamodb", count, unique_id="benchmark-dynamodb-counter")


def _deploy_baseline(environment, design: str) -> str:
    """Create the baseline's functions and state machine next to the stack, with the controller's settings."""
    definition_file, handlers = BASELINES[design]
    controller = environment.stack.function("ControllerFunction")
    lambdas = boto3.client("lambda")
    role = _role()
    substitutions = {
        "StartRunFunctionArn": _function_arn(lambdas, environment.stack.function("StartRunFunction").name),
        "FinishRunFunctionArn": _function_arn(lambdas, environment.stack.function("FinishRunFunction").name),
    }
    for placeholder, handler in handlers.items():
        name = f"baseline-{handler.replace('_', '-')}"
        lambdas.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler=f"benchmarks.baselines.{handler}",
            Code={"ZipFile": _placeholder_zip()},
            Environment={"Variables": dict(controller.environment)},
        )
        environment.lambdas.code_dirs[name] = PROJECT_ROOT
        substitutions[placeholder] = _function_arn(lambdas, name)

    definition = (BENCHMARKS / definition_file).read_text()
    for placeholder, value in substitutions.items():
        definition = definition.replace("${" + placeholder + "}", value)
    machine = environment.stepfunctions.create_state_machine(
        name=f"baseline-{uuid.uuid4().hex[:8]}", definition=definition, roleArn=role
    )
    return machine["stateMachineArn"]


def _function_arn(lambdas, name: str) -> str:
    return lambdas.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


def _role() -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam = boto3.client("iam")
    name = f"baseline-{uuid.uuid4().hex[:8]}"
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _placeholder_zip() -> bytes:
    # moto's Docker-less Lambda stores the code without running it; the local mode runs the handler in-process.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Runs in-process in the local mode.")
    return buffer.getvalue()
