"""The scenario file: the organizations, mailboxes and history the emulator starts from.

A scenario is YAML or JSON, validated strictly: an unknown key is an error, because a
typo that silently fell back to a default would test something other than what its
author meant. ``docs/scenario-format.md`` documents every field.
"""

import copy
import difflib
import re
import typing
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .consistency import scenario_problems
from .durations import LONGEST, check_time, parse_duration, parse_instant, resolve_time
from .population import generated_people, mailbox_sizes, resource_id, special_positions, user_id

ORGANIZATION_ID_PATTERN = r"^m-[0-9a-f]{32}$"
ORGANIZATION_ALIAS_PATTERN = r"^(?!d-)([\da-zA-Z]+)([-][\da-zA-Z]+)*$"
USER_NAME_PATTERN = r"^[\w\-.]+(@[a-zA-Z0-9.\-]+\.[a-zA-Z0-9-]{2,})?$"
EMAIL_PATTERN = r"^[a-zA-Z0-9._%+-]{1,64}@[a-zA-Z0-9.-]+\.[a-zA-Z-]{2,}$"
DOMAIN_PATTERN = r"^[a-zA-Z0-9.-]+\.[a-zA-Z-]{2,}$"
RESOURCE_ID_PATTERN = r"^r-[0-9a-f]{32}$"
DEFAULT_QUOTA_MB = 51200

EntityState = Literal["ENABLED", "DISABLED", "DELETED"]
JobState = Literal["RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
OrganizationState = Literal["Active", "Creating", "Deleting", "Deleted", "Failed", "Inactive", "Synchronizing"]
InjectableError = Literal[
    "ThrottlingException",
    "TooManyRequestsException",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
    "EntityNotFoundException",
    "EntityStateException",
    "OrganizationStateException",
    "OrganizationNotFoundException",
    "InvalidParameterException",
]


class ScenarioError(ValueError):
    """A scenario that cannot be used; one readable line per problem, each naming the field path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _check_duration(value: str | int | float) -> str | int | float:
    if parse_duration(value) < timedelta(0):
        raise ValueError(f"must not be negative, got {value!r}")
    return value


def _no_yes_or_no(value: Any) -> Any:
    # pydantic would read `true` as 1 second; a yes or no where a time belongs is a slip.
    if isinstance(value, bool):
        raise ValueError(f"expected a time or duration such as '30m' or '-2h', got {value!r}")
    return value


TimeValue = Annotated[str | int | float | datetime, BeforeValidator(_no_yes_or_no), AfterValidator(check_time)]
DurationValue = Annotated[str | int | float, BeforeValidator(_no_yes_or_no), AfterValidator(_check_duration)]


# Numbers must be written as numbers: `true` or "12" where a size or a count belongs is a slip.
Number = Annotated[float, Strict()]
Whole = Annotated[int, Strict()]

# WorkMail's largest mailbox: 50 GB, a limit that cannot be raised.
MAX_MAILBOX_MB = 51_200
EARLIEST_START = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_START = datetime(2099, 12, 31, tzinfo=UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", regex_engine="python-re", allow_inf_nan=False)


class ExportSpeed(_Strict):
    """How long an export takes: ``fixed_seconds`` plus the mailbox size over ``mb_per_minute``."""

    # Bounded so that the largest mailbox still exports within a scenario's year.
    fixed_seconds: Number = Field(120, ge=0, le=86_400)
    mb_per_minute: Number = Field(60, ge=0.1)

    def duration(self, mailbox_mb: float) -> timedelta:
        """Time an export of a mailbox of ``mailbox_mb`` takes."""
        return timedelta(seconds=self.fixed_seconds + mailbox_mb / self.mb_per_minute * 60)


class _Mailbox(_Strict):
    name: str
    email: str = Field(pattern=EMAIL_PATTERN, max_length=254)
    state: EntityState = "ENABLED"
    mailbox_mb: Number = Field(0, ge=0, le=MAX_MAILBOX_MB)
    quota_mb: Whole = Field(DEFAULT_QUOTA_MB, ge=1)
    export_minutes: Number | None = Field(None, ge=0, le=LONGEST.total_seconds() / 60)


class UserSpec(_Mailbox):
    """A WorkMail user. ``id`` defaults to a UUID derived from the organization and name."""

    name: str = Field(pattern=USER_NAME_PATTERN, min_length=1, max_length=64)
    id: str | None = Field(None, min_length=12, max_length=256)
    display_name: str | None = Field(None, max_length=256)
    role: Literal["USER", "SYSTEM_USER", "REMOTE_USER"] = "USER"


class ResourceSpec(_Mailbox):
    """A room or equipment resource. ``id`` defaults to ``r-`` and 32 hex digits."""

    name: str = Field(pattern=USER_NAME_PATTERN, min_length=1, max_length=20)
    id: str | None = Field(None, pattern=RESOURCE_ID_PATTERN)
    type: Literal["ROOM", "EQUIPMENT"] = "ROOM"
    description: str | None = Field(None, min_length=1, max_length=64)


class GenerateUsers(_Strict):
    """Many users with lognormal mailbox sizes, the same for the same seed."""

    count: Whole = Field(ge=0, le=100_000)
    seed: Whole = 0
    domain: str | None = Field(None, pattern=DOMAIN_PATTERN)
    median_mb: Number = Field(300, gt=0, le=MAX_MAILBOX_MB)
    max_mb: Number = Field(20_000, gt=0, le=MAX_MAILBOX_MB)
    min_mb: Number = Field(1, ge=0)
    spread: Number = Field(1.3, ge=0, le=5)
    disabled: Whole = Field(0, ge=0)
    deleted: Whole = Field(0, ge=0)
    system: Whole = Field(0, ge=0)
    remote: Whole = Field(0, ge=0)

    @model_validator(mode="after")
    def _fits(self) -> "GenerateUsers":
        special = self.disabled + self.deleted + self.system + self.remote
        if special > self.count:
            raise ValueError(f"disabled + deleted + system + remote ({special}) exceeds count ({self.count})")
        if self.max_mb < self.min_mb:
            raise ValueError(f"max_mb ({self.max_mb}) is below min_mb ({self.min_mb})")
        return self


class JobSpec(_Strict):
    """An export job started by someone else: before the run, or during it (positive ``started``)."""

    entity: str = Field(min_length=1)
    started: TimeValue
    duration: DurationValue | None = None
    state: JobState | None = None
    by: str = Field("someone-else", min_length=1)
    error_info: str | None = Field(None, min_length=1, max_length=1024)
    description: str | None = Field(None, max_length=1023)
    s3_bucket: str = Field("other-team-exports", pattern=r"^[A-Za-z0-9.-]{1,63}$")
    s3_prefix: str = Field("exports", pattern=r"^[A-Za-z0-9!_.*'()/-]{1,1023}$")


class ErrorFault(_Strict):
    """Answer matching requests with an error instead of doing the work."""

    operation: str = Field(min_length=1)
    error: InjectableError
    times: Whole | None = Field(1, ge=1)
    entity: str | None = Field(None, min_length=1)
    start: TimeValue | None = Field(None, alias="from")
    until: TimeValue | None = None
    message: str | None = Field(None, min_length=1)


class JobOutcomeFault(_Strict):
    """Make the exports of one mailbox end differently: FAILED, CANCELLED, or after another duration."""

    entity: str = Field(min_length=1)
    state: Literal["COMPLETED", "FAILED", "CANCELLED"] = "FAILED"
    error_info: str | None = Field(None, min_length=1, max_length=1024)
    duration: DurationValue | None = None
    times: Whole | None = Field(None, ge=1)


class EntityChange(_Strict):
    """A user or resource that is disabled or deleted during the night."""

    entity: str = Field(min_length=1)
    state: Literal["DISABLED", "DELETED"]
    at: TimeValue


class Faults(_Strict):
    """Injected faults: error responses, job outcomes, and mailboxes that change state."""

    errors: list[ErrorFault] = []
    job_outcomes: list[JobOutcomeFault] = []
    entity_changes: list[EntityChange] = []


class CrashFault(_Strict):
    """Make a Lambda invocation die at a chosen point, as a timeout or an out-of-memory would."""

    point: Literal["before_export_start", "after_export_start", "during_planning"]
    times: Whole = Field(1, ge=1)


# The DynamoDB and S3 requests the functions make during a night, by botocore's operation names,
# which are what the local runner matches (functions/mailbox_backup: ledger.py, preflight.py,
# verification.py). A fault on any other request would never fire.
FAULTABLE_AWS_OPERATIONS: dict[str, tuple[str, ...]] = {
    "dynamodb": ("BatchWriteItem", "GetItem", "PutItem", "Query", "UpdateItem"),
    "s3": ("GetBucketLocation", "GetPublicAccessBlock", "HeadObject", "ListObjectsV2"),
}


class AwsErrorFault(_Strict):
    """Answer some DynamoDB or S3 requests of the functions with a transient error."""

    service: Literal["dynamodb", "s3"]
    operation: str = Field(min_length=1)
    error: Literal[
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "InternalServerError",
        "SlowDown",
        "ServiceUnavailable",
    ]
    times: Whole = Field(1, ge=1)

    @field_validator("operation")
    @classmethod
    def _made_by_the_functions(cls, operation: str, info: ValidationInfo) -> str:
        service = info.data.get("service")
        if service is None or operation in FAULTABLE_AWS_OPERATIONS[service]:
            return operation
        raise ValueError(_unfaultable(service, operation))


def _unfaultable(service: str, operation: str) -> str:
    accepted = FAULTABLE_AWS_OPERATIONS[service]
    text = f"the functions make no {service} request {operation!r}, so the fault would never fire"
    elsewhere = [other for other, names in FAULTABLE_AWS_OPERATIONS.items() if operation in names]
    if elsewhere:
        return f"{text}; {operation} is a {elsewhere[0]} request: set service: {elsewhere[0]}"
    close = _closest(operation, accepted)
    listed = f"{service} requests that can be faulted: {', '.join(accepted)}"
    return f"{text}; did you mean {close!r}? The {listed}" if close else f"{text}; {listed}"


def _closest(name: str, known: tuple[str, ...]) -> str | None:
    """The known name ``name`` was likely meant as: the same but for case and underscores
    (``put_item``, boto3's method name), or one that differs by a slip."""
    squashed = {candidate.lower(): candidate for candidate in known}
    same = squashed.get(name.replace("_", "").replace("-", "").lower())
    if same:
        return same
    close = difflib.get_close_matches(name.lower(), list(squashed), n=1, cutoff=0.75)
    return squashed[close[0]] if close else None


class ExportConfigurationFault(_Strict):
    """Break the deployed export configuration, so that jobs fail the way the service reports it."""

    problem: Literal["role_not_trusted", "bucket_missing", "key_disabled"]
    when: Literal["before_run", "after_planning"] = "before_run"


class EnvironmentFaults(_Strict):
    """Faults outside WorkMail, applied by the local runner: our own functions and the AWS side."""

    crashes: list[CrashFault] = []
    aws_errors: list[AwsErrorFault] = []
    export_configuration: list[ExportConfigurationFault] = []


class OrganizationSpec(_Strict):
    """One WorkMail organization and what is in it."""

    id: str = Field(pattern=ORGANIZATION_ID_PATTERN)
    alias: str = Field(pattern=ORGANIZATION_ALIAS_PATTERN, min_length=1, max_length=62)
    state: OrganizationState = "Active"
    default_mail_domain: str | None = Field(None, pattern=DOMAIN_PATTERN)
    list_users_includes_resources: Annotated[bool, Strict()] = True
    users: list[UserSpec] = []
    generate_users: GenerateUsers | None = None
    resources: list[ResourceSpec] = []
    jobs: list[JobSpec] = []
    faults: Faults = Faults()

    @property
    def mail_domain(self) -> str:
        """The organization's default mail domain."""
        return self.default_mail_domain or f"{self.alias}.awsapps.com"

    def all_users(self) -> list[UserSpec]:
        """Every user, listed ones first, then generated ones, each with its id filled in."""
        users = [*self.users, *self._generated_users()]
        return [user if user.id else user.model_copy(update={"id": user_id(self.id, user.name)}) for user in users]

    def all_resources(self) -> list[ResourceSpec]:
        """Every resource, each with its id filled in."""
        return [r if r.id else r.model_copy(update={"id": resource_id(self.id, r.name)}) for r in self.resources]

    def _generated_users(self) -> list[UserSpec]:
        spec = self.generate_users
        if spec is None or spec.count == 0:
            return []

        people = generated_people(spec.count, spec.seed)
        sizes = mailbox_sizes(spec.count, spec.seed, spec.median_mb, spec.max_mb, spec.min_mb, spec.spread)
        groups = {
            "DISABLED": spec.disabled,
            "DELETED": spec.deleted,
            "SYSTEM_USER": spec.system,
            "REMOTE_USER": spec.remote,
        }
        special = special_positions(spec.count, spec.seed, groups)
        domain = spec.domain or self.mail_domain

        return [
            _generated_user(name, display, f"{name}@{domain}", size, special.get(position))
            for position, ((name, display), size) in enumerate(zip(people, sizes, strict=True))
        ]


def _generated_user(name: str, display: str, email: str, size: float, group: str | None) -> UserSpec:
    role = group if group in ("SYSTEM_USER", "REMOTE_USER") else "USER"
    state = group if group in ("DISABLED", "DELETED") else "ENABLED"
    # System and remote users have no mailbox in this organization, so nothing to size.
    mailbox_mb = size if role == "USER" else 0
    return UserSpec(name=name, display_name=display, email=email, state=state, role=role, mailbox_mb=mailbox_mb)


class Scenario(_Strict):
    """A whole scenario: when the run starts, where, how fast exports go, and the organizations."""

    start: datetime
    # The only regions with the WorkMail API.
    region: Literal["us-east-1", "us-west-2", "eu-west-1"] = "us-east-1"
    account_id: str = Field("123456789012", pattern=r"^\d{12}$")
    export_speed: ExportSpeed = ExportSpeed()
    organizations: list[OrganizationSpec] = Field(min_length=1)
    environment_faults: EnvironmentFaults = EnvironmentFaults()

    @field_validator("start", mode="before")
    @classmethod
    def _utc_start(cls, value: Any) -> datetime:
        start = parse_instant(value)
        # Export archives are ZIP files, whose timestamps run from 1980 to 2107.
        if not EARLIEST_START <= start <= LATEST_START:
            raise ValueError(f"must be between {EARLIEST_START:%Y} and {LATEST_START:%Y}, got {value!s}")
        return start

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_id_as_text(cls, value: Any) -> Any:
        # YAML reads 123456789012 unquoted as a number; twelve digits are still an account id.
        if isinstance(value, int) and not isinstance(value, bool) and len(str(value)) == 12:
            return str(value)
        if isinstance(value, int):
            raise ValueError(f"write the 12 digits in quotes (YAML drops leading zeros), got {value}")
        return value

    @model_validator(mode="after")
    def _aliases_differ(self) -> "Scenario":
        # An alias names the organization's awsapps.com domain, where case does not count.
        aliases = [organization.alias.lower() for organization in self.organizations]
        repeated = sorted({alias for alias in aliases if aliases.count(alias) > 1})
        if repeated:
            raise ValueError(f"organization aliases must differ, as WorkMail's do; repeated: {', '.join(repeated)}")
        return self

    def time(self, value: str | int | float | datetime) -> datetime:
        """Resolve a scenario time (relative to ``start`` or absolute) to a UTC instant."""
        return resolve_time(value, self.start)

    def organization(self, organization_id: str) -> OrganizationSpec:
        """The organization with this id; KeyError if the scenario has none."""
        for organization in self.organizations:
            if organization.id == organization_id:
                return organization
        raise KeyError(organization_id)

    def export_duration(self, mailbox: UserSpec | ResourceSpec) -> timedelta:
        """How long exporting this mailbox takes: its ``export_minutes``, else the export speed."""
        if mailbox.export_minutes is not None:
            return timedelta(minutes=mailbox.export_minutes)
        return self.export_speed.duration(mailbox.mailbox_mb)


def load_scenario(source: str | Path | Mapping[str, Any]) -> Scenario:
    """Load and validate a scenario from a file path, YAML/JSON text, or an already parsed mapping.

    Raises ScenarioError listing every problem, one line each, naming the field path.
    """
    data = source if isinstance(source, Mapping) else _parse_text(_read(source))
    if data is None:
        raise ScenarioError(["scenario: the file is empty; see scenarios/demo.yaml for one to start from"])
    if not isinstance(data, Mapping):
        raise ScenarioError([f"scenario: must be a mapping of keys to values, got {type(data).__name__}"])

    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        details = error.errors()
        raise ScenarioError([_describe(detail) for detail in details] + _problems_beside(data, details)) from None

    problems = scenario_problems(scenario)
    if problems:
        raise ScenarioError(problems)
    return scenario


# Top-level settings the cross-field checks cannot do without: the times and durations, and what they check.
_NEEDED_FOR_CROSS_FIELD_CHECKS = ("start", "export_speed", "organizations")
_UNKNOWN_ENTITY = ".entity: no user or resource has the id, email or name "


def _problems_beside(data: Mapping[str, Any], details: list) -> list[str]:
    """The cross-field problems of the rest of a scenario with field errors, so that one pass names both.

    The list entries with a field error are left out (the whole organization, for an error outside
    its lists) and the rest is checked, each problem naming the entry's place in the file. An error
    in a setting that the times depend on leaves nothing to check until it is fixed.
    """
    left_out: dict[tuple, set[int]] = {}
    rest = copy.deepcopy(dict(data))
    for detail in details:
        location = tuple(part for part in detail["loc"] if not _is_union_branch(part))
        entries = [position for position, part in enumerate(location) if isinstance(part, int)]
        if entries:
            left_out.setdefault(location[: entries[-1]], set()).add(location[entries[-1]])
        elif location and location[0] not in _NEEDED_FOR_CROSS_FIELD_CHECKS:
            rest.pop(location[0], None)
        else:
            return []
    try:
        kept, unnamed = _leave_out(rest, left_out)
        scenario = Scenario.model_validate(rest)
    except (LookupError, TypeError):
        return []
    except ValidationError as error:
        # Checks of the whole scenario (aliases that repeat) run only once every field is valid.
        return [_describe(detail) for detail in error.errors() if not detail["loc"]]
    problems = [_renumbered(problem, kept) for problem in scenario_problems(scenario)]
    # A mailbox left out for its own error is still the one a job or a fault names.
    return [problem for problem in problems if not _names_one_of(problem, unnamed)]


def _leave_out(data: dict, left_out: dict[tuple, set[int]]) -> tuple[dict[tuple, list[int]], dict[int, set[str]]]:
    """Remove the entries from ``data``; return where each remaining entry was, and the names of the
    mailboxes removed, by organization."""
    kept: dict[tuple, list[int]] = {}
    unnamed: dict[int, set[str]] = {}
    # The deepest first, so that a list's positions still hold while entries inside it go.
    for path in sorted(left_out, key=len, reverse=True):
        entries: Any = data
        for part in path:
            entries = entries[part]
        if not isinstance(entries, list):
            raise TypeError(f"{path} is not a list")
        if len(path) == 3 and path[0] == "organizations" and path[2] in ("users", "resources"):
            names = unnamed.setdefault(path[1], set())
            for position in left_out[path]:
                if isinstance(entries[position], Mapping):
                    names.update(
                        str(entries[position][key]).lower()
                        for key in ("id", "email", "name")
                        if entries[position].get(key) is not None
                    )
        kept[path] = [position for position in range(len(entries)) if position not in left_out[path]]
        entries[:] = [entries[position] for position in kept[path]]
    return kept, unnamed


def _renumbered(problem: str, kept: dict[tuple, list[int]]) -> str:
    """The problem with each field path's positions as they are in the file, not in what was left."""

    def original(match: re.Match) -> str:
        path: tuple = ()
        segments = []
        for segment in match.group(0).split("."):
            name, bracket, position = segment.partition("[")
            path += (name,)
            if bracket:
                index = int(position.rstrip("]"))
                index = kept[path][index] if path in kept else index
                path += (index,)
                segment = f"{name}[{index}]"
            segments.append(segment)
        return ".".join(segments)

    return re.sub(r"organizations\[\d+\](?:\.\w+(?:\[\d+\])?)*", original, problem)


def _names_one_of(problem: str, unnamed: dict[int, set[str]]) -> bool:
    path, found, reference = problem.partition(_UNKNOWN_ENTITY)
    organization = re.match(r"organizations\[(\d+)\]", path)
    if not found or organization is None:
        return False
    return reference.lower() in {repr(name) for name in unnamed.get(int(organization.group(1)), set())}


def _read(source: str | Path) -> str:
    looks_like_path = isinstance(source, Path) or (
        "\n" not in source and source.strip().endswith((".yaml", ".yml", ".json"))
    )
    if not looks_like_path:
        return str(source)

    path = Path(source)
    if path.is_dir():
        raise ScenarioError([f"scenario: {source} is a directory; give the scenario file inside it"])
    if not path.exists():
        raise ScenarioError([f"scenario: file not found: {source}"])
    if not path.is_file():
        raise ScenarioError([f"scenario: {source} is not a regular file; give a YAML or JSON file"])
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError([f"scenario: {source} is not UTF-8 text (byte {error.start}); save it as UTF-8"]) from None


def _parse_text(text: str) -> Any:
    # ruamel.yaml refuses a key given twice, where PyYAML would silently keep the last one.
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "scenario"
        problem = getattr(error, "problem", None) or str(error)
        raise ScenarioError([f"{where}: not valid YAML or JSON: {_in_plain_words(problem)}"]) from None


def _in_plain_words(problem: str) -> str:
    """The parser's wording for the mistakes people make most, said as what to fix."""
    if problem.startswith("expected <block end>"):
        return (
            "this line's indentation does not match the lines above it "
            "(a key indented differently from its neighbours, or a key among list items without '- ')"
        )
    if "'\\t'" in problem:
        return "a tab character; indent with spaces"
    return problem


def field_path(location: tuple[str | int, ...]) -> str:
    """Render a pydantic location as ``organizations[0].users[3].mailbox_mb``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "scenario"


def _describe(detail: Mapping[str, Any]) -> str:
    location = tuple(part for part in detail["loc"] if not _is_union_branch(part))
    return f"{field_path(location)}: {_explain(detail, location)}"


def _is_union_branch(part: str | int) -> bool:
    # pydantic names the branch of a union it tried ("str", "function-after[...]"); not a field.
    return isinstance(part, str) and (part in ("str", "int", "float", "datetime") or "[" in part)


def _explain(detail: Mapping[str, Any], location: tuple[str | int, ...]) -> str:
    kind, context, given = detail["type"], detail.get("ctx") or {}, detail.get("input")
    simple = {
        "greater_than_equal": lambda: f"must be >= {_number(context.get('ge'))}, got {given!r}",
        "greater_than": lambda: f"must be > {_number(context.get('gt'))}, got {given!r}",
        "less_than_equal": lambda: f"must be <= {_number(context.get('le'))}, got {given!r}",
        "missing": lambda: "is required but missing",
        "string_pattern_mismatch": lambda: f"must match {context.get('pattern')}, got {given!r}",
        "literal_error": lambda: f"must be one of {context.get('expected')}, got {given!r}",
        "too_short": lambda: f"must have at least {context.get('min_length')} item(s)",
        "string_too_short": lambda: f"must be at least {context.get('min_length')} character(s) long",
        "string_too_long": lambda: f"must be at most {context.get('max_length')} characters long, got {len(given)}",
        "extra_forbidden": lambda: _unknown_key(location),
    }
    if kind in simple:
        return simple[kind]()

    message = str(detail.get("msg", "is not valid")).removeprefix("Value error, ")
    return message if kind == "value_error" else f"{message[:1].lower()}{message[1:]}, got {given!r}"


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _unknown_key(location: tuple[str | int, ...]) -> str:
    known = _known_keys(location[:-1])
    text = f"unknown key {location[-1]!r}"
    close = difflib.get_close_matches(str(location[-1]), known, n=1)
    if close:
        return f"{text}; did you mean {close[0]!r}?"
    return f"{text}; known keys here: {', '.join(known)}" if known else text


def _known_keys(parent: tuple[str | int, ...]) -> list[str]:
    model: Any = Scenario
    for part in parent:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = _model_in(field.annotation)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> Any:
    """Find the pydantic model inside ``list[X]``, ``X | None`` and similar annotations."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None
