"""Configuration the template passes to every function through its environment."""

import os
import re
from dataclasses import dataclass
from datetime import timedelta

from mailbox_backup.errors import ConfigurationError

_WINDOW_END = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

# WorkMail runs at most this many export jobs per organization, whoever started them.
SERVICE_MAX_CONCURRENT_EXPORTS = 10
# A mailbox whose 24-hour window opens within this many hours of planning waits in the run;
# a later one is skipped until the next run.
DEFAULT_DEFER_HORIZON_HOURS = 6
# An operator's run is recorded (REQUESTED) before its execution starts. One whose execution has
# not started after this long never will (the start failed, the command was interrupted): it
# blocks neither a new start nor a night.
REQUEST_START_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Settings:
    ledger_table: str
    export_bucket: str
    export_prefix: str
    export_role_arn: str
    kms_key_arn: str
    max_concurrent_exports: int
    min_poll_seconds: int
    max_poll_seconds: int
    schedule_timezone: str
    backup_window_end: str  # "HH:MM" in the schedule's time zone, or "" for no window
    defer_horizon_hours: float
    ticks_per_execution: int
    # 0 keeps job records; otherwise DynamoDB's TTL removes them this many days after they start.
    job_record_retention_days: int = 0


def load_settings() -> Settings:
    """Read the settings from the environment at invocation time.

    Read per invocation rather than at import so that one process can host several
    functions with different environments, as the local mode does.
    """
    settings = Settings(
        ledger_table=_required("LEDGER_TABLE"),
        export_bucket=_required("EXPORT_BUCKET"),
        export_prefix=os.environ.get("EXPORT_PREFIX", "workmail-exports").strip("/"),
        export_role_arn=_required("EXPORT_ROLE_ARN"),
        kms_key_arn=_required("KMS_KEY_ARN"),
        max_concurrent_exports=_integer("MAX_CONCURRENT_EXPORTS", 10),
        min_poll_seconds=_integer("MIN_POLL_SECONDS", 60),
        max_poll_seconds=_integer("MAX_POLL_SECONDS", 900),
        schedule_timezone=os.environ.get("SCHEDULE_TIMEZONE", "UTC"),
        backup_window_end=os.environ.get("BACKUP_WINDOW_END", "").strip(),
        defer_horizon_hours=float(os.environ.get("DEFER_HORIZON_HOURS", str(DEFAULT_DEFER_HORIZON_HOURS))),
        ticks_per_execution=_integer("TICKS_PER_EXECUTION", 1000),
        job_record_retention_days=_integer("JOB_RECORD_RETENTION_DAYS", 0),
    )
    _check(settings)
    return settings


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"Environment variable {name} is empty; set it in the template.")
    return value


def _integer(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"Environment variable {name} must be an integer, got {raw!r}.") from None


def _check(settings: Settings) -> None:
    if settings.backup_window_end and not _WINDOW_END.match(settings.backup_window_end):
        raise ConfigurationError(
            f"BACKUP_WINDOW_END must be empty or a time such as 06:00, got {settings.backup_window_end!r}."
        )
    if not 1 <= settings.max_concurrent_exports <= SERVICE_MAX_CONCURRENT_EXPORTS:
        raise ConfigurationError(
            f"MAX_CONCURRENT_EXPORTS must be between 1 and {SERVICE_MAX_CONCURRENT_EXPORTS}, "
            f"got {settings.max_concurrent_exports}."
        )
    if not 1 <= settings.min_poll_seconds <= settings.max_poll_seconds:
        raise ConfigurationError(
            "MIN_POLL_SECONDS must be at least 1 and at most MAX_POLL_SECONDS, got "
            f"{settings.min_poll_seconds} and {settings.max_poll_seconds}."
        )
