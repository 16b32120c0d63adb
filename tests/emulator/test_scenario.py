"""Scenario files: what loads, what is refused, and how the refusal reads."""

import json
import re
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from workmail_backup.local.emulator import ScenarioError, load_scenario
from workmail_backup.local.emulator.scenario import FAULTABLE_AWS_OPERATIONS

from .conftest import ORG, START, organization, scenario

REPOSITORY = Path(__file__).resolve().parents[2]


def problems_of(definition) -> list[str]:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(definition)
    return raised.value.problems


def test_demo_scenario_loads_with_a_realistic_population():
    demo = load_scenario(REPOSITORY / "scenarios" / "demo.yaml")
    organization_ = demo.organizations[0]
    users = organization_.all_users()

    assert 190 <= len(users) <= 220
    assert len(organization_.all_resources()) >= 2
    assert {user.state for user in users} == {"ENABLED", "DISABLED", "DELETED"}
    assert {user.role for user in users} >= {"USER", "SYSTEM_USER"}
    sizes = sorted(user.mailbox_mb for user in users if user.role == "USER")
    # Many small mailboxes and a long tail of large ones.
    assert sizes[len(sizes) // 2] < 1000 < sizes[-1]
    assert len(organization_.jobs) == 2


def test_yaml_text_json_text_and_file_path_load_the_same(tmp_path: Path):
    yaml_text = f"""
start: "{START.isoformat()}"
organizations:
  - id: {ORG}
    alias: example-corp
    users:
      - {{name: alice, email: alice@example.com, mailbox_mb: 512}}
"""
    json_text = json.dumps(
        {
            "start": "2026-12-03T01:00:00Z",
            "organizations": [
                {
                    "id": ORG,
                    "alias": "example-corp",
                    "users": [{"name": "alice", "email": "alice@example.com", "mailbox_mb": 512}],
                }
            ],
        }
    )
    path = tmp_path / "night.yaml"
    path.write_text(yaml_text)

    loaded = [
        load_scenario(yaml_text),
        load_scenario(json_text),
        load_scenario(path),
        load_scenario(str(path)),
    ]

    assert len({item.organizations[0].all_users()[0].id for item in loaded}) == 1
    assert all(item.start == START for item in loaded)


def test_generated_users_are_the_same_for_the_same_seed_and_differ_for_another():
    def generated(seed: int):
        definition = scenario(organization(generate_users={"count": 50, "seed": seed, "domain": "example.com"}))
        return [(user.name, user.mailbox_mb) for user in load_scenario(definition).organizations[0].all_users()]

    assert generated(7) == generated(7)
    assert generated(7) != generated(8)


def test_generated_users_honour_the_requested_special_users():
    definition = scenario(
        organization(
            users=[],
            generate_users={
                "count": 40,
                "seed": 1,
                "disabled": 3,
                "deleted": 2,
                "system": 1,
                "remote": 1,
                "max_mb": 5000,
            },
        )
    )
    users = load_scenario(definition).organizations[0].all_users()

    assert sum(user.state == "DISABLED" for user in users) == 3
    assert sum(user.state == "DELETED" for user in users) == 2
    assert sum(user.role == "SYSTEM_USER" for user in users) == 1
    assert sum(user.role == "REMOTE_USER" for user in users) == 1
    assert max(user.mailbox_mb for user in users) <= 5000


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["organizations"][0]["users"][1].update(mailbox_mb=-5),
            "organizations[0].users[1].mailbox_mb: must be >= 0, got -5",
        ),
        (
            lambda d: d["organizations"][0]["users"][0].update(mailbox_gb=3),
            "organizations[0].users[0].mailbox_gb: unknown key 'mailbox_gb'; did you mean 'mailbox_mb'?",
        ),
        (
            lambda d: d["organizations"][0].update(id="m-NOTHEX"),
            "organizations[0].id: must match ^m-[0-9a-f]{32}$, got 'm-NOTHEX'",
        ),
        (
            lambda d: d["organizations"][0]["users"][2].update(state="disabled"),
            "organizations[0].users[2].state: must be one of 'ENABLED', 'DISABLED' or 'DELETED', got 'disabled'",
        ),
        (
            lambda d: d["export_speed"].update(mb_per_minute=0),
            "export_speed.mb_per_minute: must be >= 0.1, got 0",
        ),
        (
            lambda d: d["organizations"][0]["users"][0].update(mailbox_mb=True),
            "organizations[0].users[0].mailbox_mb:",
        ),
        (
            lambda d: d["organizations"][0]["users"][0].update(mailbox_mb=60_000),
            "organizations[0].users[0].mailbox_mb: must be <= 51200, got 60000",
        ),
        (
            lambda d: d.pop("start"),
            "start: is required but missing",
        ),
        (
            lambda d: d.update(start="2026-12-03T01:00:00"),
            "start: time 2026-12-03T01:00:00 has no time zone; add 'Z' for UTC",
        ),
        (
            lambda d: d["organizations"][0].update(jobs=[{"entity": "alice", "started": "yesterday"}]),
            "organizations[0].jobs[0].started: expected a time relative to start",
        ),
        (
            lambda d: d["organizations"][0].update(jobs=[{"entity": "zed", "started": "-2h"}]),
            "organizations[0].jobs[0].entity: no user or resource has the id, email or name 'zed'",
        ),
        (
            lambda d: d["organizations"][0]["users"].append({"name": "ALICE", "email": "a2@example.com"}),
            "organizations[0].users[6].name: 'ALICE' is already used by organizations[0].users[0]",
        ),
        (
            lambda d: d["organizations"][0].update(generate_users={"count": 3, "disabled": 2, "deleted": 2}),
            "organizations[0].generate_users: disabled + deleted + system + remote (4) exceeds count (3)",
        ),
        (
            lambda d: d["organizations"][0].update(
                jobs=[{"entity": "bob", "started": "-3h", "duration": "1h", "state": "RUNNING"}]
            ),
            "organizations[0].jobs[0].state: RUNNING means running at start",
        ),
        (
            lambda d: d["organizations"][0].update(jobs=[{"entity": "bob", "started": "-3h", "duration": "-1h"}]),
            "organizations[0].jobs[0].duration: must not be negative, got '-1h'",
        ),
        (
            lambda d: d.update(organizations=[]),
            "organizations: must have at least 1 item(s)",
        ),
    ],
)
def test_malformed_scenarios_name_the_field_and_the_problem(change, expected):
    definition = scenario()
    change(definition)

    problems = problems_of(definition)

    assert any(problem.startswith(expected) for problem in problems), problems


def test_every_problem_is_reported_on_its_own_line():
    definition = scenario()
    definition["organizations"][0]["users"][0]["mailbox_mb"] = -1
    definition["organizations"][0]["users"][1]["colour"] = "blue"
    definition["region"] = "Mars"

    with pytest.raises(ScenarioError) as raised:
        load_scenario(definition)

    lines = str(raised.value).splitlines()
    assert len(lines) == 3
    assert [line.split(":")[0] for line in lines] == [
        "region",
        "organizations[0].users[0].mailbox_mb",
        "organizations[0].users[1].colour",
    ]


def test_invalid_yaml_names_the_line():
    problems = problems_of("start: 2026-12-03T01:00:00Z\norganizations:\n  - id: m-1\n   alias: x\n")

    assert len(problems) == 1
    assert problems[0].startswith("line 4, column 4: not valid YAML or JSON")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("organizations:\n  - id: m-1\n  alias: x\n", "line 3, column 3: not valid YAML or JSON: this line's indent"),
        ("organizations:\n\t- id: m-1\n", "line 2, column 1: not valid YAML or JSON: a tab character"),
    ],
)
def test_a_misindented_scenario_is_told_what_to_fix_in_plain_words(text, says):
    problems = problems_of(text)

    assert len(problems) == 1 and problems[0].startswith(says)


def test_a_key_given_twice_is_refused_not_silently_overwritten():
    problems = problems_of("start: 2026-12-03T01:00:00Z\nregion: us-east-1\nregion: eu-west-1\norganizations: []\n")

    assert len(problems) == 1
    assert problems[0].startswith('line 3, column 1: not valid YAML or JSON: found duplicate key "region"')


def test_a_missing_file_is_reported_as_such(tmp_path: Path):
    problems = problems_of(str(tmp_path / "absent.yaml"))

    assert problems == [f"scenario: file not found: {tmp_path / 'absent.yaml'}"]


def test_the_example_in_the_format_documentation_loads():
    document = (REPOSITORY / "docs" / "scenario-format.md").read_text()
    example = document.split("## Example", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]

    loaded = load_scenario(example)

    assert loaded.organizations[0].faults.entity_changes[0].entity == "alice"


def test_the_faults_scenario_loads():
    loaded = load_scenario(REPOSITORY / "scenarios" / "faults.yaml")

    faults = loaded.organizations[0].faults
    assert len(faults.errors) == 3 and len(faults.job_outcomes) == 3 and len(faults.entity_changes) == 1


def test_a_region_without_workmail_is_refused_with_the_ones_that_have_it():
    definition = scenario()
    definition["region"] = "eu-central-1"

    with pytest.raises(ScenarioError, match="region: must be one of 'us-east-1', 'us-west-2' or 'eu-west-1'"):
        load_scenario(definition)


def test_values_that_would_break_the_night_are_refused_up_front():
    problems = problems_of(
        {
            "start": "1970-01-01T00:00:00Z",
            "account_id": 12345678901,
            "export_speed": {"mb_per_minute": 1e-300},
            "organizations": [
                {
                    "id": "m-0123456789abcdef0123456789abcdef",
                    "alias": "a",
                    "users": [{"name": "x", "email": "x@a.com", "export_minutes": 1e12}],
                    "jobs": [{"entity": "x", "started": "-99999999999d"}],
                }
            ],
        }
    )

    assert [problem.split(":")[0] for problem in problems] == [
        "start",
        "account_id",
        "export_speed.mb_per_minute",
        "organizations[0].users[0].export_minutes",
        "organizations[0].jobs[0].started",
    ]
    assert "in quotes" in problems[1]


def test_an_unquoted_twelve_digit_account_id_is_read_as_the_account_id():
    loaded = load_scenario(
        {
            "start": "2026-12-03T01:00:00Z",
            "account_id": 210987654321,
            "organizations": [{"id": "m-0123456789abcdef0123456789abcdef", "alias": "a"}],
        }
    )

    assert loaded.account_id == "210987654321"


@pytest.mark.parametrize("other_alias", ["same", "SAME"])
def test_two_organizations_with_one_alias_are_refused(other_alias):
    organization = {"id": "m-0123456789abcdef0123456789abcdef", "alias": "same"}
    other = {"id": "m-0123456789abcdef0123456789abcdee", "alias": other_alias}

    problems = problems_of({"start": "2026-12-03T01:00:00Z", "organizations": [organization, other]})

    assert problems == ["scenario: organization aliases must differ, as WorkMail's do; repeated: same"]


def _with_aws_error(service: str, operation: str) -> dict:
    definition = scenario()
    definition["environment_faults"] = {
        "aws_errors": [{"service": service, "operation": operation, "error": "ThrottlingException"}]
    }
    return definition


@pytest.mark.parametrize(
    ("service", "operation", "expected"),
    [
        (
            "dynamodb",
            "Foo",
            "environment_faults.aws_errors[0].operation: the functions make no dynamodb request 'Foo', so the "
            "fault would never fire; dynamodb requests that can be faulted: BatchWriteItem, GetItem, PutItem, "
            "Query, UpdateItem",
        ),
        ("dynamodb", "put_item", "did you mean 'PutItem'? The dynamodb requests that can be faulted: BatchWriteItem"),
        ("s3", "headobjects", "did you mean 'HeadObject'? The s3 requests that can be faulted: GetBucketLocation"),
        ("s3", "UpdateItem", "UpdateItem is a dynamodb request: set service: dynamodb"),
        # Sent by the emulator writing an export, not by the functions.
        ("s3", "PutObject", "s3 requests that can be faulted: GetBucketLocation, GetPublicAccessBlock, HeadObject"),
    ],
)
def test_an_aws_error_on_a_request_the_functions_never_make_is_refused(service, operation, expected):
    problems = problems_of(_with_aws_error(service, operation))

    assert len(problems) == 1 and problems[0].startswith("environment_faults.aws_errors[0].operation: ")
    assert expected in problems[0]


def test_every_faultable_aws_operation_is_one_the_functions_call():
    functions = REPOSITORY / "functions" / "mailbox_backup"
    table_calls = set(re.findall(r"self\.table\.(\w+)\(", (functions / "ledger.py").read_text()))
    s3_calls = {
        call
        for module in ("preflight.py", "verification.py")
        for call in re.findall(r"\bs3\.(\w+)\(", (functions / module).read_text())
    }
    # batch_writer sends BatchWriteItem; only the operations command `start` withdraws a run, never a night.
    table_calls = (table_calls - {"batch_writer", "delete_item"}) | {"batch_write_item"}

    assert {xform_name(name) for name in FAULTABLE_AWS_OPERATIONS["dynamodb"]} == table_calls
    assert {xform_name(name) for name in FAULTABLE_AWS_OPERATIONS["s3"]} == s3_calls
    session = botocore.session.get_session()
    for service, names in FAULTABLE_AWS_OPERATIONS.items():
        assert set(names) <= set(session.get_service_model(service).operation_names)


def test_cross_field_problems_are_named_in_the_same_pass_as_field_errors():
    definition = scenario()
    organization_ = definition["organizations"][0]
    organization_["users"][1]["mailbox_mb"] = -5
    organization_["jobs"] = [
        {"entity": "alice", "started": "yesterday"},
        {"entity": "zed", "started": "-2h"},
        {"entity": "alice", "started": "-3h", "duration": "1h", "state": "RUNNING"},
    ]
    organization_["faults"] = {
        "errors": [{"operation": "ListUsers", "error": "ThrottlingException", "from": "+2h", "until": "+1h"}]
    }
    definition["region"] = "Mars"

    problems = problems_of(definition)

    assert [problem.split(": ")[0] for problem in problems] == [
        "region",
        "organizations[0].users[1].mailbox_mb",
        "organizations[0].jobs[0].started",
        "organizations[0].jobs[1].entity",
        "organizations[0].jobs[2].state",
        "organizations[0].faults.errors[0].until",
    ]


def test_a_mailbox_with_a_field_error_is_not_also_called_unknown_where_it_is_named():
    definition = scenario()
    organization_ = definition["organizations"][0]
    # bob, whose size is wrong, is still the mailbox the first job names.
    organization_["users"][1]["mailbox_mb"] = -5
    organization_["jobs"] = [{"entity": "BOB", "started": "-2h"}, {"entity": "zed", "started": "-2h"}]

    problems = problems_of(definition)

    assert problems == [
        "organizations[0].users[1].mailbox_mb: must be >= 0, got -5",
        "organizations[0].jobs[1].entity: no user or resource has the id, email or name 'zed'",
    ]


def test_an_error_in_a_setting_that_times_depend_on_leaves_the_cross_field_checks_for_later():
    definition = scenario()
    definition["export_speed"]["mb_per_minute"] = 0
    definition["organizations"][0]["jobs"] = [{"entity": "zed", "started": "-2h"}]

    assert problems_of(definition) == ["export_speed.mb_per_minute: must be >= 0.1, got 0"]


def test_a_default_mail_domain_that_is_no_domain_is_refused_by_its_field():
    definition = scenario(organization(default_mail_domain="not a domain!", generate_users={"count": 3}))

    problems = problems_of(definition)

    assert len(problems) == 1 and problems[0].startswith("organizations[0].default_mail_domain:")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"jobs": [{"entity": "user001", "started": True}]}, "organizations[0].jobs[0].started"),
        ({"jobs": [{"entity": "user001", "started": "-2h", "duration": True}]}, "organizations[0].jobs[0].duration"),
        ({"list_users_includes_resources": "yes"}, "organizations[0].list_users_includes_resources"),
        ({"list_users_includes_resources": 1}, "organizations[0].list_users_includes_resources"),
    ],
)
def test_a_yes_or_no_where_it_does_not_belong_is_refused_by_its_field(change, field):
    problems = problems_of(scenario(organization(**change)))

    assert len(problems) == 1 and problems[0].startswith(f"{field}:")


@pytest.mark.parametrize("text", ["", "# nothing yet\n"])
def test_an_empty_scenario_file_is_called_empty(tmp_path: Path, text: str):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)

    assert problems_of(path) == ["scenario: the file is empty; see scenarios/demo.yaml for one to start from"]


def test_a_change_after_a_mailbox_was_deleted_is_refused():
    changes = [
        {"entity": "bob", "state": "DISABLED", "at": "+2h"},
        {"entity": "bob@example.com", "state": "DELETED", "at": "+1h"},
    ]

    problems = problems_of(scenario(organization(faults={"entity_changes": changes})))

    assert problems == [
        "organizations[0].faults.entity_changes[0]: bob is already deleted by entity_changes[1]; "
        "WorkMail changes a deleted entity no more"
    ]
