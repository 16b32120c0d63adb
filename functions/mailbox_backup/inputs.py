"""Checks on what the state machine hands to a function, with errors that say what to fix."""

import re
from datetime import datetime

from mailbox_backup.errors import InvalidInputError
from mailbox_backup.naming import is_valid_run_id
from mailbox_backup.observability import logger

ORGANIZATION_ID = re.compile(r"^m-[0-9a-f]{32}$")


def organization_id(event: dict) -> str:
    value = event.get("organizationId")
    if not isinstance(value, str) or not ORGANIZATION_ID.match(value):
        raise InvalidInputError(f"organizationId must look like m- followed by 32 lowercase hex digits, got {value!r}.")
    return value


def run_id(event: dict) -> str:
    value = event.get("runId")
    if not isinstance(value, str) or not is_valid_run_id(value):
        raise InvalidInputError(f"runId must look like nightly-YYYYMMDD or manual-YYYYMMDDTHHMMSSZ, got {value!r}.")
    return value


def timestamp(event: dict, field: str) -> datetime:
    value = event.get(field)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"{field} must be an ISO-8601 time such as 2026-12-03T01:00:00Z, got {value!r}."
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInputError(f"{field} must include a time zone (end it with Z for UTC), got {value!r}.")
    return parsed


def run_of(event: dict) -> tuple[str, str]:
    """The organization and run an event is about, checked, and named on every log line from here on."""
    ids = organization_id(event), run_id(event)
    logger.append_keys(organization_id=ids[0], run_id=ids[1])
    return ids
