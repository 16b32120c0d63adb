"""Deploy ``template.yaml`` into moto, as ``sam package`` and ``sam deploy`` would deploy it into AWS.

The template is read as it is: cfn-lint's decoder parses the YAML short-form intrinsics,
aws-sam-translator turns the SAM template into CloudFormation, and moto's CloudFormation
backend creates the resources. Call :func:`deploy_local_stack` inside an active
``moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})``.

moto's CloudFormation cannot create every resource type, and its models drop some properties.
This module fills each gap with a direct API call, listed here, and refuses a resource type that
it does not know:

- ``AWS::Scheduler::Schedule`` has no moto CloudFormation model: it is created with
  ``scheduler.create_schedule``.
- ``AWS::CloudWatch::Alarm`` has none either: it is created with ``cloudwatch.put_metric_alarm``.
- ``AWS::S3::BucketPolicy`` has no moto CloudFormation model either, and is left out: moto
  treats a Deny statement whose condition does not match as a denial, so the TLS-only policy
  would refuse every request to the bucket (see ``TYPES_LEFT_OUT``).
- ``AWS::S3::Bucket``: moto applies only the encryption's algorithm and key; the whole
  encryption (with its bucket key), public access block, versioning, ownership controls, Object
  Lock and lifecycle rules are put on the bucket afterwards.
- ``AWS::DynamoDB::Table``: point-in-time recovery and time to live are switched on afterwards;
  its encryption is handed to moto under the API's name for the switch (``Enabled``).
- ``AWS::KMS::Key`` and ``AWS::IAM::Role``: moto stores a key policy, or a role's inline
  policies, as Python objects instead of JSON documents; they are put again as JSON.
- ``AWS::StepFunctions::StateMachine``: moto ignores ``DefinitionSubstitutions``, logging and
  tracing, and with ``execute_state_machine`` on its Step Functions API does not see machines
  that its CloudFormation created; each machine is given its substituted definition, logging
  and tracing through the API, and created there under the same ARN when missing.

moto also ignores a function's ``Architectures`` and ``TracingConfig`` and a role's
``ManagedPolicyArns``; none of them changes a local run. Property values for the steps above are
resolved by moto itself: each is read back through a stack output written with
``Fn::ToJsonString``, so conditions, ``Fn::If`` and references behave as in the real stack
(``AWS::NoValue``, which moto writes there as null, is dropped).
"""

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from cfnlint.decode import cfn_yaml
from moto.cloudformation.parsing import get_model_map
from samtranslator.parser.parser import Parser
from samtranslator.translator.arn_generator import ArnGenerator
from samtranslator.translator.translator import Translator

# Resource types that moto's CloudFormation backend creates by itself.
TYPES_CREATED_BY_MOTO = frozenset(
    {
        "AWS::CloudWatch::Dashboard",
        "AWS::DynamoDB::Table",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::KMS::Key",
        "AWS::Lambda::Function",
        "AWS::Logs::LogGroup",
        "AWS::S3::Bucket",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::StepFunctions::StateMachine",
    }
)

# Resource types without a moto CloudFormation model, created here with a direct API call.
TYPES_CREATED_DIRECTLY = frozenset({"AWS::Scheduler::Schedule", "AWS::CloudWatch::Alarm"})

# Resource types the local deployment leaves out. moto's IAMPolicyStatement.is_action_permitted
# (moto/iam/access_control.py) returns DENIED when a statement's condition does not match,
# whatever its Effect: the bucket's "deny unless aws:SecureTransport" statement would refuse
# every request to the export bucket.
TYPES_LEFT_OUT = frozenset({"AWS::S3::BucketPolicy"})

# AWS managed policies that the SAM transform names for this template (X-Ray for traced
# functions and state machines). An explicit map keeps the transform offline.
_AWS_MANAGED_POLICY_NAMES = ("AWSXrayWriteOnlyAccess", "AWSXRayDaemonWriteAccess")

_RESOLVED_OUTPUT_PREFIX = "LocalResolvedProperties"
_ARTIFACT_BUCKET_SUFFIX = "-local-artifacts"
_SUBSTITUTION_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class UnsupportedResourceError(RuntimeError):
    """The template declares a resource type that the local deployment cannot create."""


class LocalDeploymentError(RuntimeError):
    """moto did not create the stack, or the SAM transform produced something unexpected."""


@dataclass(frozen=True)
class LocalFunction:
    """One Lambda function of the stack, described well enough to run its handler in-process."""

    logical_id: str
    name: str
    handler: str
    code_uri: Path
    environment: dict[str, str]


@dataclass(frozen=True)
class LocalStack:
    """What the local deployment created: outputs, physical ids and the Lambda functions."""

    stack_name: str
    region: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    functions: tuple[LocalFunction, ...]

    def function(self, logical_id: str) -> LocalFunction:
        """The function the template declares under ``logical_id``."""
        for function in self.functions:
            if function.logical_id == logical_id:
                return function
        raise KeyError(f"The stack has no function {logical_id!r}; it has {[f.logical_id for f in self.functions]}.")


def deploy_local_stack(
    template_path: Path,
    parameters: dict[str, str],
    region: str = "us-east-1",
    stack_name: str = "workmail-backup",
) -> LocalStack:
    """Create the stack of ``template_path`` in moto and return what it created.

    ``parameters`` maps template parameter names to values; omitted ones take their defaults.
    Raises UnsupportedResourceError for a resource type this module does not handle, and
    LocalDeploymentError when moto does not complete the stack.
    """
    template_path = Path(template_path).resolve()
    sam_template = _load_template(template_path)
    code_uris = _function_code_uris(sam_template, template_path.parent)
    definitions = _inline_state_machine_definitions(sam_template, template_path.parent)
    _point_code_uris_at_artifact(sam_template, code_uris, stack_name, region)

    template = _transform(sam_template, parameters, region)
    _check_resource_types(template)
    # The file's own text, not SAM's re-serialised copy of it.
    for logical_id, text in definitions.items():
        template["Resources"][logical_id]["Properties"]["DefinitionString"] = text

    moto_template, completed_later = _split_for_moto(template)
    cloudformation = boto3.client("cloudformation", region_name=region)
    _create_stack(cloudformation, stack_name, moto_template, parameters)

    outputs, resolved = _read_outputs(cloudformation, stack_name)
    physical_ids = _physical_ids(cloudformation, stack_name)
    _complete_resources(completed_later, resolved, physical_ids, stack_name, region)

    functions = _describe_functions(template, code_uris, physical_ids, region)
    return LocalStack(stack_name, region, outputs, physical_ids, functions)


def _load_template(template_path: Path) -> dict[str, Any]:
    """Parse the SAM template, short-form intrinsics included, into plain dicts and lists."""
    try:
        decoded = cfn_yaml.load(str(template_path))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise LocalDeploymentError(f"{template_path} is not a readable YAML template: {error}") from None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("Resources"), dict):
        raise LocalDeploymentError(f"{template_path} has no Resources section; is it this project's template.yaml?")
    return json.loads(json.dumps(decoded))


def _serverless_resources(sam_template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in sam_template["Resources"].items()
        if resource["Type"] == resource_type
    }


def _function_code_uris(sam_template: dict[str, Any], base_dir: Path) -> dict[str, Path]:
    """Local CodeUri of each function, its own or the one in Globals."""
    default_code_uri = sam_template.get("Globals", {}).get("Function", {}).get("CodeUri")
    code_uris = {}

    for logical_id, resource in _serverless_resources(sam_template, "AWS::Serverless::Function").items():
        code_uri = resource.get("Properties", {}).get("CodeUri", default_code_uri)
        if not isinstance(code_uri, str):
            raise LocalDeploymentError(f"{logical_id}: expected a local CodeUri path, found {code_uri!r}.")
        code_uris[logical_id] = (base_dir / code_uri).resolve()

    return code_uris


def _inline_state_machine_definitions(sam_template: dict[str, Any], base_dir: Path) -> dict[str, str]:
    """Replace each local DefinitionUri by its file's content; return each file's text.

    SAM needs the parsed definition to translate the machine; moto later receives the file's
    own text, byte for byte, as ``sam package`` would upload it.
    """
    texts = {}

    for logical_id, resource in _serverless_resources(sam_template, "AWS::Serverless::StateMachine").items():
        properties = resource["Properties"]
        definition_uri = properties.pop("DefinitionUri")
        text = (base_dir / definition_uri).read_text(encoding="utf-8")
        properties["Definition"] = json.loads(text)
        texts[logical_id] = text

    return texts


def _point_code_uris_at_artifact(
    sam_template: dict[str, Any], code_uris: dict[str, Path], stack_name: str, region: str
) -> None:
    """Upload each code directory as a zip to moto's S3 and point the functions at it.

    The zip's content matters little: moto's Docker-less Lambda backend does not run code, and
    the local runner calls the handlers in-process from the CodeUri directory.
    """
    s3 = boto3.client("s3", region_name=region)
    bucket = f"{stack_name}{_ARTIFACT_BUCKET_SUFFIX}"
    _create_bucket(s3, bucket, region)

    for logical_id, code_dir in code_uris.items():
        key = f"{logical_id}.zip"
        s3.put_object(Bucket=bucket, Key=key, Body=_zip_directory(code_dir))
        properties = sam_template["Resources"][logical_id].setdefault("Properties", {})
        properties["CodeUri"] = {"Bucket": bucket, "Key": key}


def _create_bucket(s3: Any, bucket: str, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()

    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*.py")):
            archive.write(path, path.relative_to(directory).as_posix())

    return buffer.getvalue()


def _transform(sam_template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """Translate SAM to CloudFormation offline, for ``region``."""
    partition = ArnGenerator.get_partition_name(region)
    managed_policies = {name: f"arn:{partition}:iam::aws:policy/{name}" for name in _AWS_MANAGED_POLICY_NAMES}
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))

    template = translator.translate(
        sam_template,
        parameter_values=dict(parameters),
        get_managed_policy_map=lambda: managed_policies,
    )

    _check_managed_policy_arns(template)
    return template


def _check_managed_policy_arns(template: dict[str, Any]) -> None:
    """Fail when the transform left a managed policy name that the offline map does not know."""
    for logical_id, resource in template["Resources"].items():
        for policy in resource.get("Properties", {}).get("ManagedPolicyArns", []):
            if isinstance(policy, str) and not policy.startswith("arn:"):
                raise LocalDeploymentError(
                    f"{logical_id} names the AWS managed policy {policy!r}, which the offline policy map "
                    f"does not know. Add it to _AWS_MANAGED_POLICY_NAMES in {__name__}."
                )


def _check_resource_types(template: dict[str, Any]) -> None:
    """Refuse any resource type that neither moto nor this module creates."""
    moto_types = get_model_map()
    missing_from_moto = sorted(TYPES_CREATED_BY_MOTO - moto_types.keys())
    if missing_from_moto:
        raise UnsupportedResourceError(
            f"moto's CloudFormation backend no longer creates {missing_from_moto}; create them directly in {__name__}."
        )

    known_types = TYPES_CREATED_BY_MOTO | TYPES_CREATED_DIRECTLY | TYPES_LEFT_OUT
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] not in known_types:
            raise UnsupportedResourceError(
                f"{logical_id} has type {resource['Type']}, which the local deployment cannot create. "
                f"Teach {__name__} to create it."
            )


def _split_for_moto(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Return the template moto creates, and the resources this module creates or completes.

    Each resource handled here gets a stack output holding its properties as JSON, so that moto
    resolves their references and conditions exactly as it does for the rest of the stack.
    """
    moto_template = json.loads(json.dumps(template))
    outputs = moto_template.setdefault("Outputs", {})
    handled_here = {}
    _name_table_encryption_as_moto_reads_it(moto_template)

    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in TYPES_LEFT_OUT:
            del moto_template["Resources"][logical_id]
        if resource["Type"] not in _DIRECT_CALLS:
            continue
        handled_here[logical_id] = resource
        output = {"Value": {"Fn::ToJsonString": resource.get("Properties", {})}}
        if "Condition" in resource:
            output["Condition"] = resource["Condition"]
        outputs[f"{_RESOLVED_OUTPUT_PREFIX}{logical_id}"] = output
        if resource["Type"] in TYPES_CREATED_DIRECTLY:
            del moto_template["Resources"][logical_id]

    return moto_template, handled_here


def _name_table_encryption_as_moto_reads_it(template: dict[str, Any]) -> None:
    """moto keeps a table's SSESpecification as given but reads the API's ``Enabled``, not ``SSEEnabled``."""
    for resource in template["Resources"].values():
        encryption = resource.get("Properties", {}).get("SSESpecification")
        if resource["Type"] == "AWS::DynamoDB::Table" and encryption and "SSEEnabled" in encryption:
            encryption["Enabled"] = encryption["SSEEnabled"]


def _create_stack(cloudformation: Any, stack_name: str, template: dict[str, Any], parameters: dict[str, str]) -> None:
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )

    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise LocalDeploymentError(
            f"moto left stack {stack_name} in {stack['StackStatus']}: {stack.get('StackStatusReason')}"
        )


def _read_outputs(cloudformation: Any, stack_name: str) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Split the stack outputs into the template's own and the resolved properties."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {}
    resolved = {}

    for output in stack.get("Outputs", []):
        key = output["OutputKey"]
        if key.startswith(_RESOLVED_OUTPUT_PREFIX):
            resolved[key.removeprefix(_RESOLVED_OUTPUT_PREFIX)] = _without_no_values(json.loads(output["OutputValue"]))
        else:
            outputs[key] = output["OutputValue"]

    return outputs, resolved


def _without_no_values(value: Any) -> Any:
    """Drop what ``AWS::NoValue`` left behind: moto's Fn::ToJsonString writes it as null."""
    if isinstance(value, dict):
        return {key: _without_no_values(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_no_values(item) for item in value if item is not None]
    return value


def _physical_ids(cloudformation: Any, stack_name: str) -> dict[str, str]:
    paginator = cloudformation.get_paginator("list_stack_resources")

    return {
        summary["LogicalResourceId"]: summary["PhysicalResourceId"]
        for page in paginator.paginate(StackName=stack_name)
        for summary in page["StackResourceSummaries"]
    }


def _complete_resources(
    resources: dict[str, dict[str, Any]],
    resolved: dict[str, dict[str, Any]],
    physical_ids: dict[str, str],
    stack_name: str,
    region: str,
) -> None:
    """Create or complete, by direct API calls, what moto's CloudFormation left out.

    A resource whose condition is false has no resolved properties and is skipped, as
    CloudFormation skips it.
    """
    for logical_id, resource in resources.items():
        if logical_id not in resolved:
            continue
        name = f"{stack_name}-{logical_id}"
        physical_id = _DIRECT_CALLS[resource["Type"]](
            resolved[logical_id], physical_id=physical_ids.get(logical_id), name=name, region=region
        )
        if physical_id:
            physical_ids[logical_id] = physical_id


def _create_schedule(properties: dict[str, Any], *, name: str, region: str, **_: Any) -> str:
    """Create the schedule; its CloudFormation properties have the API's shape."""
    scheduler = boto3.client("scheduler", region_name=region)
    schedule_name = properties.get("Name", name)[:64]
    api_fields = (
        "Description",
        "GroupName",
        "ScheduleExpression",
        "ScheduleExpressionTimezone",
        "FlexibleTimeWindow",
        "State",
        "Target",
        "StartDate",
        "EndDate",
        "KmsKeyArn",
    )

    scheduler.create_schedule(Name=schedule_name, **{key: properties[key] for key in api_fields if key in properties})
    return schedule_name


def _create_alarm(properties: dict[str, Any], *, name: str, region: str, **_: Any) -> str:
    """Create the alarm; its CloudFormation properties have the API's shape, numbers aside."""
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    alarm_name = properties.get("AlarmName", name)
    numbers = {"Period": int, "EvaluationPeriods": int, "DatapointsToAlarm": int, "Threshold": float}
    settings = {key: numbers.get(key, lambda value: value)(value) for key, value in properties.items()}

    cloudwatch.put_metric_alarm(**{**settings, "AlarmName": alarm_name})
    return alarm_name


def _complete_bucket(properties: dict[str, Any], *, physical_id: str, region: str, **_: Any) -> None:
    """Apply the bucket settings moto's model drops; but for encryption, their CloudFormation shape is the API's."""
    s3 = boto3.client("s3", region_name=region)

    if "BucketEncryption" in properties:
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **_without(rule, "ServerSideEncryptionByDefault"),
            }
            for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=physical_id, ServerSideEncryptionConfiguration={"Rules": rules})

    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=physical_id, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
        )

    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(Bucket=physical_id, VersioningConfiguration=properties["VersioningConfiguration"])

    if "OwnershipControls" in properties:
        s3.put_bucket_ownership_controls(Bucket=physical_id, OwnershipControls=properties["OwnershipControls"])

    if "ObjectLockConfiguration" in properties:
        # After versioning: S3 keeps Object Lock on versioned buckets only.
        s3.put_object_lock_configuration(
            Bucket=physical_id, ObjectLockConfiguration=_api_object_lock(properties["ObjectLockConfiguration"])
        )

    if "LifecycleConfiguration" in properties:
        rules = [_api_lifecycle_rule(rule) for rule in properties["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=physical_id, LifecycleConfiguration={"Rules": rules})


def _api_object_lock(configuration: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's ObjectLockConfiguration in the API's shape (the same, with integer days)."""
    retention = dict(configuration["Rule"]["DefaultRetention"])
    for unit in ("Days", "Years"):
        if unit in retention:
            retention[unit] = int(retention[unit])
    return {"ObjectLockEnabled": configuration["ObjectLockEnabled"], "Rule": {"DefaultRetention": retention}}


def _api_lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """One CloudFormation lifecycle rule in the API's shape, for the properties this template uses."""
    api_rule: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        api_rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    if "Transitions" in rule:
        api_rule["Transitions"] = [
            {"Days": int(transition["TransitionInDays"]), "StorageClass": transition["StorageClass"]}
            for transition in rule["Transitions"]
        ]
    if "ExpirationInDays" in rule:
        api_rule["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        api_rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    return api_rule


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in mapping.items() if name != key}


def _complete_table(properties: dict[str, Any], *, physical_id: str, region: str, **_: Any) -> None:
    dynamodb = boto3.client("dynamodb", region_name=region)

    recovery = properties.get("PointInTimeRecoverySpecification")
    if recovery:
        dynamodb.update_continuous_backups(
            TableName=physical_id,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": recovery["PointInTimeRecoveryEnabled"]},
        )

    time_to_live = properties.get("TimeToLiveSpecification")
    if time_to_live and _is_true(time_to_live["Enabled"]):
        dynamodb.update_time_to_live(
            TableName=physical_id,
            TimeToLiveSpecification={"AttributeName": time_to_live["AttributeName"], "Enabled": True},
        )


def _is_true(value: Any) -> bool:
    """A CloudFormation boolean, which moto may hand back as a string."""
    return value is True or str(value).lower() == "true"


def _complete_key(properties: dict[str, Any], *, physical_id: str, region: str, **_: Any) -> None:
    kms = boto3.client("kms", region_name=region)
    kms.put_key_policy(KeyId=physical_id, PolicyName="default", Policy=json.dumps(properties["KeyPolicy"]))


def _complete_role(properties: dict[str, Any], *, physical_id: str, region: str, **_: Any) -> None:
    iam = boto3.client("iam", region_name=region)

    for policy in properties.get("Policies", []):
        # SAM writes inline policies without a Version, which IAM reads as 2008-10-17 and moto
        # refuses. The two versions differ only in policy variables, which these policies lack.
        document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
        iam.put_role_policy(RoleName=physical_id, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))


def _complete_state_machine(properties: dict[str, Any], *, physical_id: str, region: str, **_: Any) -> None:
    """Give the machine its substituted definition, logging and tracing, which moto's model ignores.

    With ``execute_state_machine`` on, moto's Step Functions API serves a separate backend from
    the one its CloudFormation model writes to, so the machine is missing there: it is created
    through the API under the same name, hence the same ARN that the rest of the stack refers to.
    """
    stepfunctions = boto3.client("stepfunctions", region_name=region)
    definition = _substitute_definition(properties["DefinitionString"], properties.get("DefinitionSubstitutions", {}))
    settings: dict[str, Any] = {"definition": definition}
    if "LoggingConfiguration" in properties:
        settings["loggingConfiguration"] = _api_casing(properties["LoggingConfiguration"])
    if "TracingConfiguration" in properties:
        settings["tracingConfiguration"] = _api_casing(properties["TracingConfiguration"])

    try:
        stepfunctions.describe_state_machine(stateMachineArn=physical_id)
    except stepfunctions.exceptions.StateMachineDoesNotExist:
        stepfunctions.create_state_machine(
            name=physical_id.rsplit(":", 1)[1],
            roleArn=properties["RoleArn"],
            type=properties.get("StateMachineType", "STANDARD"),
            **settings,
        )
        return

    stepfunctions.update_state_machine(stateMachineArn=physical_id, **settings)


def _substitute_definition(definition: str, substitutions: dict[str, Any]) -> str:
    """Replace each ``${Name}`` that DefinitionSubstitutions defines, as CloudFormation does.

    Done here rather than through moto's Fn::Sub, which runs string.Template and would turn
    ASL's ``$$`` context-object paths into ``$``.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(substitutions[name]) if name in substitutions else match.group(0)

    return _SUBSTITUTION_PLACEHOLDER.sub(replace, definition)


def _api_casing(value: Any) -> Any:
    """CloudFormation's PascalCase keys as the Step Functions API's camelCase keys."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _api_casing(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_api_casing(item) for item in value]
    return value


def _describe_functions(
    template: dict[str, Any], code_uris: dict[str, Path], physical_ids: dict[str, str], region: str
) -> tuple[LocalFunction, ...]:
    """Each function as deployed: its name, Handler, CodeUri and resolved environment."""
    lambda_client = boto3.client("lambda", region_name=region)
    functions = []

    for logical_id, code_uri in code_uris.items():
        function_name = physical_ids[logical_id]
        configuration = lambda_client.get_function_configuration(FunctionName=function_name)
        variables = configuration.get("Environment", {}).get("Variables", {})
        function = LocalFunction(
            logical_id=logical_id,
            name=function_name,
            handler=template["Resources"][logical_id]["Properties"]["Handler"],
            code_uri=code_uri,
            # Lambda passes every variable as a string; moto keeps Number parameters as ints.
            environment={variable: str(value) for variable, value in variables.items()},
        )
        functions.append(function)

    return tuple(functions)


# The direct API call that creates, or completes, each resource type that moto's CloudFormation
# does not create, or creates without some of its properties.
_DIRECT_CALLS: dict[str, Callable[..., str | None]] = {
    "AWS::Scheduler::Schedule": _create_schedule,
    "AWS::CloudWatch::Alarm": _create_alarm,
    "AWS::S3::Bucket": _complete_bucket,
    "AWS::DynamoDB::Table": _complete_table,
    "AWS::KMS::Key": _complete_key,
    "AWS::IAM::Role": _complete_role,
    "AWS::StepFunctions::StateMachine": _complete_state_machine,
}
