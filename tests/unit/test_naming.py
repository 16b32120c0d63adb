"""Names sent to WorkMail, S3 and Step Functions stay valid for any mailbox."""

import re
from datetime import UTC, datetime

import botocore.session
import pytest

from mailbox_backup import naming

MODEL = botocore.session.get_session().get_service_model("workmail")
START_INPUT = MODEL.operation_model("StartMailboxExportJob").input_shape.members
PREFIX_PATTERN = re.compile(f"^(?:{START_INPUT['S3Prefix'].metadata['pattern']})$")
TOKEN_PATTERN = re.compile(f"^(?:{START_INPUT['ClientToken'].metadata['pattern']})$")
ORG = "m-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "label",
    [
        "Anna.Smith+news@Example.COM",
        "josé.müller@exämple.de",
        "Ørsted Łukasz",
        "李雷@example.cn",
        "a b:c@d",
        "",
    ],
)
def test_export_prefix_matches_the_api_pattern_for_any_label(label):
    prefix = naming.export_prefix("workmail-exports", ORG, "nightly-20261203", "user-1", label)

    assert PREFIX_PATTERN.match(prefix), prefix
    assert len(prefix) <= START_INPUT["S3Prefix"].metadata["max"]


def test_export_prefix_keeps_accented_names_readable():
    prefix = naming.export_prefix("exports", ORG, "nightly-20261203", "user-1", "José.Müller@example.com")

    assert "/jose.muller-at-example.com-" in prefix


def test_export_prefixes_differ_for_mailboxes_whose_labels_fold_to_the_same_text():
    first = naming.export_prefix("exports", ORG, "nightly-20261203", "user-1", "jose@example.com")
    second = naming.export_prefix("exports", ORG, "nightly-20261203", "user-2", "josé@example.com")

    assert first != second


def test_export_prefix_differs_per_run():
    first = naming.export_prefix("exports", ORG, "nightly-20261203", "user-1", "a@example.com")
    second = naming.export_prefix("exports", ORG, "nightly-20261204", "user-1", "a@example.com")

    assert first != second


def test_client_token_is_within_128_printable_characters_for_a_256_character_entity_id():
    token = naming.client_token(ORG, "x" * 256, "nightly-20261203")

    assert TOKEN_PATTERN.match(token) and len(token) <= 128


def test_client_token_is_stable_and_distinct_per_run_and_mailbox():
    token = naming.client_token(ORG, "user-1", "nightly-20261203")

    assert token == naming.client_token(ORG, "user-1", "nightly-20261203")
    assert token != naming.client_token(ORG, "user-2", "nightly-20261203")
    assert token != naming.client_token(ORG, "user-1", "nightly-20261204")


def test_nightly_run_id_uses_the_schedule_time_zone_date():
    scheduled = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)

    assert naming.nightly_run_id(scheduled, "UTC") == "nightly-20261203"
    assert naming.nightly_run_id(scheduled, "Europe/Berlin") == "nightly-20261204"


def test_execution_names_are_valid_for_step_functions():
    for part in (0, 1, 12):
        name = naming.execution_name(ORG, "manual-20261203T101500Z", part)
        assert len(name) <= 80
        assert re.match(r"^[A-Za-z0-9_-]+$", name)
