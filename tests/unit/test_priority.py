"""The order in which mailboxes are exported."""

from mailbox_backup.priority import expected_seconds, queue_sort_key


def _key(entity_id, **mailbox):
    mailbox = {"entityId": entity_id, **mailbox}
    return queue_sort_key(mailbox, expected_seconds(mailbox))


def test_failed_then_never_exported_then_most_overdue_first():
    keys = {
        "recent": _key("recent", lastSuccessAt="2026-12-02T01:00:00Z"),
        "overdue": _key("overdue", lastSuccessAt="2026-11-20T01:00:00Z"),
        "never": _key("never"),
        "failed": _key("failed", lastOutcome="FAILED", lastSuccessAt="2026-12-02T01:00:00Z"),
    }

    assert sorted(keys, key=keys.get) == ["failed", "never", "overdue", "recent"]


def test_among_equals_the_longest_export_goes_first():
    small = _key("a-small", sizeMb=10)
    large = _key("b-large", sizeMb=20_000)

    assert large < small


def test_expected_duration_prefers_the_last_measured_one():
    assert expected_seconds({"lastDurationSeconds": 4000, "sizeMb": 1}) == 4000
    assert expected_seconds({"sizeMb": 600}) > expected_seconds({"sizeMb": 60})
