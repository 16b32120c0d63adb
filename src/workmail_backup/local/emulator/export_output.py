"""What a finished export leaves behind: the checks the export service makes, the .zip of
MIME messages, and the export log, written to S3 with the caller's KMS key.

S3, KMS and IAM are reached through boto3 clients created when a job finishes, so
whatever stands in for AWS at that moment (moto in tests and local mode) receives them.
"""

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from fnmatch import fnmatchcase
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .organization import EXPORT_SERVICE, ExportJob, Mailbox

_FOLDERS = ("Inbox", "Sent Items", "Archive", "Calendar")


@dataclass
class ExportContext:
    """Where the organization lives (the region and account the destination must match), and
    the AWS clients of one request, created on first use so that they reach whatever stands
    in for AWS at that moment."""

    region: str
    account_id: str
    organization_arn: str
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` in the organization's region."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]


Check = Callable[[ExportJob, ExportContext], str | None]


def export_problem(job: ExportJob, context: ExportContext, extra_checks: tuple[Check, ...] = ()) -> str | None:
    """Why the export service could not deliver this job, or None if it can.

    The checks run in the order the service meets them: assume the role, then reach the
    bucket, then encrypt with the key.
    """
    for check in (*extra_checks, role_problem, bucket_problem, key_problem):
        problem = check(job, context)
        if problem:
            return problem
    return None


def role_problem(job: ExportJob, context: ExportContext) -> str | None:
    """The role must exist and trust the export service (and this account and organization)."""
    role_name = job.role_arn.rsplit("/", 1)[-1]
    try:
        role = context.client("iam").get_role(RoleName=role_name)["Role"]
    except ClientError:
        return f"Unable to assume role {job.role_arn}: the role does not exist."

    trust = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(trust, str):
        trust = json.loads(trust)
    if not any(_trusts_export_service(statement, context) for statement in _statements(trust)):
        return (
            f"Unable to assume role {job.role_arn}: its trust policy does not allow {EXPORT_SERVICE} "
            f"to assume it for this organization."
        )
    return None


def bucket_problem(job: ExportJob, context: ExportContext) -> str | None:
    """The bucket must exist, in the organization's region."""
    try:
        location = context.client("s3").get_bucket_location(Bucket=job.s3_bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchBucket", "404"):
            return f"S3 bucket {job.s3_bucket} does not exist."
        return f"Unable to access S3 bucket {job.s3_bucket}: {error.response['Error'].get('Message', error)}"

    region = location.get("LocationConstraint") or "us-east-1"
    if region != context.region:
        return f"S3 bucket {job.s3_bucket} is in {region}, not in the organization's region {context.region}."
    return None


def key_problem(job: ExportJob, context: ExportContext) -> str | None:
    """The KMS key must exist, be enabled, be symmetric, and be in the organization's region."""
    try:
        key = context.client("kms").describe_key(KeyId=job.kms_key_arn)["KeyMetadata"]
    except ClientError:
        return f"KMS key {job.kms_key_arn} does not exist or is not accessible."

    key_region = key.get("Arn", job.kms_key_arn).split(":")[3]
    if key_region != context.region:
        return f"KMS key {job.kms_key_arn} is in {key_region}; it must be in the organization's region."
    if key.get("KeyState") != "Enabled":
        return f"KMS key {job.kms_key_arn} is not enabled (state {key.get('KeyState')})."
    if key.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        return f"KMS key {job.kms_key_arn} is not a symmetric encryption key."
    return None


def _statements(policy: dict) -> list[dict]:
    statements = policy.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def _trusts_export_service(statement: dict, context: ExportContext) -> bool:
    principal = statement.get("Principal") or {}
    services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
    actions = _as_list(statement.get("Action", []))
    allowed = statement.get("Effect") == "Allow" and EXPORT_SERVICE in services
    assumes = any(action in ("sts:AssumeRole", "sts:*", "*") for action in actions)
    return allowed and assumes and _conditions_hold(statement.get("Condition") or {}, context)


def _conditions_hold(conditions: dict, context: ExportContext) -> bool:
    """Evaluate the aws:SourceAccount / aws:SourceArn conditions the admin guide recommends."""
    known = {"aws:sourceaccount": context.account_id, "aws:sourcearn": context.organization_arn}
    for operator, clauses in conditions.items():
        for key, expected in clauses.items():
            actual = known.get(key.lower())
            if actual is None:
                continue
            match = (
                (lambda pattern, a=actual: fnmatchcase(a, pattern))
                if "Like" in operator
                else (lambda pattern, a=actual: a == pattern)
            )
            if not any(match(pattern) for pattern in _as_list(expected)):
                return False
    return True


def object_keys(job: ExportJob) -> tuple[str, str]:
    """The S3 keys of a job's archive and export log."""
    base = f"{job.s3_prefix.rstrip('/')}/{job.job_id}"
    return f"{base}.zip", f"{base}.log"


def s3_path(job: ExportJob) -> str:
    """What DescribeMailboxExportJob reports as S3Path: the bucket and the archive's key."""
    return f"{job.s3_bucket}/{object_keys(job)[0]}"


def write_export(job: ExportJob, mailbox: Mailbox, context: ExportContext) -> str | None:
    """Write the archive and the export log; return an error text if S3 refused them."""
    archive, counts = build_archive(job, mailbox)
    log = export_log(archive, counts, job.start, job.end)
    archive_key, log_key = object_keys(job)
    s3 = context.client("s3")
    encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": job.kms_key_arn}

    try:
        s3.put_object(Bucket=job.s3_bucket, Key=archive_key, Body=archive, ContentType="application/zip", **encryption)
        s3.put_object(
            Bucket=job.s3_bucket,
            Key=log_key,
            Body=json.dumps(log, indent=2).encode(),
            ContentType="application/json",
            **encryption,
        )
    except (ClientError, BotoCoreError) as error:
        return f"Unable to write the export to s3://{job.s3_bucket}/{archive_key}: {error}"
    return None


def build_archive(job: ExportJob, mailbox: Mailbox) -> tuple[bytes, dict[str, int]]:
    """A small .zip of MIME messages in a few folders, the same for the same job."""
    buffer = io.BytesIO()
    total_bytes = 0
    messages = _messages(job, mailbox)

    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index, (folder, message) in enumerate(messages, start=1):
            data = bytes(message)
            total_bytes += len(data)
            info = zipfile.ZipInfo(f"{folder}/{index:05d}.eml", date_time=job.start.timetuple()[:6])
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)

    folders = {folder for folder, _ in messages}
    counts = {
        "messages": len(messages),
        "bytes": total_bytes,
        "folders": len(folders),
        "non_exportable": 1 + int(job.job_id[:2], 16) % 5,
    }
    return buffer.getvalue(), counts


def export_log(archive: bytes, counts: dict[str, int], start: datetime, end: datetime) -> dict[str, str]:
    """The export log in the documented layout: every value a string, times in epoch milliseconds."""
    return {
        "totalNonExportableItems": str(counts["non_exportable"]),
        "totalMessages": str(counts["messages"]),
        "sha384Hash": hashlib.sha384(archive).hexdigest(),
        "totalBytes": str(counts["bytes"]),
        "totalFolders": str(counts["folders"]),
        "startTime": str(int(start.timestamp() * 1000)),
        "endTime": str(int(end.timestamp() * 1000)),
    }


def _messages(job: ExportJob, mailbox: Mailbox) -> list[tuple[str, EmailMessage]]:
    count = 3 + int(job.job_id[-2:], 16) % 4
    domain = mailbox.email.split("@", 1)[1]
    return [(_FOLDERS[index % len(_FOLDERS)], _message(job, mailbox, index, domain)) for index in range(count)]


def _message(job: ExportJob, mailbox: Mailbox, index: int, domain: str) -> EmailMessage:
    sent = job.start - timedelta(days=3 * index + 1, hours=index)
    message = EmailMessage()
    message["From"] = f"colleague{index}@{domain}" if index % 2 == 0 else mailbox.email
    message["To"] = mailbox.email if index % 2 == 0 else f"colleague{index}@{domain}"
    message["Subject"] = f"Project update {index + 1}"
    message["Date"] = format_datetime(sent)
    message["Message-ID"] = f"<{job.job_id}.{index}@{domain}>"
    message.set_content(f"Hello,\n\nThis is message {index + 1} in the mailbox of {mailbox.name}.\n")
    return message
