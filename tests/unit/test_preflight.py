"""The preflight's policy reading: trust of the export service, and what the role's policies allow."""

from mailbox_backup.preflight import ExportConfiguration, is_allowed, required_grants, trusts_export_service

ACCOUNT = "123456789012"
ORGANIZATION_ARN = f"arn:aws:workmail:us-east-1:{ACCOUNT}:organization/m-{'a' * 32}"
CONFIGURATION = ExportConfiguration(
    bucket="exports",
    prefix="workmail-exports",
    kms_key_arn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/export",
)


def _trust(**condition) -> dict:
    return {
        "Effect": "Allow",
        "Principal": {"Service": "export.workmail.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": condition,
    }


def test_trust_with_the_documented_conditions_is_accepted():
    statement = _trust(
        StringEquals={"aws:SourceAccount": ACCOUNT},
        ArnLike={"aws:SourceArn": ["arn:aws:workmail:*:*:organization/m-" + "a" * 32]},
    )

    assert trusts_export_service(statement, ACCOUNT, ORGANIZATION_ARN)


def test_trust_without_conditions_is_refused():
    assert not trusts_export_service(_trust(), ACCOUNT, ORGANIZATION_ARN)


def test_trust_of_another_account_or_organization_is_refused():
    other_account = _trust(StringEquals={"aws:SourceAccount": "999999999999", "aws:SourceArn": ORGANIZATION_ARN})
    other_organization = _trust(
        StringEquals={"aws:SourceAccount": ACCOUNT}, ArnLike={"aws:SourceArn": "arn:aws:workmail:*:*:organization/m-b*"}
    )

    assert not trusts_export_service(other_account, ACCOUNT, ORGANIZATION_ARN)
    assert not trusts_export_service(other_organization, ACCOUNT, ORGANIZATION_ARN)


def test_trust_of_another_service_is_refused():
    statement = {**_trust(StringEquals={"aws:SourceAccount": ACCOUNT, "aws:SourceArn": ORGANIZATION_ARN})}
    statement["Principal"] = {"Service": "lambda.amazonaws.com"}

    assert not trusts_export_service(statement, ACCOUNT, ORGANIZATION_ARN)


def test_the_template_shaped_policy_allows_every_required_grant():
    statements = [
        {
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:PutObject", "s3:GetBucketPolicyStatus"],
            "Resource": ["arn:aws:s3:::exports", "arn:aws:s3:::exports/workmail-exports/*"],
        },
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": CONFIGURATION.kms_key_arn},
    ]

    assert all(is_allowed(statements, action, resource) for action, resource in required_grants(CONFIGURATION))


def test_a_policy_for_another_prefix_or_without_the_key_misses_grants():
    statements = [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::exports/other/*"}]

    missing = [
        action for action, resource in required_grants(CONFIGURATION) if not is_allowed(statements, action, resource)
    ]

    assert missing == [
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:GetBucketPolicyStatus",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    ]


def test_a_deny_overrides_an_allow():
    statements = [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"},
    ]

    assert not is_allowed(statements, "s3:PutObject", "arn:aws:s3:::exports/workmail-exports/x.zip")
    assert is_allowed(statements, "s3:AbortMultipartUpload", "arn:aws:s3:::exports/workmail-exports/x.zip")
