"""Fixtures for the emulator's conformance tests: moto for S3/KMS/IAM, a hand-driven clock,
and a real boto3 WorkMail client pointed at a running emulator."""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workmail_backup.local.emulator import WorkMailEmulator, load_scenario

ORG = "m-0123456789abcdef0123456789abcdef"
OTHER_ORG = "m-fedcba9876543210fedcba9876543210"
START = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "mailbox-exports"
EXPORT_SERVICE = "export.workmail.amazonaws.com"


class FakeClock:
    """A clock that moves only when a test moves it."""

    def __init__(self, start: datetime = START):
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


def users(count: int, prefix: str = "user", mailbox_mb: float = 60) -> list[dict[str, Any]]:
    """``count`` enabled users named user000, user001, ... with equal mailboxes."""
    return [
        {
            "name": f"{prefix}{index:03d}",
            "email": f"{prefix}{index:03d}@example.com",
            "mailbox_mb": mailbox_mb,
        }
        for index in range(count)
    ]


def organization(**overrides: Any) -> dict[str, Any]:
    """One organization with a few users of every kind and one room."""
    base = {
        "id": ORG,
        "alias": "example-corp",
        "users": [
            {"name": "alice", "email": "alice@example.com", "display_name": "Alice Adams", "mailbox_mb": 480},
            {"name": "bob", "email": "bob@example.com", "mailbox_mb": 60},
            {"name": "carol", "email": "carol@example.com", "state": "DISABLED", "mailbox_mb": 30},
            {"name": "dave", "email": "dave@example.com", "state": "DELETED", "mailbox_mb": 30},
            {"name": "mailer", "email": "mailer@example.com", "role": "SYSTEM_USER"},
            {"name": "partner", "email": "partner@example.com", "role": "REMOTE_USER"},
        ],
        "resources": [{"name": "room-1", "email": "room-1@example.com", "type": "ROOM", "mailbox_mb": 12}],
    }
    base.update(overrides)
    return base


def scenario(*organizations: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A scenario dict starting at START, exporting at 120 s + 1 s per MB."""
    base = {
        "start": START.isoformat(),
        "region": REGION,
        "export_speed": {"fixed_seconds": 120, "mb_per_minute": 60},
        "organizations": list(organizations) or [organization()],
    }
    base.update(overrides)
    return base


@dataclass
class Aws:
    """The moto account the tests export into."""

    bucket: str
    key_arn: str
    role_arn: str
    s3: Any
    kms: Any
    iam: Any

    def export_arguments(self, **overrides: Any) -> dict[str, Any]:
        arguments = {
            "OrganizationId": ORG,
            "RoleArn": self.role_arn,
            "KmsKeyArn": self.key_arn,
            "S3BucketName": self.bucket,
            "S3Prefix": "nightly/2026-12-03",
        }
        arguments.update(overrides)
        return arguments


def trust_policy(service: str = EXPORT_SERVICE, **condition: Any) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def aws() -> Iterator[Aws]:
    """moto with an export bucket, a KMS key, and a role the export service may assume."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        kms = boto3.client("kms", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)

        s3.create_bucket(Bucket=BUCKET)
        key_arn = kms.create_key(Description="mailbox exports")["KeyMetadata"]["Arn"]
        role_arn = iam.create_role(RoleName="WorkMailExport", AssumeRolePolicyDocument=trust_policy())["Role"]["Arn"]
        yield Aws(bucket=BUCKET, key_arn=key_arn, role_arn=role_arn, s3=s3, kms=kms, iam=iam)


@dataclass
class Running:
    """A started emulator, its clock, and a boto3 client for it."""

    emulator: WorkMailEmulator
    clock: FakeClock
    client: Any


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator_for(clock: FakeClock) -> Iterator[Callable[[dict[str, Any]], Running]]:
    """Start an emulator over a scenario dict; every one started is stopped after the test."""
    started: list[WorkMailEmulator] = []

    def start(definition: dict[str, Any]) -> Running:
        emulator = WorkMailEmulator(load_scenario(definition), now=clock)
        url = emulator.start()
        started.append(emulator)
        return Running(emulator, clock, workmail_client(url))

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def running(emulator_for: Callable[[dict[str, Any]], Running], aws: Aws) -> Running:
    """The default organization, served, with moto ready to receive exports."""
    return emulator_for(scenario())


def workmail_client(url: str) -> Any:
    """A plain boto3 WorkMail client for the emulator; no retries, so every error is seen."""
    from botocore.config import Config

    return boto3.client(
        "workmail",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def error_code(raised: pytest.ExceptionInfo) -> str:
    return raised.value.response["Error"]["Code"]
