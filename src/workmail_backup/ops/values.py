"""Parsing of the durations and dates people type, and the time arithmetic the views share."""

import re
from datetime import UTC, date, datetime, time, timedelta

from mailbox_backup.ledger import parse_iso
from workmail_backup.ops.errors import InvalidRequestError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Beyond this an age means nothing here, and date arithmetic would overflow.
_LONGEST = timedelta(days=36_525)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")
# WorkMail began in 2015; a date outside these years is a typing slip, and near year 1 the
# date arithmetic of the report would overflow.
_EARLIEST_YEAR, _LATEST_YEAR = 2000, 2099


def parse_duration(text: str, option: str = "--overdue", examples: str = "36h or 2d") -> timedelta:
    """Read ``2d``, ``36h``, ``90m``, ``1w`` or a sum such as ``1d12h``."""
    cleaned = text.strip().lower()
    parts = _DURATION_PART.findall(cleaned)
    if not parts or "".join(number + unit for number, unit in parts) != cleaned:
        raise InvalidRequestError(
            f"{option} takes a number and a unit (s, m, h, d or w), such as {examples}; got {text!r}."
        )
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds > _LONGEST.total_seconds():
        raise InvalidRequestError(f"{option} is longer than 100 years; got {text!r}.")
    return timedelta(seconds=seconds)


def parse_day(text: str, option: str, end_of_day: bool = False) -> datetime:
    """Read a calendar day (``2027-03-31``) or a time (``2027-03-31T18:00Z``), as a UTC moment.

    Only these two forms: Python also reads ``20270331`` and ``2027-W13-3``, which are too easy
    to type by mistake and would mean the start of a day where ``2027-03-31`` means its end.
    """
    cleaned = text.strip()
    if not (_DAY.fullmatch(cleaned) or _MOMENT.fullmatch(cleaned)):
        raise InvalidRequestError(
            f"{option} takes a date such as 2027-03-31 or a time with its zone such as 2027-03-31T18:00Z "
            f"or 2027-03-31T18:00-05:00; got {text!r}."
        )
    try:
        if _DAY.fullmatch(cleaned):
            day = date.fromisoformat(cleaned)
            moment = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC).replace(microsecond=0)
        else:
            moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(f"{option}: {text!r} is no {_what_is_wrong(cleaned)}.") from None
    # The years are checked in UTC: 2099-12-31T23:00-05:00 is already in 2100.
    moment = moment.astimezone(UTC) if 1 < moment.year < 9999 else moment
    if not _EARLIEST_YEAR <= moment.year <= _LATEST_YEAR:
        raise InvalidRequestError(f"{option} must fall between {_EARLIEST_YEAR} and {_LATEST_YEAR}; got {text!r}.")
    return moment


def seconds_between(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    return max(int((parse_iso(end) - parse_iso(start)).total_seconds()), 0)


def age_seconds(moment: str | None, now: datetime) -> int | None:
    return None if not moment else max(int((now - parse_iso(moment)).total_seconds()), 0)


def human_duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 05m``, ``12m``: two units at most, which is what a person reads."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"


def human_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "-"
    size = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def s3_uri(bucket: str | None, key: str | None, workmail_path: str | None = None) -> str | None:
    """``s3://bucket/key`` for a verified object, else WorkMail's own S3Path (which starts with the bucket)."""
    if bucket and key:
        return f"s3://{bucket}/{key}"
    return f"s3://{workmail_path}" if workmail_path else None


def _what_is_wrong(cleaned: str) -> str:
    """Which part of a well-shaped but impossible date or time to correct: the day, or the time."""
    try:
        date.fromisoformat(cleaned[:10])
    except ValueError:
        return "date on the calendar"
    return "time of day (hours 00-23, minutes 00-59, a zone within ±23:59)"
