"""The numbers the views print, where rounding could tell an auditor something untrue."""

from workmail_backup.ops.queries import coverage_percent


def test_one_missing_mailbox_in_a_large_organization_is_never_shown_as_full_coverage():
    assert coverage_percent(2400, 2401) == 99.9
    assert coverage_percent(19_999, 20_000) == 99.9


def test_coverage_is_rounded_down_to_one_decimal():
    assert coverage_percent(5, 6) == 83.3
    assert coverage_percent(2, 3) == 66.6
    assert coverage_percent(7, 7) == 100.0
