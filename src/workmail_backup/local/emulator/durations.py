"""Durations and instants as scenario files write them.

A scenario describes a night relative to its ``start``: "-2h" is two hours before the run
begins, "+15m" a quarter of an hour after it. Absolute ISO-8601 UTC instants are accepted
wherever a relative time is.
"""

import re
from datetime import UTC, datetime, timedelta

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A night's story needs no more, and far larger values overflow the date arithmetic.
LONGEST = timedelta(days=366)
_DURATION = re.compile(r"^\s*([+-]?)\s*((?:\d+(?:\.\d+)?\s*[smhdw]\s*)+)$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(value: str | int | float) -> timedelta:
    """Turn "90s", "30m", "1h30m", "-2h", "+1d" (or a number of seconds) into a timedelta.

    Raises ValueError with a readable message for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '30m', '1h30m' or '-2h', got {value!r}")

    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as '30m', '1h30m' or '-2h', got {value!r}")
        sign, body = match.groups()
        seconds = sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in _PART.findall(body))
        seconds = -seconds if sign == "-" else seconds

    if abs(seconds) > LONGEST.total_seconds():
        raise ValueError(f"a scenario spans at most a year either side of its start, got {value!r}")
    return timedelta(seconds=seconds)


def parse_instant(value: str | datetime) -> datetime:
    """Parse an ISO-8601 instant that names its time zone, and return it in UTC.

    A naive time is refused: a scenario that silently meant local time would shift a night.
    """
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO-8601 time such as '2026-12-03T01:00:00Z', got {value!r}") from None

    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time {value!s} has no time zone; add 'Z' for UTC")
    return moment.astimezone(UTC)


def is_relative(value: str | int | float) -> bool:
    """Tell whether ``value`` is written relative to the scenario start rather than as an instant."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    return bool(_DURATION.match(str(value)))


def resolve_time(value: str | int | float | datetime, start: datetime) -> datetime:
    """Turn a relative ("-2h", "+15m", "90s") or absolute time into a UTC instant."""
    if not isinstance(value, datetime) and is_relative(value):
        return start + parse_duration(value)
    return parse_instant(value)


def check_time(value: str | int | float | datetime) -> str | int | float | datetime:
    """Validate a relative or absolute time without resolving it; return it unchanged."""
    if not isinstance(value, datetime) and is_relative(value):
        parse_duration(value)
        return value

    try:
        parse_instant(value)
    except ValueError as error:
        if "time zone" in str(error):
            raise
        raise ValueError(
            f"expected a time relative to start ('-2h', '+15m', '90s') or ISO-8601 UTC, got {value!r}"
        ) from None
    return value
