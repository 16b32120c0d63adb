"""template.yaml deploys into moto with every resource the nightly backup relies on."""

import json
import shutil
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from moto import mock_aws

from workmail_backup.local.stack import LocalStack, UnsupportedResourceError, deploy_local_stack

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
ORGANIZATION_IDS = ["m-" + "a" * 32, "m-" + "b" * 32]
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
COMMON_ENVIRONMENT = {
    "LEDGER_TABLE",
    "EXPORT_BUCKET",
    "EXPORT_PREFIX",
    "EXPORT_ROLE_ARN",
    "KMS_KEY_ARN",
    "MAX_CONCURRENT_EXPORTS",
    "MIN_POLL_SECONDS",
    "MAX_POLL_SECONDS",
    "SCHEDULE_TIMEZONE",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_METRICS_NAMESPACE",
}
FUNCTION_IDS = {"DispatchFunction", "PreflightFunction", "StartRunFunction", "ControllerFunction", "FinishRunFunction"}
# A context-object path: CloudFormation leaves "$$" alone, and so must the local deployment.
CONTEXT_PATH = "$$.Execution.Name"


def _copy_project(destination: Path) -> Path:
    """The template, with placeholder state machines and code, in a directory of its own."""
    shutil.copy(ROOT / "template.yaml", destination / "template.yaml")
    package = destination / "functions" / "mailbox_backup"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Placeholder package."""\n')

    template = cfn_yaml.load(str(destination / "template.yaml"))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            properties = resource["Properties"]
            definition_path = destination / properties["DefinitionUri"]
            definition_path.parent.mkdir(exist_ok=True)
            definition_path.write_text(json.dumps(_placeholder_definition(properties["DefinitionSubstitutions"])))

    return destination / "template.yaml"


def _placeholder_definition(substitutions: dict) -> dict:
    """A valid definition that uses each substitution once, in a Pass state's result."""
    names = sorted(substitutions)
    states = {
        name: {"Type": "Pass", "Result": {"value": f"${{{name}}}"}, "Next": following}
        for name, following in zip(names, [*names[1:], "Done"], strict=True)
    }
    states["Done"] = {"Type": "Pass", "Parameters": {"name.$": CONTEXT_PATH}, "End": True}
    return {"Comment": "Placeholder", "StartAt": names[0], "States": states}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    template_path = _copy_project(tmp_path_factory.mktemp("project"))
    with mock_aws(config=MOTO_CONFIG):
        stack = deploy_local_stack(template_path, {"OrganizationIds": ",".join(ORGANIZATION_IDS)}, region=REGION)
        yield stack


def _client(service: str):
    return boto3.client(service, region_name=REGION)


def test_ledger_table_has_the_template_keys_and_index(deployed: LocalStack):
    table = _client("dynamodb").describe_table(TableName=deployed.outputs["LedgerTableName"])["Table"]

    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "GSI1"
    assert index["KeySchema"] == [
        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
        {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
    ]
    assert index["Projection"]["ProjectionType"] == "ALL"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is True


def test_ledger_table_has_point_in_time_recovery(deployed: LocalStack):
    backups = _client("dynamodb").describe_continuous_backups(TableName=deployed.outputs["LedgerTableName"])

    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"


def test_export_bucket_is_private_versioned_and_encrypted_with_the_export_key(deployed: LocalStack):
    s3 = _client("s3")
    bucket = deployed.outputs["ExportBucketName"]

    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": deployed.outputs["KmsKeyArn"],
    }
    assert rule["BucketKeyEnabled"] is True
    assert set(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values()) == {True}
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_export_bucket_takes_exports_encrypted_with_the_export_key(deployed: LocalStack):
    # The TLS-only bucket policy is left out locally: moto would refuse every request under it.
    s3 = _client("s3")
    bucket = deployed.outputs["ExportBucketName"]
    key = "workmail-exports/m-example/run/mailbox/job.zip"

    s3.put_object(
        Bucket=bucket, Key=key, Body=b"zip", ServerSideEncryption="aws:kms", SSEKMSKeyId=deployed.outputs["KmsKeyArn"]
    )

    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["SSEKMSKeyId"] == deployed.outputs["KmsKeyArn"]
    assert head["VersionId"] != "null"
    assert "ExportBucketPolicy" not in deployed.physical_ids


def test_export_key_rotates_and_serves_the_export_role_through_s3_only(deployed: LocalStack):
    kms = _client("kms")
    key_arn = deployed.outputs["KmsKeyArn"]

    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    (export_statement,) = [s for s in policy["Statement"] if s["Sid"] == "AllowWorkMailExportThroughS3Only"]
    assert export_statement["Principal"] == {"AWS": deployed.outputs["ExportRoleArn"]}
    assert export_statement["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}


def test_export_role_trusts_workmail_for_the_configured_organizations_only(deployed: LocalStack):
    role_name = deployed.outputs["ExportRoleArn"].rsplit("/", 1)[1]
    role = _client("iam").get_role(RoleName=role_name)["Role"]

    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "export.workmail.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == [
        f"arn:aws:workmail:*:*:organization/{org}" for org in ORGANIZATION_IDS
    ]


def test_export_role_may_write_under_the_export_prefix_only(deployed: LocalStack):
    iam = _client("iam")
    role_name = deployed.outputs["ExportRoleArn"].rsplit("/", 1)[1]

    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    bucket_arn = f"arn:aws:s3:::{deployed.outputs['ExportBucketName']}"
    s3_statement, kms_statement = document["Statement"]
    assert s3_statement["Resource"] == [bucket_arn, f"{bucket_arn}/workmail-exports/*"]
    assert kms_statement["Resource"] == deployed.outputs["KmsKeyArn"]


def test_both_state_machines_exist_with_substituted_definitions(deployed: LocalStack):
    stepfunctions = _client("stepfunctions")
    organization_arn = deployed.outputs["OrganizationBackupStateMachineArn"]

    for output in ("NightlyStateMachineArn", "OrganizationBackupStateMachineArn"):
        machine = stepfunctions.describe_state_machine(stateMachineArn=deployed.outputs[output])
        assert "${" not in machine["definition"]
        assert CONTEXT_PATH in machine["definition"]
        assert machine["loggingConfiguration"]["level"] == "ALL"
        assert machine["loggingConfiguration"]["includeExecutionData"] is False
        assert machine["tracingConfiguration"] == {"enabled": True}

    assert (
        organization_arn == f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{deployed.stack_name}-organization-backup"
    )
    # The controller hands long runs over to fresh executions of the organization machine.
    assert deployed.function("ControllerFunction").environment["ORGANIZATION_STATE_MACHINE_ARN"] == organization_arn


def test_functions_exist_with_the_template_configuration(deployed: LocalStack):
    assert {function.logical_id for function in deployed.functions} == FUNCTION_IDS

    for function in deployed.functions:
        configuration = _client("lambda").get_function_configuration(FunctionName=function.name)
        assert configuration["Handler"] == function.handler
        assert function.handler.startswith("mailbox_backup.")
        assert function.code_uri.name == "functions"
        assert set(function.environment) >= COMMON_ENVIRONMENT


def test_function_environment_holds_the_deployed_values(deployed: LocalStack):
    outputs = deployed.outputs

    for function in deployed.functions:
        assert function.environment["LEDGER_TABLE"] == outputs["LedgerTableName"]
        assert function.environment["EXPORT_BUCKET"] == outputs["ExportBucketName"]
        assert function.environment["KMS_KEY_ARN"] == outputs["KmsKeyArn"]
        assert function.environment["EXPORT_ROLE_ARN"] == outputs["ExportRoleArn"]
        assert function.environment["MAX_CONCURRENT_EXPORTS"] == "10"
        assert function.environment["POWERTOOLS_SERVICE_NAME"] == "workmail-backup"

    dispatch = deployed.function("DispatchFunction")
    assert dispatch.environment["ORGANIZATION_STATE_MACHINE_ARN"] == outputs["OrganizationBackupStateMachineArn"]


def test_function_roles_grant_no_wildcard_actions(deployed: LocalStack):
    iam = _client("iam")

    for function in deployed.functions:
        role_arn = _client("lambda").get_function_configuration(FunctionName=function.name)["Role"]
        role_name = role_arn.rsplit("/", 1)[1]
        for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
            actions = [action for statement in document["Statement"] for action in _as_list(statement["Action"])]
            assert not [action for action in actions if "*" in action], (function.logical_id, policy_name)


def test_schedule_starts_the_nightly_machine_with_every_organization(deployed: LocalStack):
    schedule = _client("scheduler").get_schedule(Name=deployed.physical_ids["NightlySchedule"])

    assert schedule["ScheduleExpression"] == "cron(0 1 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Target"]["Arn"] == deployed.outputs["NightlyStateMachineArn"]
    assert json.loads(schedule["Target"]["Input"])["organizationIds"] == ORGANIZATION_IDS
    # A delivery that fails for good is kept, encrypted, where an alarm watches it.
    dead_letters = schedule["Target"]["DeadLetterConfig"]["Arn"]
    queue_url = _client("sqs").get_queue_url(QueueName=dead_letters.rsplit(":", 1)[-1])["QueueUrl"]
    attributes = _client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["KmsMasterKeyId"] and attributes["MessageRetentionPeriod"] == "1209600"


def test_existing_bucket_key_and_role_are_used_instead_of_new_ones(tmp_path):
    template_path = _copy_project(tmp_path)
    existing = {
        "ExistingExportBucketName": "existing-exports",
        "ExistingKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555",
        "ExistingExportRoleArn": f"arn:aws:iam::{ACCOUNT}:role/existing-export-role",
    }

    with mock_aws(config=MOTO_CONFIG):
        stack = deploy_local_stack(
            template_path, {"OrganizationIds": ORGANIZATION_IDS[0], **existing}, stack_name="existing-resources"
        )

    assert not {"ExportBucket", "ExportBucketPolicy", "ExportKey", "ExportRole"} & set(stack.physical_ids)
    controller = stack.function("ControllerFunction").environment
    assert controller["EXPORT_BUCKET"] == existing["ExistingExportBucketName"]
    assert controller["KMS_KEY_ARN"] == existing["ExistingKmsKeyArn"]
    assert controller["EXPORT_ROLE_ARN"] == existing["ExistingExportRoleArn"]


def test_unknown_resource_type_fails_the_deployment(tmp_path):
    template_path = _copy_project(tmp_path)
    # A stream moto could create, but that nothing in the local deployment expects.
    template = template_path.read_text()
    template_path.write_text(
        template.replace("\nOutputs:", "\n  UnexpectedStream:\n    Type: AWS::Kinesis::Stream\n\nOutputs:")
    )

    with mock_aws(config=MOTO_CONFIG), pytest.raises(UnsupportedResourceError, match="AWS::Kinesis::Stream"):
        deploy_local_stack(template_path, {"OrganizationIds": ORGANIZATION_IDS[0]}, stack_name="unknown-type")


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_ledger_is_encrypted_with_a_rotating_customer_key(deployed: LocalStack):
    table = _client("dynamodb").describe_table(TableName=deployed.outputs["LedgerTableName"])["Table"]

    encryption = table["SSEDescription"]
    assert encryption["SSEType"] == "KMS"
    key_id = encryption["KMSMasterKeyArn"].rsplit("/", 1)[-1]
    assert key_id == deployed.physical_ids["OperationsKey"].rsplit("/", 1)[-1]
    assert _client("kms").get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


def test_export_bucket_aborts_incomplete_uploads_and_keeps_exports_by_default(deployed: LocalStack):
    s3 = _client("s3")
    bucket = deployed.outputs["ExportBucketName"]

    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["ID"] == "AbortIncompleteUploads"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    with pytest.raises(s3.exceptions.ClientError, match="ObjectLockConfigurationNotFound"):
        s3.get_object_lock_configuration(Bucket=bucket)
    assert _client("dynamodb").describe_time_to_live(TableName=deployed.outputs["LedgerTableName"])[
        "TimeToLiveDescription"
    ]["TimeToLiveStatus"] in ("DISABLED", None)


def test_retention_parameters_lock_archive_and_expire_exports(tmp_path):
    template_path = _copy_project(tmp_path)
    auditor = f"arn:aws:iam::{ACCOUNT}:role/backup-auditor"
    parameters = {
        "OrganizationIds": ORGANIZATION_IDS[0],
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetentionDays": "2555",
        "ArchiveAfterDays": "30",
        "ArchiveStorageClass": "DEEP_ARCHIVE",
        "ExpireAfterDays": "2600",
        "NoncurrentVersionExpirationDays": "90",
        "JobRecordRetentionDays": "400",
        "AuditorRoleArn": auditor,
    }

    with mock_aws(config=MOTO_CONFIG):
        stack = deploy_local_stack(template_path, parameters, stack_name="retention")
        s3, bucket = _client("s3"), stack.outputs["ExportBucketName"]
        lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        rules = {rule["ID"]: rule for rule in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
        time_to_live = _client("dynamodb").describe_time_to_live(TableName=stack.outputs["LedgerTableName"])
        key_policy = json.loads(
            _client("kms").get_key_policy(KeyId=stack.outputs["KmsKeyArn"], PolicyName="default")["Policy"]
        )
        controller = stack.function("ControllerFunction").environment

    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 2555)
    assert rules["ArchiveExports"]["Transitions"] == [{"Days": 30, "StorageClass": "DEEP_ARCHIVE"}]
    assert rules["ExpireExports"]["Expiration"] == {"Days": 2600}
    assert rules["ExpireNoncurrentVersions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert time_to_live["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}
    (auditor_statement,) = [s for s in key_policy["Statement"] if s["Sid"] == "AllowAuditorToDecryptThroughS3Only"]
    assert auditor_statement["Principal"] == {"AWS": auditor}
    assert auditor_statement["Action"] == "kms:Decrypt"
    assert controller["JOB_RECORD_RETENTION_DAYS"] == "400"


def test_alarms_notify_the_encrypted_topic(deployed: LocalStack):
    topic_arn = deployed.outputs["NotificationTopicArn"]
    alarms = {alarm["AlarmName"]: alarm for alarm in _client("cloudwatch").describe_alarms()["MetricAlarms"]}

    expected = {
        "RunFailedAlarm": "ExecutionsFailed",
        "RunTimedOutAlarm": "ExecutionsTimedOut",
        "RunAbortedAlarm": "ExecutionsAborted",
        "NoSuccessfulRunAlarm": "ExecutionsSucceeded",
        "ExportFailedAlarm": "ExportsFailed",
        "MailboxesOverdueAlarm": "MailboxesOverdue",
        "ExportOverrunningAlarm": "ExportsOverrunning",
        "NightlyFailedAlarm": "ExecutionsFailed",
        "ScheduleDeliveryFailedAlarm": "ApproximateNumberOfMessagesVisible",
    }
    for logical_id, metric in expected.items():
        alarm = alarms[deployed.physical_ids[logical_id]]
        assert alarm["MetricName"] == metric
        assert alarm["AlarmActions"] == [topic_arn]
    nightly = alarms[deployed.physical_ids["NightlyFailedAlarm"]]["Dimensions"]
    assert nightly == [{"Name": "StateMachineArn", "Value": deployed.outputs["NightlyStateMachineArn"]}]
    assert _client("sns").get_topic_attributes(TopicArn=topic_arn)["Attributes"]["KmsMasterKeyId"]
    finish = deployed.function("FinishRunFunction").environment
    assert finish["NOTIFICATION_TOPIC_ARN"] == topic_arn
