"""End-to-end fixtures: the real template, state machine and handlers, in moto, with the emulator."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from moto.sns.models import sns_backends

from workmail_backup.local.emulator import load_scenario
from workmail_backup.local.runner import LocalEnvironment

ORG = "m-0123456789abcdef0123456789abcdef"
OTHER_ORG = "m-fedcba9876543210fedcba9876543210"
START = "2026-12-03T01:00:00Z"


def organization(org_id: str = ORG, users: int = 25, **extra) -> dict:
    """An organization of ``users`` enabled users with mailboxes of a few sizes."""
    people = [
        {"name": f"user{index:03d}", "email": f"user{index:03d}@example.com", "mailbox_mb": 50 + (index % 7) * 150}
        for index in range(users)
    ]
    return {"id": org_id, "alias": f"example-{org_id[-6:]}", "users": people + extra.pop("more_users", []), **extra}


def scenario(*organizations: dict, start: str = START) -> dict:
    return {
        "start": start,
        "region": "us-east-1",
        "export_speed": {"fixed_seconds": 120, "mb_per_minute": 60},
        "organizations": list(organizations) or [organization()],
    }


def published_summaries(environment) -> list[tuple[str, str]]:
    """(subject, message) of every run summary sent to the stack's topic, oldest first."""
    topic = sns_backends[environment.scenario.account_id][environment.region].topics[
        environment.stack.outputs["NotificationTopicArn"]
    ]
    return [(subject, message) for _, message, subject, *_ in topic.sent_notifications]


@pytest.fixture
def local_environment(tmp_path: Path) -> Callable:
    """Build a scenario file from a dict and open a local environment on it."""

    @contextmanager
    def open_environment(definition: dict, **parameters: str) -> Iterator[LocalEnvironment]:
        path = tmp_path / "scenario.yaml"
        path.write_text(yaml.safe_dump(definition))
        with LocalEnvironment(load_scenario(path), parameters=parameters) as environment:
            yield environment

    return open_environment
