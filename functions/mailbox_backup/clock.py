"""The one place the handlers read the time from.

Lambda reads the system clock. The local mode compresses a night into seconds, so it
swaps the source for a simulated clock shared with the WorkMail emulator.
"""

from collections.abc import Callable
from datetime import UTC, datetime

_source: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def utc_now() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return _source()


def use_source(source: Callable[[], datetime]) -> None:
    """Read the time from ``source`` instead of the system clock."""
    global _source
    _source = source


def use_system_clock() -> None:
    """Go back to the system clock."""
    use_source(lambda: datetime.now(UTC))
