"""Names that WorkMail, S3 and Step Functions accept, derived deterministically.

Deterministic names are what make repeats harmless: the same organization, mailbox and
run always give the same client token, S3 prefix and execution name.
"""

import hashlib
import re
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

# StartMailboxExportJob's S3Prefix pattern, minus "/" which separates our own segments.
_UNSAFE_PREFIX_CHARACTERS = re.compile(r"[^A-Za-z0-9!_.*'()-]+")
_MAX_READABLE_SEGMENT = 48
_RUN_ID_PATTERN = re.compile(r"^[a-z]+-[0-9]{8}(T[0-9]{6}Z)?$")


def nightly_run_id(scheduled_time: datetime, timezone_name: str) -> str:
    """Name a scheduled run after the calendar date it belongs to in the schedule's time zone."""
    local_date = scheduled_time.astimezone(ZoneInfo(timezone_name)).date()
    return f"nightly-{local_date:%Y%m%d}"


def on_demand_run_id(requested_at: datetime) -> str:
    """Name an on-demand run after the second it was requested, in UTC."""
    return f"manual-{requested_at:%Y%m%dT%H%M%SZ}"


def is_valid_run_id(run_id: str) -> bool:
    return bool(_RUN_ID_PATTERN.match(run_id))


def execution_name(organization_id: str, run_id: str, continuation: int = 0) -> str:
    """Step Functions execution name: unique per run, so a repeated start is refused."""
    base = f"{organization_id}-{run_id}"
    return base if continuation == 0 else f"{base}-part{continuation + 1}"


def client_token(organization_id: str, entity_id: str, run_id: str) -> str:
    """Idempotency token for one mailbox's export in one run.

    A hash keeps it within the API's 128 printable characters whatever the entity id's length.
    """
    material = f"{organization_id}\n{entity_id}\n{run_id}".encode()
    return hashlib.sha256(material).hexdigest()


def export_prefix(base_prefix: str, organization_id: str, run_id: str, entity_id: str, label: str) -> str:
    """S3 prefix for one mailbox's export in one run.

    The readable part comes from the mailbox's email or name; the hash of the entity id keeps
    two mailboxes whose labels read the same apart.
    """
    readable = _readable_segment(label) or "mailbox"
    entity_hash = hashlib.sha256(entity_id.encode()).hexdigest()[:12]
    segments = [base_prefix.strip("/"), organization_id, run_id, f"{readable}-{entity_hash}"]
    return "/".join(segment for segment in segments if segment)


def _readable_segment(label: str) -> str:
    # Fold accents to ASCII ("José" -> "Jose") before dropping what the pattern refuses.
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    ascii_label = ascii_label.replace("@", "-at-").lower()
    cleaned = _UNSAFE_PREFIX_CHARACTERS.sub("-", ascii_label).strip("-.")
    return cleaned[:_MAX_READABLE_SEGMENT].rstrip("-.")
