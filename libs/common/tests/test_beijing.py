from datetime import UTC, date, datetime

from libs.common.beijing import beijing_day, beijing_midnight


def test_the_beijing_day_begins_at_16_00_utc_the_day_before() -> None:
    assert beijing_day(datetime(2026, 11, 30, 15, 59, tzinfo=UTC)) == date(2026, 11, 30)
    assert beijing_day(datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == date(2026, 12, 1)


def test_beijing_midnight_is_16_00_utc_the_day_before() -> None:
    assert beijing_midnight(date(2026, 12, 1)) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
