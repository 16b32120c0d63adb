"""The DynamoDB ledger: the source of truth for mailboxes, runs, their queues and jobs.

One table, four kinds of item (see the README's "Ledger" section for the full layout):

- mailbox  PK=ORG#<org>                 SK=MAILBOX#<entity>   last known state and last success
- run      PK=ORG#<org>                 SK=RUN#<run>          status, times and counters
- task     PK=RUN#<org>#<run>           SK=MAILBOX#<entity>   one mailbox's place in one run
- job      PK=MAILBOX#<org>#<entity>    SK=JOB#<start>#<job>  one export job, for the audit trail

A task sits in one lane of the sparse GSI1 index while it is open, so the controller finds
the next mailboxes, the due deferred ones and the running ones with small queries that do
not grow with the organization:

- ready     GSI1PK=QUEUE#<org>#<run>    GSI1SK=READY#<priority>
- deferred  GSI1PK=QUEUE#<org>#<run>    GSI1SK=WAIT#<not-before>#<entity>
- active    GSI1PK=ACTIVE#<org>#<run>   GSI1SK=<entity>
"""

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from mailbox_backup import clients

# A run in one of these states may still start exports; the others are over.
OPEN_RUN_STATES = ("REQUESTED", "PLANNING", "RUNNING")


def iso(moment: datetime) -> str:
    """Timestamps are stored as ISO-8601 UTC strings, which sort as they compare."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def mailbox_key(organization_id: str, entity_id: str) -> dict[str, str]:
    return {"PK": f"ORG#{organization_id}", "SK": f"MAILBOX#{entity_id}"}


def run_key(organization_id: str, run_id: str) -> dict[str, str]:
    return {"PK": f"ORG#{organization_id}", "SK": f"RUN#{run_id}"}


def task_key(organization_id: str, run_id: str, entity_id: str) -> dict[str, str]:
    return {"PK": f"RUN#{organization_id}#{run_id}", "SK": f"MAILBOX#{entity_id}"}


def job_key(organization_id: str, entity_id: str, started_at: str, job_id: str) -> dict[str, str]:
    return {"PK": f"MAILBOX#{organization_id}#{entity_id}", "SK": f"JOB#{started_at}#{job_id}"}


def queue_partition(organization_id: str, run_id: str) -> str:
    return f"QUEUE#{organization_id}#{run_id}"


def active_partition(organization_id: str, run_id: str) -> str:
    return f"ACTIVE#{organization_id}#{run_id}"


def to_dynamo(value: Any) -> Any:
    """DynamoDB numbers must be Decimal; floats are rounded to milli-units first."""
    if isinstance(value, float):
        return Decimal(str(round(value, 3)))
    if isinstance(value, dict):
        return {key: to_dynamo(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [to_dynamo(item) for item in value]
    return value


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: from_dynamo(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_dynamo(item) for item in value]
    return value


class Ledger:
    """Typed access to the ledger table; every method is one small, bounded request."""

    def __init__(self, table_name: str, dynamodb=None):
        self.table = (dynamodb or clients.dynamodb()).Table(table_name)

    # Mailboxes -------------------------------------------------------------------------

    def mailboxes(self, organization_id: str) -> Iterator[dict]:
        """Every mailbox item of an organization, page by page."""
        yield from self._query(Key("PK").eq(f"ORG#{organization_id}") & Key("SK").begins_with("MAILBOX#"))

    def put_items(self, items: Iterable[dict]) -> None:
        """Write many items with batched requests (25 per request, retried by boto3)."""
        with self.table.batch_writer() as batch:
            for item in items:
                batch.put_item(Item=to_dynamo(item))

    def update_mailbox(self, organization_id: str, entity_id: str, fields: dict) -> None:
        self._set(mailbox_key(organization_id, entity_id), fields)

    # Runs ------------------------------------------------------------------------------

    def create_run(self, run: dict) -> bool:
        """Record a new run; return False if the run already exists."""
        item = {**run_key(run["organizationId"], run["runId"]), "type": "RUN", **run}
        try:
            self.table.put_item(Item=to_dynamo(item), ConditionExpression=Attr("PK").not_exists())
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def withdraw_run(self, organization_id: str, run_id: str) -> None:
        """Remove a run that was requested but never started, so that it blocks no later start."""
        self.table.delete_item(Key=run_key(organization_id, run_id), ConditionExpression=Attr("status").eq("REQUESTED"))

    def get_run(self, organization_id: str, run_id: str) -> dict | None:
        response = self.table.get_item(Key=run_key(organization_id, run_id), ConsistentRead=True)
        item = response.get("Item")
        return from_dynamo(item) if item else None

    def runs(self, organization_id: str, newest_first: bool = True, limit: int | None = None) -> list[dict]:
        condition = Key("PK").eq(f"ORG#{organization_id}") & Key("SK").begins_with("RUN#")
        return list(self._query(condition, forward=not newest_first, limit=limit))

    def update_run(self, organization_id: str, run_id: str, fields: dict) -> None:
        self._set(run_key(organization_id, run_id), fields)

    def record_pass(self, organization_id: str, run_id: str, increments: dict[str, int], passed_at: str) -> None:
        """Atomically add to the run's counters (a map attribute created with the run) and note when
        the controller last passed: what tells the next night that this run is alive."""
        names = {"#passed": "lastPassAt"}
        values: dict[str, Any] = {":passed": passed_at}
        parts = []
        for index, (counter, amount) in enumerate(sorted(increments.items())):
            names.update({"#counts": "counts", f"#c{index}": counter})
            values[f":v{index}"] = amount
            parts.append(f"#counts.#c{index} :v{index}")
        self.table.update_item(
            Key=run_key(organization_id, run_id),
            UpdateExpression="SET #passed = :passed" + (" ADD " + ", ".join(parts) if parts else ""),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def open_runs(self, organization_id: str) -> list[dict]:
        """The organization's runs still requested, planning or running: read once per start, never in the loop.

        Strongly consistent, so that a run recorded a moment ago by a rival start is seen.
        """
        condition = Key("PK").eq(f"ORG#{organization_id}") & Key("SK").begins_with("RUN#")
        arguments: dict[str, Any] = {
            "KeyConditionExpression": condition,
            "FilterExpression": Attr("status").is_in(list(OPEN_RUN_STATES)),
            "ConsistentRead": True,
        }
        found = []
        while True:
            page = self.table.query(**arguments)
            found.extend(from_dynamo(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return found
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # Tasks -----------------------------------------------------------------------------

    def tasks(self, organization_id: str, run_id: str) -> Iterator[dict]:
        """Every task of a run: used for summaries and views, never inside the controller loop."""
        yield from self._query(Key("PK").eq(f"RUN#{organization_id}#{run_id}"))

    def get_task(self, organization_id: str, run_id: str, entity_id: str) -> dict | None:
        item = self.table.get_item(Key=task_key(organization_id, run_id, entity_id), ConsistentRead=True)
        return from_dynamo(item["Item"]) if "Item" in item else None

    def ready_tasks(self, organization_id: str, run_id: str, limit: int) -> list[dict]:
        """The highest-priority queued tasks."""
        condition = Key("GSI1PK").eq(queue_partition(organization_id, run_id)) & Key("GSI1SK").begins_with("READY#")
        return list(self._query(condition, index="GSI1", limit=limit))

    def due_deferred_tasks(self, organization_id: str, run_id: str, now: datetime, limit: int) -> list[dict]:
        """Deferred tasks whose 24-hour window has opened by ``now``, earliest first."""
        condition = Key("GSI1PK").eq(queue_partition(organization_id, run_id)) & Key("GSI1SK").between(
            "WAIT#", f"WAIT#{iso(now)}~"
        )
        return list(self._query(condition, index="GSI1", limit=limit))

    def next_deferred_task(self, organization_id: str, run_id: str) -> dict | None:
        condition = Key("GSI1PK").eq(queue_partition(organization_id, run_id)) & Key("GSI1SK").begins_with("WAIT#")
        found = list(self._query(condition, index="GSI1", limit=1))
        return found[0] if found else None

    def active_tasks(self, organization_id: str, run_id: str) -> list[dict]:
        """Tasks whose export is starting or running: at most the configured number of slots."""
        condition = Key("GSI1PK").eq(active_partition(organization_id, run_id))
        return list(self._query(condition, index="GSI1"))

    def claim_task(self, task: dict, fields: dict) -> bool:
        """Move a queued or deferred task to STARTING; False if another tick took it first."""
        key = task_key(task["organizationId"], task["runId"], task["entityId"])
        try:
            self._set(key, fields, condition=Attr("status").is_in(["QUEUED", "DEFERRED"]))
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def update_task(self, task: dict, fields: dict, remove: Iterable[str] = ()) -> None:
        self._set(task_key(task["organizationId"], task["runId"], task["entityId"]), fields, remove)

    # Jobs ------------------------------------------------------------------------------

    def put_job(self, job: dict) -> None:
        key = job_key(job["organizationId"], job["entityId"], job["startedAt"], job["jobId"])
        self.table.put_item(Item=to_dynamo({**key, "type": "JOB", **job}))

    def update_job(self, job: dict, fields: dict) -> None:
        self._set(job_key(job["organizationId"], job["entityId"], job["startedAt"], job["jobId"]), fields)

    def jobs_of_mailbox(self, organization_id: str, entity_id: str) -> list[dict]:
        return list(self._query(Key("PK").eq(f"MAILBOX#{organization_id}#{entity_id}"), forward=False))

    # Plumbing --------------------------------------------------------------------------

    def _query(self, condition, index: str | None = None, limit: int | None = None, forward: bool = True):
        arguments: dict[str, Any] = {"KeyConditionExpression": condition, "ScanIndexForward": forward}
        if index:
            arguments["IndexName"] = index
        remaining = limit
        while True:
            if remaining is not None:
                arguments["Limit"] = remaining
            response = self.table.query(**arguments)
            for item in response["Items"]:
                yield from_dynamo(item)
            if remaining is not None:
                remaining -= len(response["Items"])
                if remaining <= 0:
                    return
            if "LastEvaluatedKey" not in response:
                return
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _set(self, key: dict, fields: dict, remove: Iterable[str] = (), condition=None) -> None:
        # Placeholders get prefixes of their own: boto3's condition builder uses #n0 and :v0.
        fields = {name: value for name, value in fields.items() if value is not None}
        names, values, assignments = {}, {}, []
        for index, (name, value) in enumerate(fields.items()):
            names[f"#set{index}"] = name
            values[f":set{index}"] = to_dynamo(value)
            assignments.append(f"#set{index} = :set{index}")
        removals = []
        for index, name in enumerate(remove):
            names[f"#remove{index}"] = name
            removals.append(f"#remove{index}")
        expression = ""
        if assignments:
            expression += "SET " + ", ".join(assignments)
        if removals:
            expression += " REMOVE " + ", ".join(removals)
        arguments: dict[str, Any] = {"Key": key, "UpdateExpression": expression.strip()}
        if names:
            arguments["ExpressionAttributeNames"] = names
        if values:
            arguments["ExpressionAttributeValues"] = values
        if condition is not None:
            arguments["ConditionExpression"] = condition
        self.table.update_item(**arguments)
