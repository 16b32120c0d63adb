"""The WorkMail calls the workflow makes, with the service's limits spelled out."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from botocore.exceptions import ClientError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from mailbox_backup import clients
from mailbox_backup.observability import logger

# Export starts go through a client that does not retry (see clients.NOT_RETRYING); these
# transient errors are retried here instead, with backoff and jitter.
TRANSIENT_ERRORS = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
    }
)

PAGE_SIZE = 100
# WorkMail allows one export per mailbox per 24 hours, counted from the previous start.
EXPORT_INTERVAL = timedelta(hours=24)
# Clocks differ between us and WorkMail; waiting a little longer than the interval avoids a refused start.
CLOCK_MARGIN = timedelta(minutes=2)

# Roles whose users have a mailbox this workflow exports. System and remote users have none.
EXPORTABLE_USER_ROLES = ("USER",)


@dataclass(frozen=True)
class Entity:
    """A user or resource of the organization, as listed."""

    entity_id: str
    name: str
    email: str
    kind: str  # USER or RESOURCE
    state: str
    role: str

    @classmethod
    def from_mailbox_item(cls, mailbox: dict) -> "Entity":
        """The entity a ledger mailbox item describes."""
        kind = mailbox.get("kind", "USER")
        return cls(
            entity_id=mailbox["entityId"],
            name=mailbox.get("name", ""),
            email=mailbox.get("email", ""),
            kind=kind,
            state=mailbox.get("state", ""),
            role=mailbox.get("role", "USER" if kind == "USER" else ""),
        )

    @property
    def label(self) -> str:
        return self.email or self.name or self.entity_id


def client():
    return clients.workmail()


def next_start_after(previous_start: datetime) -> datetime:
    """When this backup starts a mailbox's export again: the 24-hour interval and the clock margin."""
    return previous_start + EXPORT_INTERVAL + CLOCK_MARGIN


def is_transient(error: BaseException) -> bool:
    """Throttling and server-side errors: the same request may well succeed a little later."""
    if not isinstance(error, ClientError):
        return False
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(error) in TRANSIENT_ERRORS or status >= 500


@retry(
    retry=retry_if_exception(is_transient),
    wait=wait_random_exponential(multiplier=0.5, max=20),
    stop=stop_after_attempt(8),
    reraise=True,
)
def start_export(**request) -> str:
    """Start a mailbox export and return its job id; LimitExceededException is raised at once."""
    return clients.workmail_for_starts().start_mailbox_export_job(**request)["JobId"]


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def error_message(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Message", str(error))


def list_entities(workmail, organization_id: str) -> Iterator[Entity]:
    """Every user and resource of the organization, across all pages."""
    for user in _listed(workmail, "list_users", "Users", organization_id):
        # ListUsers also returns resources; ListResources lists them below, with their type.
        if user.get("UserRole") != "RESOURCE":
            yield _entity(user, kind="USER", role=user.get("UserRole", ""))
    for resource in _listed(workmail, "list_resources", "Resources", organization_id):
        yield _entity(resource, kind="RESOURCE", role=resource.get("Type", ""))


def _listed(workmail, operation: str, key: str, organization_id: str) -> Iterator[dict]:
    pages = workmail.get_paginator(operation).paginate(
        OrganizationId=organization_id, PaginationConfig={"PageSize": PAGE_SIZE}
    )
    for page in pages:
        yield from page.get(key, [])


def _entity(listed: dict, kind: str, role: str) -> Entity:
    return Entity(
        entity_id=listed["Id"],
        name=listed.get("Name", ""),
        email=listed.get("Email", ""),
        kind=kind,
        state=listed.get("State", ""),
        role=role,
    )


def skip_reason(entity: Entity) -> str | None:
    """Why an entity is not exported, or None if it should be."""
    if entity.state != "ENABLED":
        return f"{entity.kind.lower()} is {entity.state.lower() or 'in an unknown state'}"
    if entity.kind == "USER" and entity.role not in EXPORTABLE_USER_ROLES:
        return f"{entity.role.lower().replace('_', ' ')} has no exportable mailbox"
    return None


def list_export_jobs(workmail, organization_id: str) -> Iterator[dict]:
    """The organization's export jobs of the last 7 days (the only ones the API returns).

    botocore has no paginator for this operation, so the pages are followed by hand.
    """
    arguments = {"OrganizationId": organization_id, "MaxResults": PAGE_SIZE}
    while True:
        page = workmail.list_mailbox_export_jobs(**arguments)
        yield from page.get("Jobs", [])
        if not page.get("NextToken"):
            return
        arguments["NextToken"] = page["NextToken"]


def mailbox_size_mb(workmail, organization_id: str, user_id: str) -> float | None:
    """The user's mailbox size in MB, or None when WorkMail cannot tell (e.g. a resource).

    The size only orders the queue, so an error that outlasts the client's retries costs this
    mailbox its place in the order, never the run.
    """
    try:
        details = workmail.get_mailbox_details(OrganizationId=organization_id, UserId=user_id)
    except ClientError as error:
        if error_code(error) not in ("EntityNotFoundException", "EntityStateException"):
            logger.warning(
                "Mailbox size unknown; ordered as if small", extra={"entity_id": user_id, "error": str(error)}
            )
        return None
    return float(details.get("MailboxSize", 0.0))
