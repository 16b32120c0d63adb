"""The three orchestrations on a simulated clock, without the interpreter, for large organizations.

moto's DynamoDB and Step Functions take minutes per thousand mailboxes, so 10,000 and 50,000
mailboxes are simulated here: the same job durations as the emulator gives, the same start
order as the ledger's queue, the same wake-up rule as the controller. The per-iteration
counts (state transitions and history events per pass, payload per state) come from the
interpreter runs at 1,000 mailboxes, which the benchmark prints beside the model's own
numbers at that size so that the two can be compared.
"""

import heapq
import math
from dataclasses import dataclass

from benchmarks.measure import SLOTS, Job, Measurement, lower_bound_seconds, utilization_while_queued
from mailbox_backup import priority
from mailbox_backup.controller import LONG_JOB_SECONDS, MIN_MEASURED_MB

POLL_SECONDS = 300  # the baselines' fixed poll interval
SLOTS_FULL_RETRY_SECONDS = 60
FINISH_SLACK = 5
MIN_POLL, MAX_POLL = 60, 900
TICKS_PER_EXECUTION = 1000
ENTITY_ID_JSON_BYTES = 39  # a quoted 36-character user id and a comma


@dataclass(frozen=True)
class Calibration:
    """Per-iteration counts read off interpreter runs."""

    fixed_transitions: int = 9  # dispatch, planning, finishing: the states outside the loop
    transitions_per_pass: int = 3  # Tick, CheckProgress, WaitForJobs
    events_per_pass: int = 11
    fixed_events: int = 30
    state_payload_bytes: int = 1_000
    # The fixed-batch definition carries little but ids and a batch number.
    batch_state_payload_bytes: int = 240
    dynamodb_writes_per_mailbox: float = 6.0
    dynamodb_reads_per_mailbox: float = 6.0
    dynamodb_reads_per_pass: float = 5.0


def mailbox_plan(sizes_mb: list[float], fixed_seconds: float, mb_per_minute: float) -> list[tuple[float, float, float]]:
    """(true duration, expected duration, size) per mailbox, in the ledger's queue order (longest expected first)."""
    plan = [
        (fixed_seconds + size / mb_per_minute * 60, priority.expected_seconds({"sizeMb": size}), size)
        for size in sizes_mb
    ]
    plan.sort(key=lambda item: -item[1])
    return plan


def this_design(plan: list[tuple[float, float, float]], calibration: Calibration) -> Measurement:
    """The controller loop: wake at the earliest expected end, ask only about the jobs that may have ended."""
    queue = list(plan)
    queue.reverse()
    running: list[list[float]] = []  # [true end, expected end, start, size, last check]
    jobs: list[Job] = []
    now, passes, describes = 0.0, 0, 0
    measured_seconds, measured_mb = 0.0, 0.0

    while queue or running:
        passes += 1
        for job in list(running):
            left_at_check = job[1] - job[4]
            recheck_after = max(MAX_POLL, left_at_check / 2) if left_at_check > LONG_JOB_SECONDS else math.inf
            if job[1] <= now + FINISH_SLACK or now - job[4] >= recheck_after:
                describes += 1
                job[4] = now
                if job[0] <= now:
                    running.remove(job)
                    jobs.append(Job(job[2], job[0]))
                    measured_seconds += job[0] - job[2] - priority.DEFAULT_FIXED_SECONDS
                    measured_mb += job[3]
                elif (now - job[2]) / (job[0] - job[2]) >= 0.05:
                    job[1] = job[0]  # linear progress makes the re-estimate exact once reported
        while queue and len(running) < SLOTS:
            duration, expected, size = queue.pop()
            if measured_mb >= MIN_MEASURED_MB:
                # As the controller does: estimates from size use the rate measured so far.
                expected = priority.DEFAULT_FIXED_SECONDS + size * max(measured_seconds, 1) / measured_mb
            running.append([now + duration, now + expected, now, size, now])
        if not running:
            break
        wake = min(job[1] for job in running) + FINISH_SLACK
        now += max(MIN_POLL, min(MAX_POLL, wake - now))

    mailboxes = len(plan)
    executions = math.ceil(passes / TICKS_PER_EXECUTION)
    return _measurement(
        "this design (controller loop)",
        jobs,
        transitions=calibration.fixed_transitions + calibration.transitions_per_pass * passes + 3 * (executions - 1),
        lambda_invocations=passes + 3,
        workmail_calls=mailboxes * 2 + describes + 2,  # start and size per mailbox; organization and job list
        dynamodb=(
            calibration.dynamodb_writes_per_mailbox * mailboxes,
            calibration.dynamodb_reads_per_mailbox * mailboxes + calibration.dynamodb_reads_per_pass * passes,
        ),
        peak_payload=calibration.state_payload_bytes,
        max_history=calibration.fixed_events + calibration.events_per_pass * min(passes, TICKS_PER_EXECUTION),
    )


def fixed_batches(plan: list[tuple[float, float]], calibration: Calibration) -> Measurement:
    """Start ten, poll every five minutes until all ten ended, repeat."""
    jobs, now, polls, describes = [], 0.0, 0, 0
    for first in range(0, len(plan), SLOTS):
        batch = [duration for duration, _, _ in plan[first : first + SLOTS]]
        batch_polls = math.ceil(max(batch) / POLL_SECONDS)
        for poll in range(1, batch_polls + 1):
            describes += sum(1 for duration in batch if duration > (poll - 1) * POLL_SECONDS)
        jobs += [Job(now, now + duration) for duration in batch]
        now += batch_polls * POLL_SECONDS
        polls += batch_polls

    batches = math.ceil(len(plan) / SLOTS)
    transitions = calibration.fixed_transitions + batches + 3 * polls
    return _measurement(
        "fixed batches of 10",
        jobs,
        transitions=transitions,
        lambda_invocations=batches + polls + 2,
        workmail_calls=len(plan) * 2 + describes + 2,
        dynamodb=(
            calibration.dynamodb_writes_per_mailbox * len(plan),
            calibration.dynamodb_reads_per_mailbox * len(plan) + calibration.dynamodb_reads_per_pass * polls,
        ),
        peak_payload=calibration.batch_state_payload_bytes,
        max_history=calibration.fixed_events + 5 * batches + 9 * polls,
    )


def per_mailbox_map(plan: list[tuple[float, float]], calibration: Calibration) -> Measurement:
    """A Map with MaxConcurrency 10, each iteration polling its own job every five minutes."""
    free_at = [0.0] * SLOTS
    jobs, polls = [], 0
    for duration, _, _ in plan:
        start = heapq.heappop(free_at)
        mailbox_polls = math.ceil(duration / POLL_SECONDS)
        polls += mailbox_polls
        jobs.append(Job(start, start + duration))
        heapq.heappush(free_at, start + mailbox_polls * POLL_SECONDS)

    mailboxes = len(plan)
    # Per iteration: StartOne, then (WaitOne, CheckOne, OneDone) per poll, then Exported.
    transitions = calibration.fixed_transitions + 1 + mailboxes * 2 + 3 * polls
    return _measurement(
        "Map, a poll loop per mailbox",
        jobs,
        transitions=transitions,
        lambda_invocations=mailboxes + polls + 3,
        workmail_calls=mailboxes * 2 + polls + 2,
        dynamodb=(
            calibration.dynamodb_writes_per_mailbox * mailboxes,
            calibration.dynamodb_reads_per_mailbox * mailboxes + 2 * polls,
        ),
        # The whole list of mailbox ids is one state's output; every iteration's events land in one history.
        peak_payload=mailboxes * ENTITY_ID_JSON_BYTES + 100,
        max_history=calibration.fixed_events + mailboxes * 11 + 9 * polls,
    )


def _measurement(design, jobs, transitions, lambda_invocations, workmail_calls, dynamodb, peak_payload, max_history):
    durations = [job.end - job.start for job in jobs]
    measurement = Measurement(
        design=design,
        mailboxes=len(jobs),
        source="model",
        makespan_hours=max(job.end for job in jobs) / 3600,
        lower_bound_hours=lower_bound_seconds(durations) / 3600,
        utilization=utilization_while_queued(jobs),
        transitions=int(transitions),
        lambda_invocations=int(lambda_invocations),
        workmail_calls=int(workmail_calls),
        dynamodb_writes=int(dynamodb[0]),
        dynamodb_reads=int(dynamodb[1]),
        peak_payload_bytes=int(peak_payload),
        max_history_events=int(max_history),
    )
    measurement.check_limits()
    return measurement
