"""The state of a local run, kept on disk so that later commands can read it.

``local run --state-dir DIR`` writes ``DIR/state.json`` after the run: every ledger item,
the table's key schema, the executions with their failed states, the stack outputs and the
simulated time the run ended. ``--local DIR`` on an operations command loads it into an
in-process moto table, so the queries run the same requests as against AWS.
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import boto3
from moto import mock_aws
from pydantic import AfterValidator, BaseModel, ValidationError

from mailbox_backup import clients
from mailbox_backup import clock as handler_clock
from mailbox_backup.ledger import Ledger, from_dynamo, iso, parse_iso
from workmail_backup.ops.backend import Backend, StepFunctionsExecutions, execution_summary
from workmail_backup.ops.errors import InvalidRequestError, OperationsError

STATE_FILE = "state.json"
FORMAT_VERSION = 1
_TABLE_SETTINGS = ("KeySchema", "AttributeDefinitions")


def save_state(environment, directory: Path) -> Path:
    """Write the ledger and the executions of a live local environment to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    table = environment.ledger.table
    state = {
        "formatVersion": FORMAT_VERSION,
        "savedAt": iso(environment.clock.now()),
        "region": environment.region,
        "organizationIds": environment.organization_ids,
        "outputs": environment.stack.outputs,
        "table": _table_schema(table.meta.client.describe_table(TableName=table.name)["Table"]),
        "items": [from_dynamo(item) for item in _scan(table)],
        "executions": _executions(environment),
    }
    path = directory / STATE_FILE
    path.write_text(json.dumps(state, indent=1, default=str), encoding="utf-8")
    return path


def _table_schema(description: dict) -> dict:
    schema = {name: description[name] for name in _TABLE_SETTINGS}
    indexes = description.get("GlobalSecondaryIndexes", [])
    schema["GlobalSecondaryIndexes"] = [
        {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"], "Projection": index["Projection"]}
        for index in indexes
    ]
    return schema


def _scan(table) -> Iterator[dict]:
    arguments: dict[str, Any] = {}
    while True:
        page = table.scan(**arguments)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _executions(environment) -> list[dict]:
    executions = StepFunctionsExecutions(environment.stepfunctions, None)
    saved = []
    for listed in environment.executions():
        described = environment.stepfunctions.describe_execution(executionArn=listed["executionArn"])
        summary = execution_summary(described)
        summary["failures"] = executions.failures(listed["executionArn"]) if summary["status"] != "SUCCEEDED" else []
        saved.append(summary)
    return saved


SAVED_STATE_CANNOT_START = (
    "Saved local state cannot start runs: run `workmail-backup local run --scenario FILE --state-dir DIR` "
    "for a local night, or use --stack for a deployed one."
)


class SavedExecutions:
    """Executions as they were when the local run ended."""

    def __init__(self, executions: list[dict]):
        self._by_arn = {execution["executionArn"]: execution for execution in executions}

    def describe(self, execution_arn: str) -> dict | None:
        found = self._by_arn.get(execution_arn)
        return {key: value for key, value in found.items() if key != "failures"} if found else None

    def failures(self, execution_arn: str) -> list[dict]:
        return self._by_arn.get(execution_arn, {}).get("failures", [])

    def start(self, name: str, execution_input: dict) -> str:
        raise OperationsError(SAVED_STATE_CANNOT_START)


@contextmanager
def open_local_state(directory: Path) -> Iterator[Backend]:
    """Serve the saved state of ``directory`` from an in-process moto table, at the saved time."""
    state = _read_state(directory)
    saved_environment = {name: os.environ.get(name) for name in _FAKE_AWS}
    os.environ.update({**_FAKE_AWS, "AWS_REGION": state["region"], "AWS_DEFAULT_REGION": state["region"]})
    mock = mock_aws()
    mock.start()
    clients.forget()
    # Ages and overdue checks are measured at the moment the local run ended, not today.
    handler_clock.use_source(lambda: parse_iso(state["savedAt"]))
    try:
        ledger = _load_ledger(state)
        yield Backend(
            ledger=ledger,
            organization_ids=state["organizationIds"],
            executions=SavedExecutions(state["executions"]),
            description=f"local state {directory}",
            outputs=state["outputs"],
            cannot_start_because=SAVED_STATE_CANNOT_START,
            live=False,
        )
    finally:
        handler_clock.use_system_clock()
        mock.stop()
        clients.forget()
        _restore(saved_environment)


_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "",
    "AWS_DEFAULT_REGION": "",
}


def _known_region(region: str) -> str:
    if region not in boto3.session.Session().get_available_regions("dynamodb"):
        raise ValueError(f"{region!r} is no AWS region")
    return region


class _SavedOutputs(BaseModel):
    LedgerTableName: str


class _SavedTable(BaseModel):
    KeySchema: list[dict[str, Any]]
    AttributeDefinitions: list[dict[str, Any]]
    GlobalSecondaryIndexes: list[dict[str, Any]] = []


class _SavedRun(BaseModel):
    """The parts of a run item that every view does arithmetic on."""

    counts: dict[str, int] = {}
    skipReasons: dict[str, int] = {}


class _SavedState(BaseModel):
    """What ``save_state`` writes; checked on reading, so that a damaged file is named, not a crash."""

    formatVersion: int
    savedAt: str
    region: Annotated[str, AfterValidator(_known_region)]
    organizationIds: list[str]
    outputs: _SavedOutputs
    table: _SavedTable
    items: list[dict[str, Any]]
    executions: list[dict[str, Any]]


def _read_state(directory: Path) -> dict:
    # The file itself is as good a name for the saved state as its folder.
    path = directory if directory.name == STATE_FILE and directory.is_file() else directory / STATE_FILE
    if not path.is_file():
        raise InvalidRequestError(
            f"No saved local state in {directory}; create it with "
            f"`workmail-backup local run --scenario scenarios/demo.yaml --state-dir {directory}`."
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise InvalidRequestError(f"{path} is not valid JSON ({error}); run `local run --state-dir` again.") from None
    if not isinstance(state, dict) or state.get("formatVersion") != FORMAT_VERSION:
        raise InvalidRequestError(f"{path} was written by another version; run `local run --state-dir` again.")
    problem = _first_shape_problem(state) or _first_unreadable_time(state)
    if problem:
        raise InvalidRequestError(f"{path} is damaged ({problem}); run `local run --state-dir` again.")
    return state


def _first_shape_problem(state: dict) -> str | None:
    try:
        _SavedState.model_validate(state)
    except ValidationError as error:
        return _located(error)
    for index, item in enumerate(state["items"]):
        if item.get("type") != "RUN":
            continue
        try:
            _SavedRun.model_validate(item)
        except ValidationError as error:
            return _located(error, ("items", index))
    return None


def _located(error: ValidationError, prefix: tuple = ()) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(part) for part in (*prefix, *first['loc']))}: {first['msg']}"


def _first_unreadable_time(state: dict) -> str | None:
    """Where a time the views will read (savedAt, or an item's ...At field) is not an ISO time."""
    times = [("savedAt", state["savedAt"])] + [
        (f"items.{index}.{name}", value)
        for index, item in enumerate(state["items"])
        for name, value in item.items()
        if name.endswith("At") and isinstance(value, str)
    ]
    for where, value in times:
        try:
            parse_iso(value)
        except ValueError as error:
            return f"{where}: {error}"
    return None


def _load_ledger(state: dict) -> Ledger:
    table_name = state["outputs"]["LedgerTableName"]
    schema = state["table"]
    dynamodb = boto3.resource("dynamodb", region_name=state["region"])
    arguments = {"TableName": table_name, "BillingMode": "PAY_PER_REQUEST", **schema}
    if not arguments.get("GlobalSecondaryIndexes"):
        arguments.pop("GlobalSecondaryIndexes", None)
    dynamodb.create_table(**arguments)
    ledger = Ledger(table_name)
    # Saved floats go back as DynamoDB numbers through the ledger's own conversion.
    ledger.put_items(state["items"])
    return ledger


def _restore(saved_environment: dict[str, str | None]) -> None:
    for name, value in saved_environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
