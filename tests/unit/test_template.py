"""template.yaml lints clean, and its wiring agrees with the handlers and state machine files."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
TEMPLATE = cfn_yaml.load(str(TEMPLATE_PATH))
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {key: value for key, value in RESOURCES.items() if value["Type"] == "AWS::Serverless::Function"}
STATE_MACHINES = {key: value for key, value in RESOURCES.items() if value["Type"] == "AWS::Serverless::StateMachine"}

# SAM policy templates whose grants are scoped to the resource passed in.
SCOPED_POLICY_TEMPLATES = {
    "DynamoDBCrudPolicy",
    "LambdaInvokePolicy",
    "SNSPublishMessagePolicy",
    "StepFunctionsExecutionPolicy",
}
ORGANIZATION_IDS = ["m-" + digit * 32 for digit in "abc"]


def test_template_passes_cfn_lint():
    matches = lint_file(TEMPLATE_PATH)

    assert [str(match) for match in matches] == []


def test_template_passes_sam_validate_lint_offline():
    sam = Path(sys.executable).with_name("sam")
    if not sam.exists():
        pytest.skip(f"aws-sam-cli is not installed next to {sys.executable}")
    # sam validate needs a region and nothing else: no credentials, no network.
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}

    result = subprocess.run(
        [str(sam), "validate", "--lint", "--template", str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_handler_names_a_module_of_the_shared_package(logical_id):
    handler = FUNCTIONS[logical_id]["Properties"]["Handler"]

    assert re.fullmatch(r"mailbox_backup\.[a-z][a-z0-9_]*\.handler", handler)


def test_functions_share_the_global_code_uri():
    assert TEMPLATE["Globals"]["Function"]["CodeUri"] == "functions/"
    assert all("CodeUri" not in function["Properties"] for function in FUNCTIONS.values())


@pytest.mark.parametrize("logical_id", sorted(STATE_MACHINES))
def test_definition_substitutions_match_the_placeholders_of_the_definition(logical_id):
    properties = STATE_MACHINES[logical_id]["Properties"]
    definition_path = ROOT / properties["DefinitionUri"]
    if not definition_path.exists():
        pytest.skip(f"{definition_path.relative_to(ROOT)} does not exist yet")

    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition_path.read_text(encoding="utf-8")))

    assert placeholders == set(properties["DefinitionSubstitutions"])


@pytest.mark.parametrize("organization_ids", [ORGANIZATION_IDS[:1], ORGANIZATION_IDS])
def test_schedule_input_is_json_naming_every_organization(organization_ids):
    schedule_input = RESOURCES["NightlySchedule"]["Properties"]["Target"]["Input"]

    rendered = _resolve(schedule_input, {"OrganizationIds": organization_ids})

    assert json.loads(rendered) == {
        "organizationIds": organization_ids,
        "scheduledTime": "<aws.scheduler.scheduled-time>",
    }


@pytest.mark.parametrize("organization_ids", [ORGANIZATION_IDS[:1], ORGANIZATION_IDS])
def test_export_role_trusts_only_the_configured_organizations(organization_ids):
    trust = RESOURCES["ExportRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]

    source_arns = _resolve(trust["Condition"]["ArnLike"]["aws:SourceArn"], {"OrganizationIds": organization_ids})

    assert trust["Principal"] == {"Service": "export.workmail.amazonaws.com"}
    assert source_arns == [f"arn:aws:workmail:*:*:organization/{org}" for org in organization_ids]


def _bucket_policy_statement(sid: str) -> dict:
    # Checked here because the local deployment leaves the bucket policy out (see stack.py).
    statements = RESOURCES["ExportBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (statement,) = [statement for statement in statements if statement["Sid"] == sid]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    return statement


def test_export_bucket_policy_refuses_insecure_transport():
    statement = _bucket_policy_statement("DenyInsecureTransport")

    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_export_bucket_policy_refuses_uploads_asking_for_other_encryption():
    statement = _bucket_policy_statement("DenyUploadsNotEncryptedWithKms")

    assert statement["Action"] == "s3:PutObject"
    assert statement["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption": "false"},
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
    }


def test_export_bucket_policy_refuses_uploads_encrypted_with_another_key():
    statement = _bucket_policy_statement("DenyUploadsEncryptedWithAnotherKey")

    condition = statement["Condition"]
    assert statement["Action"] == "s3:PutObject"
    assert condition["Null"] == {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}
    assert condition["StringNotEquals"]["s3:x-amz-server-side-encryption-aws-kms-key-id"] == {
        "Fn::If": ["CreateExportKey", {"Fn::GetAtt": ["ExportKey", "Arn"]}, {"Ref": "ExistingKmsKeyArn"}]
    }


def test_template_has_no_failed_checkov_check():
    checkov = ROOT / ".venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.fail(f"checkov is not installed in {checkov.parent.parent}; `make test` installs it")

    result = subprocess.run(
        [
            str(checkov),
            "--file",
            str(TEMPLATE_PATH),
            "--framework",
            "cloudformation",
            "--compact",
            "--quiet",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_checkov_suppression_gives_its_reason():
    for logical_id, resource in RESOURCES.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "").split()) >= 8, f"{logical_id} skips {skip['id']} without a reason"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_uses_the_ledger_key_through_dynamodb_only(logical_id):
    statements = [
        statement
        for policy in FUNCTIONS[logical_id]["Properties"].get("Policies", [])
        for statement in policy.get("Statement", [])
        if "kms:Encrypt" in _as_list(statement["Action"])
    ]

    for statement in statements:
        assert statement["Resource"] == {"Fn::GetAtt": ["OperationsKey", "Arn"]}
        assert statement["Condition"] == {
            "StringEquals": {"kms:ViaService": {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"}}
        }


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_may_query_the_ledger_index_exactly_when_its_code_does(logical_id):
    # AWS refuses a query of GSI1 under a policy on the table alone, and moto never checks, so
    # the policy is compared with the code: the Ledger methods that read the index, and the
    # function's own modules that call them.
    handler_module = FUNCTIONS[logical_id]["Properties"]["Handler"].rsplit(".", 1)[0]
    calls = {name for module in _modules_reached(handler_module) for name in _called_methods(module)}
    grants_index = any(
        {"Fn::Sub": "${LedgerTable.Arn}/index/GSI1"} in _as_list(statement["Resource"])
        for policy in FUNCTIONS[logical_id]["Properties"].get("Policies", [])
        for statement in policy.get("Statement", [])
        if "dynamodb:Query" in _as_list(statement["Action"])
    )

    assert grants_index == bool(calls & _ledger_methods_reading_the_index())


def _module_tree(module: str) -> ast.Module:
    return ast.parse((ROOT / "functions" / (module.replace(".", "/") + ".py")).read_text())


def _modules_reached(module: str, seen: set[str] | None = None) -> set[str]:
    """The project's modules a handler imports, directly or through others."""
    seen = set() if seen is None else seen
    seen.add(module)
    for node in ast.walk(_module_tree(module)):
        if isinstance(node, ast.ImportFrom) and node.module == "mailbox_backup":
            imported = [f"mailbox_backup.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mailbox_backup."):
            imported = [node.module]
        else:
            continue
        for name in imported:
            if name not in seen and (ROOT / "functions" / (name.replace(".", "/") + ".py")).is_file():
                _modules_reached(name, seen)
    return seen


def _called_methods(module: str) -> set[str]:
    tree = _module_tree(module)
    return {
        node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


def _ledger_methods_reading_the_index() -> set[str]:
    ledger = next(
        node
        for node in _module_tree("mailbox_backup.ledger").body
        if isinstance(node, ast.ClassDef) and node.name == "Ledger"
    )
    return {
        method.name
        for method in ledger.body
        if isinstance(method, ast.FunctionDef)
        and any(isinstance(keyword, ast.keyword) and keyword.arg == "index" for keyword in ast.walk(method))
    }


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_policies_grant_no_wildcard_actions(logical_id):
    for policy in FUNCTIONS[logical_id]["Properties"].get("Policies", []):
        assert isinstance(policy, dict), f"{logical_id} attaches the managed policy {policy}"
        if "Statement" in policy:
            actions = [action for statement in policy["Statement"] for action in _as_list(statement["Action"])]
            assert not [action for action in actions if "*" in action]
        else:
            assert set(policy) <= SCOPED_POLICY_TEMPLATES


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resolve(value: Any, parameters: dict[str, Any]) -> Any:
    """Evaluate the few intrinsics the schedule input and trust policy use: Ref, Join, Sub, Split."""
    if isinstance(value, list):
        return [_resolve(item, parameters) for item in value]
    if not isinstance(value, dict):
        return value

    ((function, argument),) = value.items()
    if function == "Ref":
        return parameters[argument]
    if function == "Fn::Join":
        return argument[0].join(_resolve(argument[1], parameters))
    if function == "Fn::Split":
        return _resolve(argument[1], parameters).split(argument[0])
    if function == "Fn::Sub":
        text, variables = argument
        resolved = {name: _resolve(item, parameters) for name, item in variables.items()}
        return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda match: resolved[match.group(1)], text)
    raise AssertionError(f"unexpected intrinsic {function}")
