"""The WorkMail operations the emulator answers, over the organizations of a scenario.

Each operation takes the request's parameters (already checked against the service model)
and the current simulated time, and returns the response body or raises ServiceError.
"""

import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import ServiceError, entity_state, invalid_parameter, limit_exceeded, not_found
from .export_output import ExportContext, export_problem, s3_path, write_export
from .faults import FaultPlan
from .organization import (
    EXPORT_INTERVAL,
    LIST_WINDOW,
    MAX_RUNNING_JOBS,
    ExportJob,
    Mailbox,
    Organization,
    build_organizations,
)
from .pagination import make_token, read_token
from .population import job_id
from .scenario import Scenario
from .validation import RequestValidator, validation_message

PAGE_SIZE = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Clock = Callable[[], datetime]
Handler = Callable[[dict[str, Any], datetime], dict[str, Any]]


class WorkMailService:
    """The state and operations of the emulated service; safe to call from many threads."""

    def __init__(self, scenario: Scenario, now: Clock):
        self._scenario = scenario
        self._clock = now
        self._lock = threading.RLock()
        self._validator = RequestValidator()
        self._organizations = build_organizations(scenario)
        self._faults = FaultPlan(scenario, self._organizations)
        self._limit_exceeded: Counter[str] = Counter()
        self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        # AWS clients for delivering exports, shared within one request and created anew for the next.
        self._contexts: dict[str, ExportContext] = {}
        self._operations: dict[str, Handler] = {
            "DescribeOrganization": self._describe_organization,
            "ListUsers": self._list_users,
            "DescribeUser": self._describe_user,
            "ListResources": self._list_resources,
            "GetMailboxDetails": self._get_mailbox_details,
            "StartMailboxExportJob": self._start_export,
            "DescribeMailboxExportJob": self._describe_export,
            "ListMailboxExportJobs": self._list_exports,
            "CancelMailboxExportJob": self._cancel_export,
        }

    @property
    def operations(self) -> list[str]:
        """Names of the operations the emulator answers."""
        return sorted(self._operations)

    def handle(self, operation: str, params: Any) -> dict[str, Any]:
        """Answer one request; raise ServiceError for every error response."""
        handler = self._operations.get(operation)
        if handler is None:
            raise self._unknown_operation(operation)

        problems = self._validator.problems(operation, params)
        if problems:
            raise ServiceError("ValidationException", validation_message(problems))

        with self._lock:
            self._requests[params.get("OrganizationId", "")][operation] += 1
            self._contexts.clear()
            now = self.now()
            try:
                organization = self._organizations.get(params.get("OrganizationId", ""))
                self._faults.check_request(operation, organization, params, now)
                return handler(params, now)
            except ServiceError as error:
                if error.code == "LimitExceededException":
                    self._limit_exceeded[params.get("OrganizationId", "")] += 1
                raise

    def now(self) -> datetime:
        """The simulated time, from the injected clock; it must be timezone-aware."""
        moment = self._clock()
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ServiceError("InternalFailure", "The emulator clock returned a time without a time zone.")
        return moment.astimezone(UTC)

    def jobs(self, organization_id: str) -> list[ExportJob]:
        """Every job started so far, settled and read at the current time."""
        with self._lock:
            self._contexts.clear()
            now = self.now()
            organization = self._organization_or_key_error(organization_id)
            for job in organization.started_jobs(now):
                self._settle(organization, job, now)
            return [job.snapshot(now) for job in organization.started_jobs(now)]

    def peak_running(self, organization_id: str) -> int:
        """The most jobs that ran at once in the organization so far."""
        with self._lock:
            return self._organization_or_key_error(organization_id).peak_running(self.now())

    def request_counts(self, organization_id: str) -> dict[str, int]:
        """How many requests of each operation the organization received (valid ones, faults included)."""
        with self._lock:
            return dict(self._requests[organization_id])

    def limit_exceeded_count(self, organization_id: str) -> int:
        """How many LimitExceededException responses the organization's requests got."""
        with self._lock:
            return self._limit_exceeded[organization_id]

    def _unknown_operation(self, operation: str) -> ServiceError:
        known = ", ".join(self.operations)
        if self._validator.operation(operation) is None:
            return ServiceError("UnknownOperationException", f"WorkMail has no operation {operation!r}.")
        return ServiceError(
            "UnknownOperationException",
            f"The WorkMail emulator does not implement {operation}; it implements {known}.",
        )

    def _organization_or_key_error(self, organization_id: str) -> Organization:
        if organization_id not in self._organizations:
            raise KeyError(f"the scenario has no organization {organization_id}")
        return self._organizations[organization_id]

    def _organization(self, params: dict[str, Any], must_be_active: bool = True) -> Organization:
        organization_id = params["OrganizationId"]
        organization = self._organizations.get(organization_id)
        if organization is None:
            raise ServiceError("OrganizationNotFoundException", f"Organization {organization_id} does not exist.")
        if must_be_active and organization.state != "Active":
            raise ServiceError(
                "OrganizationStateException",
                f"Organization {organization_id} is {organization.state}; the operation needs it Active.",
            )
        return organization

    # Organization and directory

    def _describe_organization(self, params: dict[str, Any], now: datetime) -> dict[str, Any]:
        organization = self._organization(params, must_be_active=False)
        return {
            "OrganizationId": organization.organization_id,
            "Alias": organization.alias,
            "State": organization.state,
            "DirectoryId": "d-" + organization.organization_id[2:12],
            "DirectoryType": "WorkMailDirectory",
            "DefaultMailDomain": organization.mail_domain,
            "CompletedDate": _timestamp(organization.created),
            "ARN": organization.arn,
        }

    def _list_users(self, params: dict[str, Any], now: datetime) -> dict[str, Any]:
        organization = self._organization(params)
        filters = params.get("Filters") or {}
        listed = organization.users + (organization.resources if organization.list_users_includes_resources else [])
        matching = [(position, m) for position, m in enumerate(listed) if _user_matches(m, filters, now)]
        page, token = self._page("ListUsers", organization, params, filters, matching)
        return {"Users": [_user_entry(mailbox, now) for mailbox in page], **token}

    def _describe_user(self, params: dict[str, Any], now: datetime) -> dict[str, Any]:
        organization = self._organization(params)
        mailbox = organization.find(params["UserId"])
        if mailbox is None:
            raise not_found(f"User {params['UserId']} does not exist in organization {organization.organization_id}.")

        entry = _user_entry(mailbox, now)
        entry["UserId"] = entry.pop("Id")
        if mailbox.role in ("USER", "RESOURCE") and mailbox.state_at(now) == "ENABLED":
            entry["MailboxProvisionedDate"] = entry["EnabledDate"]
        return entry

    def _list_resources(self, params: dict[str, Any], now: datetime) -> dict[str, Any]:
        organization = self._organization(params)
        filters = params.get("Filters") or {}
        matching = [
            (position, resource)
            for position, resource in enumerate(organization.resources)
            if _resource_matches(resource, filters, now)
        ]
        page, token = self._page("ListResources", organization, params, filters, matching)
        return {"Resources": [_resource_entry(resource, now) for resource in page], **token}

    def _get_mailbox_details(self, params: dict[str, Any], now: datetime) -> dict[str, Any]:
        organization = self._organization(params)
        mailbox = self._mailbox(organization, params["UserId"], now)
        return {"MailboxQuota": mailbox.quota_mb, "MailboxSize": float(mailbox.mailbox_mb)}

    def _mailbox(self, organization: Organization, reference: str, now: datetime) -> Mailbox:
        """The enabled mailbox ``reference`` names, or the error the service gives for it."""
        mailbox = organization.find(reference)
        if mailbox is None or mailbox.state_at(now) == "DELETED":
            raise not_found(f"Entity {reference} does not exist in organization {organization.organization_id}.")
        if mailbox.role in ("SYSTEM_USER", "REMOTE_USER"):
            raise entity_state(f"Entity {reference} is a {mailbox.role} and has no mailbox in this organization.")
        if mailbox.state_at(now) != "ENABLED":
            raise entity_state(f"Entity {reference} is {mailbox.state_at(now)}; its mailbox is not enabled.")
        return mailbox

    # Mailbox export jobs

    def _start_export(self, params: dict[str, Any], now: datetime) -> dict[str, Any]:
        organization = self._organization(params)
        repeated = organization.job_for_token(params["ClientToken"])
        if repeated is not None:
            # Same ClientToken: the same job, not a second one, and no limit counted again.
            return {"JobId": repeated.job_id}

        mailbox = self._exportable_mailbox(organization, params["EntityId"], now)
        self._check_export_interval(organization, mailbox, params["EntityId"], now)
        self._check_running_limit(organization, now)

        job = self._new_job(organization, mailbox, params, now)
        organization.add_job(job)
        return {"JobId": job.job_id}

    def _exportable_mailbox(self, organization: Organization, reference: str, now: datetime) -> Mailbox:
        mailbox = organization.find(reference)
        exists = mailbox is not None and mailbox.state_at(now) != "DELETED"
        if exists and mailbox.role in ("SYSTEM_USER", "REMOTE_USER"):
            # Documented errors of StartMailboxExportJob: a user without a mailbox is a bad EntityId.
            raise invalid_parameter(f"Entity {reference} is a {mailbox.role}; it has no mailbox to export.")
        return self._mailbox(organization, reference, now)

    def _check_export_interval(
        self, organization: Organization, mailbox: Mailbox, reference: str, now: datetime
    ) -> None:
        previous = organization.latest_job_for(mailbox.entity_id, now)
        if previous is not None and now - previous.start < EXPORT_INTERVAL:
            allowed = (previous.start + EXPORT_INTERVAL).isoformat()
            raise limit_exceeded(
                f"A mailbox export job for {reference} started at {previous.start.isoformat()}; "
                f"a mailbox can be exported once every 24 hours (next allowed at {allowed})."
            )

    def _check_running_limit(self, organization: Organization, now: datetime) -> None:
        running = organization.running_count(now)
        if running >= MAX_RUNNING_JOBS:
            raise limit_exceeded(
                f"Organization {organization.organization_id} already has {running} mailbox export jobs "
                f"running; at most {MAX_RUNNING_JOBS} can run at the same time."
            )

    def _new_job(
        self, organization: Organization, mailbox: Mailbox, params: dict[str, Any], now: datetime
    ) -> ExportJob:
        job = ExportJob(
            job_id=job_id(organization.organization_id, f"token/{params['ClientToken']}"),
            organization_id=organization.organization_id,
            entity_id=mailbox.entity_id,
            client_token=params["ClientToken"],
            started_by="api",
            start=now,
            end=now + mailbox.export_duration,
            s3_bucket=params["S3BucketName"],
            s3_prefix=params["S3Prefix"],
            kms_key_arn=params["KmsKeyArn"],
            role_arn=params["RoleArn"],
            description=params.get("Description"),
        )
        job.s3_path = s3_path(job)

        forced = self._faults.job_outcome(organization.organization_id, mailbox.entity_id)
        if forced is not None:
            job.outcome, job.error_info = forced.state, forced.error_info
            job.end = now + (forced.duration if forced.duration is not None else mailbox.export_duration)
        return job

    def _describe_export(self, params: dict[str, Any], now: datetime) -> dict[str, Any]:
        organization = self._organization(params)
        job = self._job(organization, params["JobId"], now)
        self._settle(organization, job, now)

        entry = _job_entry(job, now)
        entry.update({"RoleArn": job.role_arn, "KmsKeyArn": job.kms_key_arn, "S3Prefix": job.s3_prefix})
        if job.state_at(now) == "FAILED" and job.error_info:
            entry["ErrorInfo"] = job.error_info
        return entry

    def _list_exports(self, params: dict[str, Any], now: datetime) -> dict[str, Any]:
        organization = self._organization(params)
        recent = [job for job in organization.started_jobs(now) if now - job.start <= LIST_WINDOW]
        # Newest first, so a page boundary stays put while new jobs start.
        keyed = sorted(((_job_key(job), job) for job in recent), key=lambda pair: pair[0], reverse=True)
        page, token = self._page("ListMailboxExportJobs", organization, params, {}, keyed, descending=True)

        for job in page:
            self._settle(organization, job, now)
        return {"Jobs": [_job_entry(job, now) for job in page], **token}

    def _cancel_export(self, params: dict[str, Any], now: datetime) -> dict[str, Any]:
        organization = self._organization(params)
        job = self._job(organization, params["JobId"], now)
        self._settle(organization, job, now)

        if job.state_at(now) != "RUNNING":
            raise entity_state(
                f"Mailbox export job {job.job_id} is {job.state_at(now)}; only a RUNNING job can be cancelled."
            )
        job.end, job.outcome, job.settled = now, "CANCELLED", True
        return {}

    def _job(self, organization: Organization, job_id_: str, now: datetime) -> ExportJob:
        job = organization.job(job_id_, now)
        if job is None:
            raise not_found(
                f"Mailbox export job {job_id_} does not exist in organization {organization.organization_id}."
            )
        return job

    def _settle(self, organization: Organization, job: ExportJob, now: datetime) -> None:
        """Decide a finished job's outcome the first time it is seen finished, and deliver its output."""
        if job.settled or now < job.end:
            return
        job.settled = True
        if job.from_scenario or job.outcome != "COMPLETED":
            return

        context = self._contexts.setdefault(
            organization.organization_id,
            ExportContext(self._scenario.region, self._scenario.account_id, organization.arn),
        )
        mailbox = organization.find(job.entity_id)
        problem = export_problem(job, context)
        if problem is None and mailbox is not None:
            problem = write_export(job, mailbox, context)
        if problem is not None:
            job.outcome, job.error_info = "FAILED", problem

    def _page(
        self,
        operation: str,
        organization: Organization,
        params: dict[str, Any],
        query: Any,
        keyed: list[tuple[Any, Any]],
        descending: bool = False,
    ) -> tuple[list[Any], dict[str, str]]:
        """One page of ``keyed`` (key, item) pairs after the NextToken's key, and the next token."""
        after = read_token(params.get("NextToken"), operation, organization.organization_id, query)
        if after is not None:
            keyed = [(key, item) for key, item in keyed if (_lt(key, after) if descending else _lt(after, key))]

        size = params.get("MaxResults") or PAGE_SIZE
        page = keyed[:size]
        more = len(keyed) > size
        token = {"NextToken": make_token(operation, organization.organization_id, query, page[-1][0])} if more else {}
        return [item for _, item in page], token


def _lt(left: Any, right: Any) -> bool:
    try:
        return left < right
    except TypeError:
        raise invalid_parameter("The NextToken is not valid.") from None


def _timestamp(moment: datetime) -> float:
    return moment.timestamp()


def _job_key(job: ExportJob) -> list[Any]:
    # Whole microseconds since the epoch survive the JSON round trip through a NextToken exactly.
    return [(job.start - _EPOCH) // timedelta(microseconds=1), job.job_id]


def _prefixed(value: str | None, prefix: str | None) -> bool:
    return prefix is None or (value or "").lower().startswith(prefix.lower())


def _user_matches(mailbox: Mailbox, filters: dict[str, Any], now: datetime) -> bool:
    return (
        _prefixed(mailbox.name, filters.get("UsernamePrefix"))
        and _prefixed(mailbox.display_name or mailbox.name, filters.get("DisplayNamePrefix"))
        and _prefixed(mailbox.email, filters.get("PrimaryEmailPrefix"))
        and filters.get("State") in (None, mailbox.state_at(now))
        # No emulated user comes from an identity provider.
        and filters.get("IdentityProviderUserIdPrefix") is None
    )


def _resource_matches(resource: Mailbox, filters: dict[str, Any], now: datetime) -> bool:
    return (
        _prefixed(resource.name, filters.get("NamePrefix"))
        and _prefixed(resource.email, filters.get("PrimaryEmailPrefix"))
        and filters.get("State") in (None, resource.state_at(now))
    )


def _dates(mailbox: Mailbox, now: datetime) -> dict[str, float]:
    dates = {"EnabledDate": _timestamp(mailbox.enabled_date)}
    disabled = mailbox.disabled_date(now)
    if disabled is not None:
        dates["DisabledDate"] = _timestamp(disabled)
    return dates


def _user_entry(mailbox: Mailbox, now: datetime) -> dict[str, Any]:
    entry = {
        "Id": mailbox.entity_id,
        "Email": mailbox.email,
        "Name": mailbox.name,
        "State": mailbox.state_at(now),
        "UserRole": mailbox.role,
        **_dates(mailbox, now),
    }
    if mailbox.display_name:
        entry["DisplayName"] = mailbox.display_name
    return entry


def _resource_entry(resource: Mailbox, now: datetime) -> dict[str, Any]:
    entry = {
        "Id": resource.entity_id,
        "Email": resource.email,
        "Name": resource.name,
        "Type": resource.resource_type,
        "State": resource.state_at(now),
        **_dates(resource, now),
    }
    if resource.description:
        entry["Description"] = resource.description
    return entry


def _job_entry(job: ExportJob, now: datetime) -> dict[str, Any]:
    entry = {
        "JobId": job.job_id,
        "EntityId": job.entity_id,
        "S3BucketName": job.s3_bucket,
        "EstimatedProgress": job.progress_at(now),
        "State": job.state_at(now),
        "StartTime": _timestamp(job.start),
    }
    if job.description is not None:
        entry["Description"] = job.description
    if job.s3_path:
        entry["S3Path"] = job.s3_path
    if job.state_at(now) != "RUNNING":
        entry["EndTime"] = _timestamp(job.end)
    return entry
