"""Preflight: check an organization and the export configuration before a run starts any export.

The checks are plain functions over boto3 clients, shared by the PreflightFunction (run by the
organization state machine before StartRun) and by the ``workmail-backup doctor`` command. Each
failed check says what is wrong and how to fix it. The function reads the export configuration
from the environment every function shares (EXPORT_BUCKET, EXPORT_PREFIX, KMS_KEY_ARN,
EXPORT_ROLE_ARN).
"""

import json
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from urllib.parse import unquote

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from mailbox_backup import clients, inputs
from mailbox_backup.config import load_settings
from mailbox_backup.errors import PreflightFailedError
from mailbox_backup.observability import logger, metrics, tracer

EXPORT_SERVICE = "export.workmail.amazonaws.com"
PUBLIC_ACCESS_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@dataclass(frozen=True)
class CheckResult:
    """One prerequisite: whether it holds, what was found, and how to fix it if not."""

    name: str
    passed: bool
    detail: str
    fix: str = ""

    def as_line(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.name}: {verdict}: {self.detail}" + (f" Fix: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class ExportConfiguration:
    """Where WorkMail is asked to write: bucket and prefix, key, and the role it assumes."""

    bucket: str
    prefix: str
    kms_key_arn: str
    role_arn: str


@dataclass(frozen=True)
class AwsClients:
    """The clients the checks read through (the organization's region for every one of them)."""

    workmail: object
    s3: object
    kms: object
    iam: object
    sts: object


def _passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail)


def _failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, False, detail, fix)


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    organization_id = inputs.organization_id(event)
    logger.append_keys(organization_id=organization_id, run_id=event.get("runId"))
    settings = load_settings()
    configuration = ExportConfiguration(
        settings.export_bucket, settings.export_prefix, settings.kms_key_arn, settings.export_role_arn
    )

    results = run_checks(default_clients(), organization_id, configuration)

    failed = [result for result in results if not result.passed]
    logger.info("Preflight finished", extra={"passed": not failed, "failed_checks": [r.name for r in failed]})
    if failed:
        raise PreflightFailedError(
            f"Preflight failed for {organization_id}; no export was started. "
            + " ".join(result.as_line() for result in failed)
        )
    return {"passed": True, "checks": [asdict(result) for result in results]}


def default_clients() -> AwsClients:
    return AwsClients(clients.workmail(), clients.s3(), clients.kms(), clients.iam(), clients.sts())


def run_checks(aws: AwsClients, organization_id: str, configuration: ExportConfiguration) -> list[CheckResult]:
    """Every check, in the order the export service meets them; none stops the others."""
    organization, organization_arn = check_organization(aws.workmail, organization_id)
    region = organization_arn.split(":")[3] if organization_arn else aws.s3.meta.region_name
    account_id = aws.sts.get_caller_identity()["Account"]
    # An organization WorkMail cannot describe is checked against the ARN it would have here.
    organization_arn = organization_arn or f"arn:aws:workmail:{region}:{account_id}:organization/{organization_id}"

    return [
        organization,
        check_bucket(aws.s3, configuration.bucket, region),
        check_key(aws.kms, configuration.kms_key_arn, region),
        check_role_trust(aws.iam, configuration.role_arn, account_id, organization_arn),
        check_role_permissions(aws.iam, configuration),
    ]


# Organization -------------------------------------------------------------------------------


def check_organization(workmail, organization_id: str) -> tuple[CheckResult, str | None]:
    """The organization exists here and is Active; also returns its ARN (None if not found)."""
    name = "organization"
    try:
        organization = workmail.describe_organization(OrganizationId=organization_id)
    except ClientError as error:
        if _error_code(error) != "OrganizationNotFoundException":
            raise
        fix = "Check the OrganizationIds parameter and that the stack is deployed in the organization's region."
        return _failed(name, f"{organization_id} was not found in this account and region.", fix), None

    state = organization.get("State", "unknown")
    if state.lower() != "active":
        fix = "Wait until the organization is Active again in the WorkMail console; exports need an active one."
        return _failed(name, f"{organization_id} is {state}, not Active.", fix), organization.get("ARN")
    return _passed(name, f"{organization_id} ({organization.get('Alias', '')}) is Active."), organization.get("ARN")


# Bucket ---------------------------------------------------------------------------------------


def check_bucket(s3, bucket: str, region: str) -> CheckResult:
    """The bucket exists, is in the organization's region and blocks every kind of public access."""
    name = "bucket"
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    except ClientError as error:
        if _error_code(error) in ("NoSuchBucket", "404"):
            fix = "Create it, or set ExistingExportBucketName empty and redeploy so the stack creates one."
            return _failed(name, f"s3://{bucket} does not exist.", fix)
        raise

    if location != region:
        fix = f"Use a bucket in {region}: WorkMail writes only to buckets in the organization's region."
        return _failed(name, f"s3://{bucket} is in {location}, not in {region}.", fix)

    unblocked = _public_access_not_blocked(s3, bucket)
    if unblocked:
        fix = "Turn on all four Block Public Access settings of the bucket; WorkMail refuses a public bucket."
        return _failed(name, f"s3://{bucket} does not block public access ({', '.join(unblocked)} off).", fix)
    return _passed(name, f"s3://{bucket} is in {region} and blocks public access.")


def _public_access_not_blocked(s3, bucket: str) -> list[str]:
    try:
        settings = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as error:
        if _error_code(error) != "NoSuchPublicAccessBlockConfiguration":
            raise
        settings = {}
    return [setting for setting in PUBLIC_ACCESS_SETTINGS if not settings.get(setting)]


# Key ------------------------------------------------------------------------------------------


def check_key(kms, key_arn: str, region: str) -> CheckResult:
    """The key exists, is enabled, is a symmetric encryption key, and is in the organization's region."""
    name = "key"
    try:
        key = kms.describe_key(KeyId=key_arn)["KeyMetadata"]
    except ClientError as error:
        if _error_code(error) not in ("NotFoundException", "AccessDeniedException"):
            raise
        fix = "Set ExistingKmsKeyArn to an existing key, or empty so the stack creates one."
        return _failed(name, f"{key_arn} does not exist or cannot be described.", fix)

    key_region = key["Arn"].split(":")[3]
    if key_region != region:
        return _failed(name, f"{key_arn} is in {key_region}, not in {region}.", f"Use a KMS key in {region}.")
    if key.get("KeyState") != "Enabled":
        fix = "Enable the key (kms enable-key), or cancel its deletion if it is pending deletion."
        return _failed(name, f"{key_arn} is {key.get('KeyState')}, not Enabled.", fix)
    if key.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT" or key.get("KeyUsage") != "ENCRYPT_DECRYPT":
        fix = "Use a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)."
        return _failed(name, f"{key_arn} is a {key.get('KeySpec')} {key.get('KeyUsage')} key.", fix)
    return _passed(name, f"{key_arn} is an enabled symmetric key in {region}.")


# Export role ---------------------------------------------------------------------------------


def check_role_trust(iam, role_arn: str, account_id: str, organization_arn: str) -> CheckResult:
    """The role trusts the export service, limited by aws:SourceAccount and aws:SourceArn to us."""
    name = "export role trust"
    try:
        role = iam.get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]
    except ClientError as error:
        if _error_code(error) != "NoSuchEntity":
            raise
        fix = "Set ExistingExportRoleArn empty and redeploy so the stack creates the role."
        return _failed(name, f"{role_arn} does not exist.", fix)

    statements = _statements(role.get("AssumeRolePolicyDocument") or {})
    if any(trusts_export_service(statement, account_id, organization_arn) for statement in statements):
        return _passed(name, f"{role_arn} trusts {EXPORT_SERVICE} for account {account_id} and {organization_arn}.")
    fix = (
        f"Let {EXPORT_SERVICE} assume the role (sts:AssumeRole) with conditions aws:SourceAccount = {account_id} "
        f"and aws:SourceArn = {organization_arn}, as the WorkMail administrator guide shows for mailbox export."
    )
    return _failed(name, f"{role_arn} does not trust {EXPORT_SERVICE} for this account and organization.", fix)


def trusts_export_service(statement: dict, account_id: str, organization_arn: str) -> bool:
    """Whether one trust statement lets the export service assume the role, for exactly this caller."""
    principal = statement.get("Principal")
    services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
    assumes = any(fnmatchcase("sts:AssumeRole", action) for action in _as_list(statement.get("Action", [])))
    if statement.get("Effect") != "Allow" or EXPORT_SERVICE not in services or not assumes:
        return False

    conditions = {
        key.lower(): values
        for clauses in (statement.get("Condition") or {}).values()
        for key, values in clauses.items()
    }
    source_accounts = _as_list(conditions.get("aws:sourceaccount", []))
    source_arns = _as_list(conditions.get("aws:sourcearn", []))
    return account_id in source_accounts and any(fnmatchcase(organization_arn, arn) for arn in source_arns)


def check_role_permissions(iam, configuration: ExportConfiguration) -> CheckResult:
    """The role's policies allow what the export writes: the objects, and the key through S3."""
    name = "export role permissions"
    role_name = configuration.role_arn.rsplit("/", 1)[-1]
    try:
        statements = _role_policy_statements(iam, role_name)
    except ClientError as error:
        if _error_code(error) != "NoSuchEntity":
            raise
        return _failed(name, f"{configuration.role_arn} does not exist.", "See the export role trust check.")

    missing = [
        f"{action} on {resource}"
        for action, resource in required_grants(configuration)
        if not is_allowed(statements, action, resource)
    ]
    if missing:
        fix = "Add an Allow statement for these to the role's policy (template.yaml's ExportRolePolicy shows one)."
        return _failed(name, f"{configuration.role_arn} is not allowed {'; '.join(missing)}.", fix)
    return _passed(name, f"{configuration.role_arn} may write encrypted exports to s3://{configuration.bucket}.")


def required_grants(configuration: ExportConfiguration) -> list[tuple[str, str]]:
    """The actions and resources the WorkMail administrator guide lists for the export role."""
    bucket_arn = f"arn:aws:s3:::{configuration.bucket}"
    object_arn = f"{bucket_arn}/{configuration.prefix}/export.zip"
    return [
        ("s3:PutObject", object_arn),
        ("s3:AbortMultipartUpload", object_arn),
        ("s3:GetBucketPolicyStatus", bucket_arn),
        ("kms:GenerateDataKey", configuration.kms_key_arn),
        ("kms:Decrypt", configuration.kms_key_arn),
    ]


def is_allowed(statements: list[dict], action: str, resource: str) -> bool:
    """Whether some Allow statement covers the action on the resource and no Deny refuses it.

    Limitation: conditions are not evaluated (the export role's kms:ViaService condition holds
    for the export by design); a condition that the export cannot meet goes unnoticed here.
    """

    def covers(statement: dict) -> bool:
        actions = _as_list(statement.get("Action", []))
        resources = _as_list(statement.get("Resource", []))
        return any(fnmatchcase(action.lower(), pattern.lower()) for pattern in actions) and any(
            fnmatchcase(resource, pattern) for pattern in resources
        )

    if any(statement.get("Effect") == "Deny" and covers(statement) for statement in statements):
        return False
    return any(statement.get("Effect") == "Allow" and covers(statement) for statement in statements)


def _role_policy_statements(iam, role_name: str) -> list[dict]:
    statements = []
    for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        statements += _statements(document)
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
        statements += _statements(version["PolicyVersion"]["Document"])
    return statements


def _statements(document: dict | str) -> list[dict]:
    if isinstance(document, str):
        # IAM returns documents URL-encoded; boto3 decodes them, other callers may not.
        document = json.loads(unquote(document))
    return _as_list(document.get("Statement", []))


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]
