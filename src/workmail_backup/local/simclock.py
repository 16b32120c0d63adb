"""Simulated time for the local mode: a night of exports in seconds.

Time moves only when every running execution is waiting in a Wait state (or a retry's
backoff), no handler is running, and nothing has happened for a moment; then it jumps to
the earliest wake-up. Handlers therefore take no simulated time, and the result does not
depend on how fast or loaded the machine is. The quiet moment covers what the count of
executions cannot see: the parallel iterations of a Map state, between two states.
"""

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

# How often a waiting thread rechecks whether the others are all waiting too; real seconds.
_RECHECK_SECONDS = 0.005
# How long nothing must happen before time moves on; real seconds.
_QUIET_SECONDS = 0.02


class SimulatedClock:
    def __init__(self, start: datetime, busy_participants: Callable[[], int]):
        """``busy_participants`` counts the executions that are running right now."""
        self._now = start
        self._participants = busy_participants
        self._wake_times: list[datetime] = []
        self._condition = threading.Condition()
        self._busy = 0
        self._last_activity = time.monotonic()
        self._closed = False

    def now(self) -> datetime:
        with self._condition:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Block the calling execution until simulated time has moved ``seconds`` on."""
        with self._condition:
            wake_at = self._now + timedelta(seconds=seconds)
            self._wake_times.append(wake_at)
            self._last_activity = time.monotonic()
            try:
                while self._now < wake_at and not self._closed:
                    earliest = min(self._wake_times)
                    # A sleeper already due has yet to take the lock and wake: let it go first.
                    # Looping here without waiting would hold the lock and starve it for ever.
                    if earliest > self._now and self._everyone_waits():
                        self._advance_to(earliest)
                    else:
                        self._condition.wait(_RECHECK_SECONDS)
            finally:
                self._wake_times.remove(wake_at)
                self._last_activity = time.monotonic()

    def close(self) -> None:
        """Wake every sleeper now and let later sleeps return at once: the environment is closing,
        and an execution left waiting must end rather than poll the clock for ever."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def busy(self):
        """Context manager marking work in progress (a handler running): time stands still meanwhile."""
        return _Busy(self)

    def _everyone_waits(self) -> bool:
        quiet = time.monotonic() - self._last_activity >= _QUIET_SECONDS
        return quiet and self._busy == 0 and len(self._wake_times) >= self._participants()

    def advance(self, seconds: float) -> None:
        """Move time on by hand (between runs, or in tests)."""
        with self._condition:
            self._advance_to(self._now + timedelta(seconds=seconds))

    def _advance_to(self, moment: datetime) -> None:
        if moment > self._now:
            self._now = moment
        self._condition.notify_all()


class _Busy:
    def __init__(self, clock: SimulatedClock):
        self._clock = clock

    def __enter__(self) -> None:
        with self._clock._condition:
            self._clock._busy += 1

    def __exit__(self, *exc_info) -> None:
        with self._clock._condition:
            self._clock._busy -= 1
            self._clock._last_activity = time.monotonic()
            self._clock._condition.notify_all()
