"""The local mode's simulated clock: time jumps only when every execution waits."""

import threading
from datetime import UTC, datetime, timedelta

from workmail_backup.local.simclock import SimulatedClock

START = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)


def _sleep_in_threads(durations: list[float]) -> dict[float, datetime]:
    """Each duration slept by an execution of its own, which ends when it wakes."""
    woke_at: dict[float, datetime] = {}
    threads: list[threading.Thread] = []
    clock = SimulatedClock(START, busy_participants=lambda: sum(thread.is_alive() for thread in threads))

    def sleeper(seconds: float) -> None:
        clock.sleep(seconds)
        woke_at[seconds] = clock.now()

    threads.extend(threading.Thread(target=sleeper, args=(seconds,), daemon=True) for seconds in durations)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads), "a sleeper never woke: the clock is stuck"
    return woke_at


def test_two_waiting_executions_each_wake_at_their_own_time_whichever_moves_the_clock():
    # Repeated: which sleeper notices first that everyone waits is up to the scheduler.
    for _ in range(30):
        woke_at = _sleep_in_threads([600, 3600])

        assert woke_at == {600: START + timedelta(seconds=600), 3600: START + timedelta(seconds=3600)}


def test_time_stands_still_while_an_execution_is_running():
    running = {"count": 2}
    clock = SimulatedClock(START, busy_participants=lambda: running["count"])
    sleeper = threading.Thread(target=clock.sleep, args=(60,), daemon=True)

    sleeper.start()
    sleeper.join(timeout=0.5)
    assert sleeper.is_alive() and clock.now() == START

    running["count"] = 1
    sleeper.join(timeout=10)
    assert not sleeper.is_alive() and clock.now() == START + timedelta(seconds=60)


def test_a_handler_at_work_holds_time_still():
    clock = SimulatedClock(START, busy_participants=lambda: 1)
    sleeper = threading.Thread(target=clock.sleep, args=(60,), daemon=True)

    with clock.busy():
        sleeper.start()
        sleeper.join(timeout=0.5)
        assert sleeper.is_alive() and clock.now() == START

    sleeper.join(timeout=10)
    assert clock.now() == START + timedelta(seconds=60)
