"""Checks across fields that a per-field schema cannot make.

Each problem names the field path it is about, like the schema errors do, so the author
of a scenario can go straight to the line that needs changing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scenario import Faults, JobSpec, OrganizationSpec, ResourceSpec, Scenario, UserSpec

    Mailbox = UserSpec | ResourceSpec


def scenario_problems(scenario: Scenario) -> list[str]:
    """Every cross-field problem in ``scenario``, one readable line each."""
    problems = list(_duplicate_organizations(scenario))
    for index, organization in enumerate(scenario.organizations):
        where = f"organizations[{index}]"
        mailboxes = list(_mailboxes_with_paths(organization, where))
        index = mailbox_index([mailbox for _, mailbox in mailboxes])
        problems += _duplicate_mailboxes(mailboxes)
        problems += _job_problems(scenario, organization, index, where)
        problems += _fault_problems(scenario, organization.faults, index, f"{where}.faults")
    return problems


def mailbox_index(mailboxes: list[Mailbox]) -> dict[str, Mailbox]:
    """Look-up of mailboxes by id, email and name, lower-cased; the first one listed wins."""
    index: dict[str, Mailbox] = {}
    for mailbox in mailboxes:
        for key in (str(mailbox.id), mailbox.email, mailbox.name):
            index.setdefault(key.lower(), mailbox)
    return index


def _unknown_entity(path: str, reference: str) -> str:
    return f"{path}.entity: no user or resource has the id, email or name {reference!r}"


def _duplicate_organizations(scenario: Scenario) -> Iterator[str]:
    seen: dict[str, int] = {}
    for index, organization in enumerate(scenario.organizations):
        if organization.id in seen:
            first = seen[organization.id]
            yield f"organizations[{index}].id: {organization.id} is already used by organizations[{first}]"
        seen.setdefault(organization.id, index)


def _mailboxes_with_paths(organization: OrganizationSpec, where: str) -> Iterator[tuple[str, Mailbox]]:
    listed = len(organization.users)
    for index, user in enumerate(organization.all_users()):
        yield (f"{where}.users[{index}]" if index < listed else f"{where}.generate_users"), user
    for index, resource in enumerate(organization.all_resources()):
        yield f"{where}.resources[{index}]", resource


def _duplicate_mailboxes(mailboxes: list[tuple[str, Mailbox]]) -> Iterator[str]:
    for key in ("id", "name", "email"):
        seen: dict[str, str] = {}
        for path, mailbox in mailboxes:
            value = str(getattr(mailbox, key)).lower()
            if value in seen:
                yield f"{path}.{key}: {getattr(mailbox, key)!r} is already used by {seen[value]}"
            seen.setdefault(value, path)


def _job_problems(
    scenario: Scenario, organization: OrganizationSpec, index: dict[str, Mailbox], where: str
) -> Iterator[str]:
    for position, job in enumerate(organization.jobs):
        path = f"{where}.jobs[{position}]"
        mailbox = index.get(job.entity.lower())
        if mailbox is None:
            yield _unknown_entity(path, job.entity)
            continue
        yield from _job_timing_problems(scenario, job, mailbox, path)


def _job_timing_problems(scenario: Scenario, job: JobSpec, mailbox: Mailbox, path: str) -> Iterator[str]:
    from .durations import parse_duration

    started = scenario.time(job.started)
    duration = parse_duration(job.duration) if job.duration is not None else scenario.export_duration(mailbox)
    ends = started + duration

    if job.state == "RUNNING" and not started <= scenario.start < ends:
        yield (
            f"{path}.state: RUNNING means running at start ({scenario.start.isoformat()}), "
            f"but the job runs from {started.isoformat()} to {ends.isoformat()}"
        )
    if job.error_info is not None and job.state != "FAILED":
        state = job.state or "not set"
        yield f"{path}.error_info: only a job with state FAILED has error_info (state is {state})"


def _fault_problems(scenario: Scenario, faults: Faults, index: dict[str, Mailbox], where: str) -> Iterator[str]:
    from .faults import ANY_OPERATION
    from .validation import workmail_model

    operations = set(workmail_model().operation_names) | {ANY_OPERATION}
    for position, error in enumerate(faults.errors):
        path = f"{where}.errors[{position}]"
        if error.operation not in operations:
            yield f"{path}.operation: WorkMail has no operation {error.operation!r} (use '*' for any)"
        if error.entity is not None and error.entity.lower() not in index:
            yield _unknown_entity(path, error.entity)
        if (
            error.start is not None
            and error.until is not None
            and scenario.time(error.start) >= scenario.time(error.until)
        ):
            yield f"{path}.until: must be later than 'from'"

    for kind, entries in (("job_outcomes", faults.job_outcomes), ("entity_changes", faults.entity_changes)):
        for position, entry in enumerate(entries):
            if entry.entity.lower() not in index:
                yield _unknown_entity(f"{where}.{kind}[{position}]", entry.entity)

    for position, outcome in enumerate(faults.job_outcomes):
        if outcome.error_info is not None and outcome.state != "FAILED":
            yield f"{where}.job_outcomes[{position}].error_info: only a FAILED outcome has error_info"

    yield from _changes_after_deletion(scenario, faults, index, where)


def _changes_after_deletion(scenario: Scenario, faults: Faults, index: dict[str, Mailbox], where: str) -> Iterator[str]:
    """WorkMail changes a deleted user or resource no more: nothing may follow its deletion."""
    from .durations import resolve_time

    deleted_by: dict[int, int] = {}
    changes = [(position, change) for position, change in enumerate(faults.entity_changes)]
    for position, change in sorted(changes, key=lambda item: resolve_time(item[1].at, scenario.start)):
        mailbox = index.get(change.entity.lower())
        if mailbox is None:
            continue
        if id(mailbox) in deleted_by:
            yield (
                f"{where}.entity_changes[{position}]: {change.entity} is already deleted by "
                f"entity_changes[{deleted_by[id(mailbox)]}]; WorkMail changes a deleted entity no more"
            )
        elif change.state == "DELETED":
            deleted_by[id(mailbox)] = position
