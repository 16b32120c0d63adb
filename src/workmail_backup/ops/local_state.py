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
from typing import Annotated, Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from moto import mock_aws
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from mailbox_backup import clients
from mailbox_backup import clock as handler_clock
from mailbox_backup.ledger import Ledger, from_dynamo, iso, parse_iso
from workmail_backup.ops.backend import Backend, StepFunctionsExecutions, execution_summary
from workmail_backup.ops.errors import InvalidRequestError, OperationsError

STATE_FILE = "state.json"
FORMAT_VERSION = 1
_TABLE_SETTINGS = ("KeySchema", "AttributeDefinitions")
LEDGER_TABLE_KEYS = ("PK", "SK")
LEDGER_INDEX, LEDGER_INDEX_KEYS = "GSI1", ("GSI1PK", "GSI1SK")


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
        stop_cause = environment.stopped_executions.get(listed["executionArn"])
        if summary["status"] == "RUNNING" and stop_cause:
            # Stopped, but its thread was still inside a Lambda call when the state was saved:
            # saved as StopExecution leaves it once that call returns.
            summary.update(status="ABORTED", stopDate=iso(environment.clock.now()), cause=stop_cause)
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
    path = _state_path(directory)
    state = _read_state(directory, path)
    saved_environment = {name: os.environ.get(name) for name in _FAKE_AWS}
    os.environ.update({**_FAKE_AWS, "AWS_REGION": state["region"], "AWS_DEFAULT_REGION": state["region"]})
    mock = mock_aws()
    mock.start()
    clients.forget()
    # Ages and overdue checks are measured at the moment the local run ended, not today.
    handler_clock.use_source(lambda: parse_iso(state["savedAt"]))
    try:
        ledger = _load_ledger(state, path)
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


class _KeyElement(BaseModel):
    AttributeName: str
    KeyType: Literal["HASH", "RANGE"]


def _hash_then_range(elements: list[_KeyElement]) -> list[_KeyElement]:
    if [element.KeyType for element in elements] not in (["HASH"], ["HASH", "RANGE"]):
        raise ValueError("a key is one HASH attribute, then at most one RANGE attribute")
    return elements


_HashThenRange = Annotated[list[_KeyElement], AfterValidator(_hash_then_range)]


class _AttributeDefinition(BaseModel):
    AttributeName: str
    AttributeType: Literal["S", "N", "B"]


class _SavedIndex(BaseModel):
    IndexName: str
    KeySchema: _HashThenRange
    Projection: dict[str, Any]


class _SavedTable(BaseModel):
    KeySchema: _HashThenRange
    AttributeDefinitions: list[_AttributeDefinition]
    GlobalSecondaryIndexes: list[_SavedIndex] = []


class _SavedFailure(BaseModel):
    """A failed state, as `run show` prints it."""

    timestamp: str | None
    state: str | None
    error: str | None
    cause: str | None


class _SavedExecution(BaseModel):
    """An execution as ``execution_summary`` wrote it; the views read its status and failures by its ARN."""

    executionArn: str = Field(min_length=1)
    status: str
    failures: list[_SavedFailure] = []


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
    executions: list[_SavedExecution]


def _state_path(directory: Path) -> Path:
    # The file itself is as good a name for the saved state as its folder.
    return directory if directory.name == STATE_FILE and directory.is_file() else directory / STATE_FILE


def _damaged(path: Path, problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"{path} is damaged ({problem}); run `local run --state-dir` again.")


def _read_state(directory: Path, path: Path) -> dict:
    if not path.is_file():
        raise InvalidRequestError(
            f"No saved local state in {directory}; create it with "
            f"`workmail-backup local run --scenario scenarios/demo.yaml --state-dir {directory}`."
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_json_number)
    except ValueError as error:
        raise InvalidRequestError(f"{path} is not valid JSON ({error}); run `local run --state-dir` again.") from None
    if not isinstance(state, dict) or state.get("formatVersion") != FORMAT_VERSION:
        raise InvalidRequestError(f"{path} was written by another version; run `local run --state-dir` again.")
    problem = _first_shape_problem(state) or _first_unreadable_time(state)
    if problem:
        raise _damaged(path, problem)
    return state


def _no_json_number(name: str) -> float:
    # Python reads NaN and Infinity, which JSON has not and DynamoDB refuses.
    raise ValueError(f"{name} is no JSON number")


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
    return _first_key_problem(state) or _first_unlisted_organization(state)


def _first_unlisted_organization(state: dict) -> str | None:
    # The commands cover the organizations listed; one left out would silently look healthy.
    listed = set(state["organizationIds"])
    for position, item in enumerate(state["items"]):
        organization_id = item.get("organizationId")
        if organization_id is not None and organization_id not in listed:
            return f"items.{position}: organization {organization_id} is missing from organizationIds"
    return None


# What DynamoDB takes for a key attribute of each type: JSON has no binary, so B is kept as text.
_KEY_TYPES = {"S": (str,), "N": (int, float), "B": (str,)}


def _first_key_problem(state: dict) -> str | None:
    """Where an item cannot go back into the table: a key attribute missing, empty, of another
    type than the table's, or a key that another item already has."""
    table = state["table"]
    types = {definition["AttributeName"]: definition["AttributeType"] for definition in table["AttributeDefinitions"]}
    table_keys = [element["AttributeName"] for element in table["KeySchema"]]
    index_keys = [
        element["AttributeName"] for index in table.get("GlobalSecondaryIndexes", []) for element in index["KeySchema"]
    ]
    problem = _ledger_schema_problem(table, table_keys)
    if problem:
        return problem
    for name in table_keys + index_keys:
        if name not in types:
            return f"table.AttributeDefinitions: key attribute {name} has no definition"
    seen: dict[tuple, int] = {}
    for position, item in enumerate(state["items"]):
        # An item without an index's keys is simply not in that index; one without the table's has no place.
        for name in [*table_keys, *(name for name in index_keys if name in item)]:
            problem = _key_value_problem(item.get(name), types[name]) if name in item else "Field required"
            if problem:
                return f"items.{position}.{name}: {problem}"
        key = tuple(item[name] for name in table_keys)
        if key in seen:
            return f"items.{position}: has the same key as items.{seen[key]}"
        seen[key] = position
    return None


def _ledger_schema_problem(table: dict, table_keys: list[str]) -> str | None:
    """The ledger's code reads these key names; a table keyed otherwise would answer no query."""
    if table_keys != list(LEDGER_TABLE_KEYS):
        return (
            f"table.KeySchema: the ledger is keyed by {' and '.join(LEDGER_TABLE_KEYS)}, not {' and '.join(table_keys)}"
        )
    indexes = {
        index["IndexName"]: [element["AttributeName"] for element in index["KeySchema"]]
        for index in table.get("GlobalSecondaryIndexes", [])
    }
    if indexes.get(LEDGER_INDEX) != list(LEDGER_INDEX_KEYS):
        return (
            f"table.GlobalSecondaryIndexes: the ledger's index {LEDGER_INDEX} is keyed by "
            f"{' and '.join(LEDGER_INDEX_KEYS)}"
        )
    return None


def _key_value_problem(value: Any, attribute_type: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, _KEY_TYPES[attribute_type]):
        return f"a key attribute of type {attribute_type} cannot be {_json_kind(value)}"
    if value == "":
        return "a key attribute cannot be empty"
    return None


def _json_kind(value: Any) -> str:
    kinds = {bool: "true or false", str: "text", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _located(error: ValidationError, prefix: tuple = ()) -> str:
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    return f"{'.'.join(str(part) for part in (*prefix, *first['loc']))}: {message}"


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


def _load_ledger(state: dict, path: Path) -> Ledger:
    """The saved ledger in a fresh table; what the checks above let through and DynamoDB still refuses is named too."""
    try:
        return _rebuilt_ledger(state)
    except (ClientError, BotoCoreError) as error:
        # botocore lists parameter problems on lines of their own; the message stays one line.
        raise _damaged(path, f"the ledger cannot be rebuilt from it: {' '.join(str(error).split())}") from None


def _rebuilt_ledger(state: dict) -> Ledger:
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
