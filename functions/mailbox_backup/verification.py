"""Proof that a COMPLETED export is really in S3, encrypted with the expected key."""

from dataclasses import dataclass

from mailbox_backup import clients


@dataclass(frozen=True)
class Verification:
    ok: bool
    problem: str = ""
    object_key: str = ""
    size_bytes: int = 0
    etag: str = ""
    version_id: str = ""
    kms_key_id: str = ""

    def as_fields(self) -> dict:
        return {
            "verified": self.ok,
            "verificationProblem": self.problem or None,
            "objectKey": self.object_key or None,
            "sizeBytes": self.size_bytes,
            "etag": self.etag or None,
            "versionId": self.version_id or None,
            "objectKmsKeyId": self.kms_key_id or None,
        }


def verify_export(bucket: str, prefix: str, expected_kms_key_arn: str) -> Verification:
    """Find the export's .zip under its prefix and check its encryption."""
    s3 = clients.s3()
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
    archives = [entry["Key"] for entry in listing.get("Contents", []) if entry["Key"].endswith(".zip")]
    if not archives:
        return Verification(ok=False, problem=f"no .zip found under s3://{bucket}/{prefix}/")

    key = sorted(archives)[-1]
    head = s3.head_object(Bucket=bucket, Key=key)
    found = Verification(
        ok=True,
        object_key=key,
        size_bytes=int(head.get("ContentLength", 0)),
        etag=head.get("ETag", "").strip('"'),
        version_id=head.get("VersionId", "") if head.get("VersionId") != "null" else "",
        kms_key_id=head.get("SSEKMSKeyId", ""),
    )
    if head.get("ServerSideEncryption") != "aws:kms":
        return _failed(found, f"s3://{bucket}/{key} is not encrypted with SSE-KMS")
    if not _same_key(found.kms_key_id, expected_kms_key_arn):
        return _failed(found, f"s3://{bucket}/{key} is encrypted with {found.kms_key_id}, not {expected_kms_key_arn}")
    return found


def _same_key(reported: str, expected_arn: str) -> bool:
    # S3 reports the key's ARN; an alias or bare id in the settings compares by its last segment.
    return bool(reported) and reported.split("/")[-1] == expected_arn.split("/")[-1]


def _failed(found: Verification, problem: str) -> Verification:
    return Verification(
        ok=False,
        problem=problem,
        object_key=found.object_key,
        size_bytes=found.size_bytes,
        etag=found.etag,
        version_id=found.version_id,
        kms_key_id=found.kms_key_id,
    )
