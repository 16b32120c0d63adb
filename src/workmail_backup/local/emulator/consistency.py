"""Checks across fields that a per-field schema cannot make.

Each problem names the field path it is about, like the schema errors do, so the author
of a scenario can go straight to the line that needs changing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scenario import JobSpec, OrganizationSpec, ResourceSpec, Scenario, UserSpec

    Mailbox = UserSpec | ResourceSpec


def scenario_problems(scenario: Scenario) -> list[str]:
    """Every cross-field problem in ``scenario``, one readable line each."""
    problems = list(_duplicate_organizations(scenario))
    for index, organization in enumerate(scenario.organizations):
        where = f"organizations[{index}]"
        mailboxes = list(_mailboxes_with_paths(organization, where))
        problems += _duplicate_mailboxes(mailboxes)
        problems += _job_problems(scenario, organization, where)
    return problems


def find_mailbox(organization: OrganizationSpec, reference: str) -> Mailbox | None:
    """The user or resource that ``reference`` names by id, email or name (case-insensitive)."""
    wanted = reference.lower()
    for mailbox in [*organization.all_users(), *organization.all_resources()]:
        if wanted in (str(mailbox.id).lower(), mailbox.email.lower(), mailbox.name.lower()):
            return mailbox
    return None


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


def _job_problems(scenario: Scenario, organization: OrganizationSpec, where: str) -> Iterator[str]:
    for index, job in enumerate(organization.jobs):
        path = f"{where}.jobs[{index}]"
        mailbox = find_mailbox(organization, job.entity)
        if mailbox is None:
            yield (
                f"{path}.entity: no user or resource in {organization.alias} "
                f"has the id, email or name {job.entity!r}"
            )
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
