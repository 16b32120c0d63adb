"""The live state of emulated organizations: mailboxes and export jobs over simulated time.

Nothing here reads a clock. Every question takes ``now``, so a job's state is a function
of its interval and the time asked about, and the same history always gives the same
answers.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .durations import parse_duration
from .population import job_id
from .scenario import JobSpec, OrganizationSpec, ResourceSpec, Scenario, ScenarioError, UserSpec

# WorkMail's two export limits: jobs running at once per organization, and time between two
# exports of one mailbox (counted from the previous job's start).
MAX_RUNNING_JOBS = 10
EXPORT_INTERVAL = timedelta(hours=24)

EXPORT_SERVICE = "export.workmail.amazonaws.com"
LIST_WINDOW = timedelta(days=7)
# Mailboxes that existed long before any scenario begins; only reported as EnabledDate.
_ENABLED_LONG_AGO = timedelta(days=400)


@dataclass
class Mailbox:
    """A user or resource as the emulator keeps it."""

    entity_id: str
    name: str
    email: str
    role: str  # USER, SYSTEM_USER, REMOTE_USER, or RESOURCE
    initial_state: str
    mailbox_mb: float
    quota_mb: int
    export_duration: timedelta
    enabled_date: datetime
    display_name: str | None = None
    resource_type: str | None = None
    description: str | None = None
    disabled_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def is_resource(self) -> bool:
        """True for rooms and equipment."""
        return self.role == "RESOURCE"

    def state_at(self, now: datetime) -> str:
        """ENABLED, DISABLED or DELETED at ``now``, following scheduled changes."""
        if self.deleted_at is not None and now >= self.deleted_at:
            return "DELETED"
        if self.disabled_at is not None and now >= self.disabled_at:
            return "DISABLED"
        return self.initial_state

    def disabled_date(self, now: datetime) -> datetime | None:
        """When the mailbox stopped being enabled, if it has."""
        if self.state_at(now) == "ENABLED":
            return None
        changes = [moment for moment in (self.disabled_at, self.deleted_at) if moment and moment <= now]
        return min(changes) if changes else self.enabled_date + timedelta(days=30)


@dataclass
class ExportJob:
    """One mailbox export job. ``state`` is the state at the moment the job was read."""

    job_id: str
    organization_id: str
    entity_id: str
    client_token: str | None
    started_by: str
    start: datetime
    end: datetime
    s3_bucket: str
    s3_prefix: str
    kms_key_arn: str
    role_arn: str
    description: str | None = None
    outcome: str = "COMPLETED"
    error_info: str | None = None
    s3_path: str | None = None
    state: str = "RUNNING"
    settled: bool = False
    from_scenario: bool = False

    def is_running_at(self, now: datetime) -> bool:
        """True while the job occupies one of the organization's slots."""
        return self.start <= now < self.end

    def state_at(self, now: datetime) -> str:
        """RUNNING until ``end``, then its outcome."""
        return "RUNNING" if now < self.end else self.outcome

    def progress_at(self, now: datetime) -> int:
        """EstimatedProgress: elapsed share of the duration, 100 only once COMPLETED."""
        if self.state_at(now) == "COMPLETED":
            return 100
        total = (self.end - self.start).total_seconds()
        elapsed = (min(now, self.end) - self.start).total_seconds()
        share = elapsed / total if total > 0 else 1.0
        return max(0, min(99, int(share * 100)))

    def snapshot(self, now: datetime) -> "ExportJob":
        """A copy whose ``state`` is the state at ``now`` (and ``error_info`` only once it has FAILED)."""
        state = self.state_at(now)
        return replace(self, state=state, error_info=self.error_info if state == "FAILED" else None)


@dataclass
class Organization:
    """An organization with its mailboxes and every export job ever started in it."""

    organization_id: str
    alias: str
    state: str
    mail_domain: str
    arn: str
    created: datetime
    users: list[Mailbox]
    resources: list[Mailbox]
    list_users_includes_resources: bool
    jobs: list[ExportJob] = field(default_factory=list)
    _jobs_by_id: dict[str, ExportJob] = field(default_factory=dict)
    _jobs_by_token: dict[str, ExportJob] = field(default_factory=dict)
    # Jobs someone else will try to start later in the night; WorkMail's limits decide at their start.
    _pending: list[ExportJob] = field(default_factory=list)
    refused_jobs: list[ExportJob] = field(default_factory=list)
    _lookup: dict[str, Mailbox] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for mailbox in [*self.users, *self.resources]:
            for key in (mailbox.entity_id, mailbox.email, mailbox.name):
                self._lookup.setdefault(key.lower(), mailbox)

    def find(self, reference: str) -> Mailbox | None:
        """The user or resource with this id, email or name (case-insensitive)."""
        return self._lookup.get(reference.lower())

    def add_job(self, job: ExportJob) -> None:
        """Record a job; jobs stay ordered by start time."""
        self.jobs.append(job)
        self.jobs.sort(key=lambda item: (item.start, item.job_id))
        self._jobs_by_id[job.job_id] = job
        if job.client_token is not None:
            self._jobs_by_token[job.client_token] = job

    def add_later_job(self, job: ExportJob) -> None:
        """A job someone else tries to start at ``job.start``: it runs only if the limits allow it then."""
        self._pending.append(job)
        self._pending.sort(key=lambda item: (item.start, item.job_id))

    def admit(self, now: datetime) -> None:
        """Decide, in start order, on the later jobs whose start has come.

        Each is judged as WorkMail would have judged its start: refused when ten jobs were
        running then, or when the mailbox had an export started in the 24 hours before.
        """
        while self._pending and self._pending[0].start <= now:
            job = self._pending.pop(0)
            running = sum(1 for other in self.jobs if other.is_running_at(job.start))
            recent = any(
                other.entity_id == job.entity_id and job.start - EXPORT_INTERVAL < other.start <= job.start
                for other in self.jobs
            )
            if running >= MAX_RUNNING_JOBS or recent:
                self.refused_jobs.append(job)
            else:
                self.add_job(job)

    def job(self, job_id_: str, now: datetime) -> ExportJob | None:
        """The job with this id, if it has started by ``now``."""
        self.admit(now)
        job = self._jobs_by_id.get(job_id_)
        return job if job is not None and job.start <= now else None

    def job_for_token(self, client_token: str) -> ExportJob | None:
        """The job an earlier StartMailboxExportJob with this ClientToken created."""
        return self._jobs_by_token.get(client_token)

    def started_jobs(self, now: datetime) -> list[ExportJob]:
        """Jobs that have started by ``now`` (scenario jobs may start later in the night)."""
        self.admit(now)
        return [job for job in self.jobs if job.start <= now]

    def running_count(self, now: datetime) -> int:
        """How many jobs occupy a slot at ``now``, whoever started them."""
        self.admit(now)
        return sum(1 for job in self.jobs if job.is_running_at(now))

    def latest_job_for(self, entity_id: str, now: datetime) -> ExportJob | None:
        """The most recently started job of this mailbox, in any state."""
        jobs = [job for job in self.started_jobs(now) if job.entity_id == entity_id]
        return max(jobs, key=lambda job: job.start, default=None)

    def peak_running(self, now: datetime) -> int:
        """The most jobs running at once at any moment up to ``now``, scenario history included,
        swept exactly over the job intervals."""
        events = []
        for job in self.started_jobs(now):
            events.append((job.start, 1))
            events.append((job.end, -1))

        # At equal times the end sorts first: a slot freed at t can be taken at t.
        events.sort()
        running = peak = 0
        for _, change in events:
            running += change
            peak = max(peak, running)
        return peak


def build_organizations(scenario: Scenario) -> dict[str, Organization]:
    """Create the live organizations, with their mailboxes and scenario jobs, from a scenario."""
    organizations = {}
    for spec in scenario.organizations:
        organization = _organization(scenario, spec)
        _apply_entity_changes(scenario, spec, organization)
        for index, job_spec in enumerate(spec.jobs):
            job = _scenario_job(scenario, spec, organization, index, job_spec)
            if job.start > scenario.start:
                organization.add_later_job(job)
            else:
                _check_not_too_recent(scenario, spec, organization, index, job)
                organization.add_job(job)
        _check_running_at_start(scenario, spec, organization)
        organizations[spec.id] = organization
    return organizations


def _check_not_too_recent(
    scenario: Scenario, spec: OrganizationSpec, organization: Organization, index: int, job: ExportJob
) -> None:
    """A job before the start that WorkMail would have refused makes the scenario impossible."""
    earlier = [other for other in organization.jobs if other.entity_id == job.entity_id]
    if any(abs(job.start - other.start) < EXPORT_INTERVAL for other in earlier):
        where = scenario.organizations.index(spec)
        raise ScenarioError(
            [
                f"organizations[{where}].jobs[{index}]: starts within 24 hours of another job of the same "
                "mailbox, which WorkMail refuses; move it a day apart or give it to another mailbox"
            ]
        )


def _check_running_at_start(scenario: Scenario, spec: OrganizationSpec, organization: Organization) -> None:
    running = organization.running_count(scenario.start)
    if running > MAX_RUNNING_JOBS:
        index = scenario.organizations.index(spec)
        raise ScenarioError(
            [
                f"organizations[{index}].jobs: {running} jobs run at the scenario's start, but WorkMail runs "
                f"at most {MAX_RUNNING_JOBS} per organization; shorten or move some of them"
            ]
        )


def _organization(scenario: Scenario, spec: OrganizationSpec) -> Organization:
    return Organization(
        organization_id=spec.id,
        alias=spec.alias,
        state=spec.state,
        mail_domain=spec.mail_domain,
        arn=f"arn:aws:workmail:{scenario.region}:{scenario.account_id}:organization/{spec.id}",
        created=scenario.start - _ENABLED_LONG_AGO,
        users=[_user(scenario, user) for user in spec.all_users()],
        resources=[_resource(scenario, resource) for resource in spec.all_resources()],
        list_users_includes_resources=spec.list_users_includes_resources,
    )


def _apply_entity_changes(scenario: Scenario, spec: OrganizationSpec, organization: Organization) -> None:
    for change in spec.faults.entity_changes:
        mailbox = organization.find(change.entity)
        assert mailbox is not None, "load_scenario checks that every change names a mailbox"
        moment = scenario.time(change.at)
        if change.state == "DELETED":
            mailbox.deleted_at = moment
        else:
            mailbox.disabled_at = moment


def _user(scenario: Scenario, spec: UserSpec) -> Mailbox:
    return Mailbox(
        entity_id=str(spec.id),
        name=spec.name,
        email=spec.email,
        role=spec.role,
        initial_state=spec.state,
        mailbox_mb=spec.mailbox_mb,
        quota_mb=spec.quota_mb,
        export_duration=scenario.export_duration(spec),
        enabled_date=scenario.start - _ENABLED_LONG_AGO,
        display_name=spec.display_name,
    )


def _resource(scenario: Scenario, spec: ResourceSpec) -> Mailbox:
    return Mailbox(
        entity_id=str(spec.id),
        name=spec.name,
        email=spec.email,
        role="RESOURCE",
        initial_state=spec.state,
        mailbox_mb=spec.mailbox_mb,
        quota_mb=spec.quota_mb,
        export_duration=scenario.export_duration(spec),
        enabled_date=scenario.start - _ENABLED_LONG_AGO,
        resource_type=spec.type,
        description=spec.description,
    )


def _scenario_job(
    scenario: Scenario, spec: OrganizationSpec, organization: Organization, index: int, job: JobSpec
) -> ExportJob:
    mailbox = organization.find(job.entity)
    assert mailbox is not None, "load_scenario checks that every job names a mailbox"

    start = scenario.time(job.started)
    duration = parse_duration(job.duration) if job.duration is not None else mailbox.export_duration
    outcome = job.state if job.state not in (None, "RUNNING") else "COMPLETED"
    region, account = scenario.region, scenario.account_id

    return ExportJob(
        job_id=job_id(spec.id, f"scenario/{index}"),
        organization_id=spec.id,
        entity_id=mailbox.entity_id,
        client_token=None,
        started_by=job.by,
        start=start,
        end=start + duration,
        s3_bucket=job.s3_bucket,
        s3_prefix=job.s3_prefix,
        kms_key_arn=f"arn:aws:kms:{region}:{account}:key/00000000-0000-4000-8000-000000000000",
        role_arn=f"arn:aws:iam::{account}:role/{job.by}-export-role",
        description=job.description or f"started by {job.by}",
        outcome=outcome,
        error_info=job.error_info or ("Mailbox export failed." if outcome == "FAILED" else None),
        s3_path=f"{job.s3_bucket}/{job.s3_prefix.rstrip('/')}/{job_id(spec.id, f'scenario/{index}')}.zip",
        from_scenario=True,
    )
