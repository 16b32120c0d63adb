"""Which mailbox goes first, how long its export is expected to take, and when it is overrunning."""

from datetime import datetime

# Without history, an export is assumed to take this long plus its size over this rate.
# Both are replaced by what the organization's finished exports measure.
DEFAULT_FIXED_SECONDS = 120
DEFAULT_MB_PER_MINUTE = 60.0
_MAX_SECONDS = 10**9
# An expected length is an estimate from size and pace: only a job at three times it, and an
# hour past it, is far enough out to ask an operator to look (WorkMail may be stuck on it).
OVERRUN_FACTOR = 3
OVERRUN_MARGIN_SECONDS = 3600


def expected_seconds(mailbox: dict, mb_per_minute: float = DEFAULT_MB_PER_MINUTE) -> int:
    """Expected export duration: the mailbox's last one if known, else from its size."""
    if mailbox.get("lastDurationSeconds"):
        return int(mailbox["lastDurationSeconds"])
    size_mb = float(mailbox.get("sizeMb") or 0.0)
    return int(DEFAULT_FIXED_SECONDS + size_mb / max(mb_per_minute, 0.001) * 60)


def is_overrunning(started_at: datetime | None, expected: int, now: datetime) -> bool:
    """Whether a running export has gone on far longer than expected: it holds a slot and keeps its run open."""
    if started_at is None or not expected:
        return False
    elapsed = (now - started_at).total_seconds()
    return elapsed >= OVERRUN_FACTOR * expected and elapsed - expected >= OVERRUN_MARGIN_SECONDS


def queue_sort_key(mailbox: dict, expected: int) -> str:
    """Sort key of the ready lane: lower sorts first.

    A mailbox whose last export failed comes first, then never-exported ones, then the
    longest since its last success; among equals the longest export starts first, which
    shortens the night.
    """
    if mailbox.get("lastOutcome") == "FAILED":
        urgency = "0"
    elif not mailbox.get("lastSuccessAt"):
        urgency = "1"
    else:
        urgency = "2"
    last_success = mailbox.get("lastSuccessAt") or "0000"
    longest_first = _MAX_SECONDS - min(expected, _MAX_SECONDS - 1)
    return f"READY#{urgency}#{last_success}#{longest_first:010d}#{mailbox['entityId']}"


def deferred_sort_key(not_before: str, entity_id: str) -> str:
    return f"WAIT#{not_before}#{entity_id}"


def deferred_fields(task: dict, not_before: str, reason: str) -> dict:
    """What puts a task in the deferred lane until WorkMail's 24-hour window opens."""
    key = deferred_sort_key(not_before, task["entityId"])
    return {
        "status": "DEFERRED",
        "notBefore": not_before,
        "reason": reason,
        "GSI1PK": task["queuePartition"],
        "GSI1SK": key,
        "queueSortKey": key,
    }
