"""What the benchmark measures, and the published prices it turns into dollars."""

from dataclasses import asdict, dataclass, field
from datetime import datetime

# Published us-east-1 prices (shared/reference/limits-and-costs.md, sections 2, 3 and 7).
PRICE_PER_TRANSITION = 0.000025
PRICE_PER_LAMBDA_REQUEST = 0.0000002
PRICE_PER_LAMBDA_GB_SECOND_ARM = 0.0000133334
# Assumed per invocation: 256 MB for half a second (the template's memory; a generous duration).
LAMBDA_GB_SECONDS_PER_INVOCATION = 0.25 * 0.5
PRICE_PER_WRITE_UNIT = 0.625 / 1_000_000
PRICE_PER_READ_UNIT = 0.125 / 1_000_000

SLOTS = 10
HISTORY_LIMIT = 25_000
PAYLOAD_LIMIT = 262_144


@dataclass
class Measurement:
    design: str
    mailboxes: int
    source: str  # "interpreter" (the real definition in moto) or "model" (simulated clock, no interpreter)
    makespan_hours: float
    lower_bound_hours: float
    utilization: float
    transitions: int
    lambda_invocations: int
    workmail_calls: int
    dynamodb_writes: int
    dynamodb_reads: int
    peak_payload_bytes: int
    max_history_events: int
    wall_seconds: float = 0.0
    limits_broken: list[str] = field(default_factory=list)

    @property
    def makespan_ratio(self) -> float:
        return self.makespan_hours / self.lower_bound_hours if self.lower_bound_hours else 0.0

    @property
    def cost_dollars(self) -> float:
        lambda_cost = self.lambda_invocations * (
            PRICE_PER_LAMBDA_REQUEST + LAMBDA_GB_SECONDS_PER_INVOCATION * PRICE_PER_LAMBDA_GB_SECOND_ARM
        )
        return (
            self.transitions * PRICE_PER_TRANSITION
            + lambda_cost
            + self.dynamodb_writes * PRICE_PER_WRITE_UNIT
            + self.dynamodb_reads * PRICE_PER_READ_UNIT
        )

    def per_mailbox(self, value: int) -> float:
        return value / self.mailboxes

    def check_limits(self) -> None:
        """Name every Step Functions limit this design would break on AWS."""
        if self.max_history_events > HISTORY_LIMIT:
            self.limits_broken.append(f"history {self.max_history_events:,} > {HISTORY_LIMIT:,} events")
        if self.peak_payload_bytes > PAYLOAD_LIMIT:
            self.limits_broken.append(f"payload {self.peak_payload_bytes:,} > {PAYLOAD_LIMIT:,} bytes")

    def as_json(self) -> dict:
        data = asdict(self)
        data.update(
            makespan_ratio=round(self.makespan_ratio, 4),
            cost_dollars=round(self.cost_dollars, 6),
            transitions_per_mailbox=round(self.per_mailbox(self.transitions), 3),
            lambda_per_mailbox=round(self.per_mailbox(self.lambda_invocations), 3),
            workmail_calls_per_mailbox=round(self.per_mailbox(self.workmail_calls), 3),
        )
        return data


@dataclass(frozen=True)
class Job:
    start: float  # seconds since the run began
    end: float


def lower_bound_seconds(durations: list[float]) -> float:
    """No schedule on ten slots beats the total work over ten, or the longest single export."""
    return max(sum(durations) / SLOTS, max(durations))


def utilization_while_queued(jobs: list[Job]) -> float:
    """Share of slot time in use from the run's start until the last job started (work was queued)."""
    window_end = max(job.start for job in jobs)
    if window_end <= 0:
        return 1.0
    busy = sum(max(0.0, min(job.end, window_end) - max(job.start, 0.0)) for job in jobs)
    return busy / (SLOTS * window_end)


def seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
