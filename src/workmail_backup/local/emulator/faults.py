"""Injected faults: the ways a real night goes wrong, on demand.

A scenario's ``faults`` make chosen requests fail (throttling, internal errors, a limit,
a mailbox that vanished), make chosen mailboxes' exports end FAILED or CANCELLED or take
longer, and change mailboxes' states during the night (the last part is applied when the
organizations are built, see ``organization.build_organizations``).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .durations import parse_duration
from .errors import ServiceError
from .organization import Organization
from .scenario import ErrorFault, JobOutcomeFault, Scenario

ANY_OPERATION = "*"

_DEFAULT_MESSAGES = {
    "ThrottlingException": "Rate exceeded.",
    "TooManyRequestsException": "Too many requests.",
    "InternalServerError": "An internal error occurred. Try again later.",
    "ServiceUnavailable": "The service is unavailable. Try again later.",
    "LimitExceededException": "The request exceeds the limit of the resource.",
    "EntityNotFoundException": "The identifier supplied for the user, group, or resource does not exist.",
    "EntityStateException": "The user, group, or resource isn't in the expected state.",
    "OrganizationStateException": "The organization must have a valid state to perform this operation.",
    "OrganizationNotFoundException": "The organization does not exist.",
    "InvalidParameterException": "One or more of the input parameters don't match the restrictions.",
}


@dataclass(frozen=True)
class JobOutcome:
    """How an export of a mailbox ends, when a fault decides it instead of the destination checks."""

    state: str
    error_info: str | None
    duration: timedelta | None


@dataclass
class _ErrorRule:
    operation: str
    code: str
    message: str
    remaining: int | None
    entity_id: str | None
    start: datetime | None
    until: datetime | None

    def applies(self, operation: str, entity_id: str | None, now: datetime) -> bool:
        return (
            self.remaining != 0
            and self.operation in (ANY_OPERATION, operation)
            and (self.entity_id is None or self.entity_id == entity_id)
            and (self.start is None or now >= self.start)
            and (self.until is None or now < self.until)
        )


@dataclass
class _OutcomeRule:
    entity_id: str
    outcome: JobOutcome
    remaining: int | None


class FaultPlan:
    """The faults of every organization, with how many times each may still fire."""

    def __init__(self, scenario: Scenario, organizations: dict[str, Organization]):
        self._errors: dict[str, list[_ErrorRule]] = {}
        self._outcomes: dict[str, list[_OutcomeRule]] = {}
        for spec in scenario.organizations:
            organization = organizations[spec.id]
            self._errors[spec.id] = [_error_rule(scenario, organization, f) for f in spec.faults.errors]
            self._outcomes[spec.id] = [_outcome_rule(organization, f) for f in spec.faults.job_outcomes]

    def check_request(
        self, operation: str, organization: Organization | None, params: dict[str, Any], now: datetime
    ) -> None:
        """Raise the injected error for this request, if a fault matches it."""
        if organization is None:
            return

        entity_id = _request_entity(organization, params, now)
        for rule in self._errors.get(organization.organization_id, []):
            if rule.applies(operation, entity_id, now):
                if rule.remaining is not None:
                    rule.remaining -= 1
                raise ServiceError(rule.code, rule.message)

    def job_outcome(self, organization_id: str, entity_id: str) -> JobOutcome | None:
        """The forced outcome of a job that starts now for this mailbox, if a fault sets one."""
        for rule in self._outcomes.get(organization_id, []):
            if rule.entity_id == entity_id and rule.remaining != 0:
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule.outcome
        return None


def _mailbox_id(organization: Organization, reference: str) -> str:
    mailbox = organization.find(reference)
    assert mailbox is not None, "load_scenario checks that every fault names a mailbox"
    return mailbox.entity_id


def _error_rule(scenario: Scenario, organization: Organization, fault: ErrorFault) -> _ErrorRule:
    return _ErrorRule(
        operation=fault.operation,
        code=fault.error,
        message=fault.message or _DEFAULT_MESSAGES[fault.error],
        remaining=fault.times,
        entity_id=_mailbox_id(organization, fault.entity) if fault.entity else None,
        start=scenario.time(fault.start) if fault.start is not None else None,
        until=scenario.time(fault.until) if fault.until is not None else None,
    )


def _outcome_rule(organization: Organization, fault: JobOutcomeFault) -> _OutcomeRule:
    error_info = fault.error_info or ("Mailbox export failed." if fault.state == "FAILED" else None)
    duration = parse_duration(fault.duration) if fault.duration is not None else None
    return _OutcomeRule(
        entity_id=_mailbox_id(organization, fault.entity),
        outcome=JobOutcome(state=fault.state, error_info=error_info, duration=duration),
        remaining=fault.times,
    )


def _request_entity(organization: Organization, params: dict[str, Any], now: datetime) -> str | None:
    """The mailbox a request is about: its EntityId or UserId, or the mailbox of its JobId."""
    reference = params.get("EntityId") or params.get("UserId")
    if isinstance(reference, str):
        mailbox = organization.find(reference)
        return mailbox.entity_id if mailbox else None

    job_id = params.get("JobId")
    job = organization.job(job_id, now) if isinstance(job_id, str) else None
    return job.entity_id if job else None
