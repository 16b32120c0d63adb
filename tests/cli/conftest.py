"""Fixtures for the operations commands: real local runs, their saved state, and a CLI runner."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.e2e.conftest import ORG, organization, scenario
from workmail_backup.cli import app
from workmail_backup.cli.app import console, errors
from workmail_backup.local.emulator import load_scenario
from workmail_backup.local.runner import LocalEnvironment
from workmail_backup.ops.local_state import save_state

FAILING = "user001@example.com"
EXPORTED_BY_SOMEONE_ELSE = "user002@example.com"
DISABLED = "leaver@example.com"


def troubled_scenario() -> dict:
    """12 mailboxes: one whose exports always fail, one exported by someone else 2 hours ago
    (so never by this tool), and a disabled user who needs no export."""
    leaver = {"name": "leaver", "email": DISABLED, "state": "DISABLED", "mailbox_mb": 10}
    org = organization(
        users=12,
        more_users=[leaver],
        jobs=[{"entity": "user002", "started": "-2h", "duration": "20m", "by": "admin-script"}],
        faults={"job_outcomes": [{"entity": "user001", "state": "FAILED", "error_info": "Mailbox is corrupt."}]},
    )
    return scenario(org)


def open_environment(tmp_path: Path, definition: dict) -> LocalEnvironment:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(definition))
    return LocalEnvironment(load_scenario(path), log_path=tmp_path / "handlers.log")


@pytest.fixture(scope="module")
def saved_states(tmp_path_factory) -> dict[str, Path]:
    """State saved before any run (an empty ledger) and after a real night with problems."""
    base = tmp_path_factory.mktemp("state")
    with open_environment(base, troubled_scenario()) as environment:
        save_state(environment, base / "empty")
        environment.run_nightly()
        save_state(environment, base / "after-night")
    return {"empty": base / "empty", "after_night": base / "after-night"}


class Cli:
    """Runs ``workmail-backup`` in this process, as a person would type it."""

    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *arguments: str, columns: int = 200):
        # Rich reads COLUMNS once, when the consoles are made; a terminal of this width is set here.
        console.width = errors.width = columns
        return self.runner.invoke(app, list(arguments), env={"COLUMNS": str(columns)})

    def json(self, *arguments: str) -> tuple[int, dict]:
        result = self(*arguments, "--json")
        assert result.stdout.strip(), result.output
        return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def cli() -> Iterator[Cli]:
    yield Cli()


__all__ = ["ORG", "FAILING", "EXPORTED_BY_SOMEONE_ELSE", "DISABLED"]
