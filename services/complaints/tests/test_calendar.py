"""The working-day calendar: known holidays and make-up working days (pinned from the
chinese_calendar package's data, which follows the State Council's notices), deadlines across
weekends, the Spring Festival and into a year nobody covers, overrides, and the overrides file."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from libs.common.beijing import BEIJING
from services.complaints.domain.calendar import (
    DEFAULT_OVERRIDES,
    WorkingCalendar,
    YearOverride,
    add_working_days,
    load_overrides,
    working_days_between,
)

CALENDAR = WorkingCalendar()
FRIDAY_BEFORE_SPRING_FESTIVAL = datetime(2026, 2, 13, 10, 0, tzinfo=BEIJING)


def days_off(calendar: WorkingCalendar, first: date, last: date) -> list[date]:
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [day for day in days if not calendar.is_working_day(day)]


def override(holidays: tuple[date, ...] = (), workdays: tuple[date, ...] = ()) -> YearOverride:
    return YearOverride(frozenset(holidays), frozenset(workdays), "a test")


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_2026_spring_festival_runs_from_15_to_23_february_with_saturdays_14_and_28_worked() -> None:
    # 国务院办公厅: 2月15日至23日放假调休，共9天；2月14日（星期六）、2月28日（星期六）上班.
    assert days_off(CALENDAR, date(2026, 2, 9), date(2026, 3, 8)) == [
        *(date(2026, 2, day) for day in range(15, 24)),
        date(2026, 3, 1),  # an ordinary Sunday
        date(2026, 3, 7),  # an ordinary Saturday
        date(2026, 3, 8),
    ]
    assert CALENDAR.is_working_day(date(2026, 2, 14))
    assert CALENDAR.is_working_day(date(2026, 2, 28))


def test_2025_national_day_runs_from_1_to_8_october_with_28_september_and_11_october_worked() -> None:
    # 国庆节、中秋节: 10月1日至8日放假调休，共8天；9月28日（星期日）、10月11日（星期六）上班.
    assert days_off(CALENDAR, date(2025, 9, 22), date(2025, 10, 12)) == [
        date(2025, 9, 27),  # the Saturday before the make-up Sunday
        *(date(2025, 10, day) for day in range(1, 9)),
        date(2025, 10, 12),  # the Sunday after the make-up Saturday
    ]


def test_the_package_covers_2004_to_2026_and_the_fallback_is_monday_to_friday() -> None:
    assert [CALENDAR.covers(year) for year in (2003, 2004, 2026, 2027)] == [False, True, True, False]
    # 2027-01-01 is New Year's Day, but no one has entered 2027's schedule: a Friday works.
    assert days_off(CALENDAR, date(2027, 1, 1), date(2027, 1, 10)) == [
        date(2027, 1, 2),
        date(2027, 1, 3),
        date(2027, 1, 9),
        date(2027, 1, 10),
    ]


@pytest.mark.parametrize(
    ("start", "days", "deadline"),
    [
        # Friday 15:00 → the end of Monday.
        (datetime(2026, 3, 6, 15, 0, tzinfo=BEIJING), 1, datetime(2026, 3, 10, tzinfo=BEIJING)),
        # 20:00 UTC on Thursday is 04:00 Friday in Beijing: the clock starts from Friday.
        (datetime(2026, 3, 5, 20, 0, tzinfo=UTC), 1, datetime(2026, 3, 10, tzinfo=BEIJING)),
        # Friday 23:59 still counts from Friday: Monday to Friday of the next week.
        (datetime(2026, 3, 6, 23, 59, tzinfo=BEIJING), 5, datetime(2026, 3, 14, tzinfo=BEIJING)),
        # The make-up Saturday 14 February, then Tuesday 24 February after the festival.
        (FRIDAY_BEFORE_SPRING_FESTIVAL, 2, datetime(2026, 2, 25, tzinfo=BEIJING)),
        # 7 working days to accept a complaint: 14, 24-28 (the 28th a make-up Saturday), 2 March.
        (FRIDAY_BEFORE_SPRING_FESTIVAL, 7, datetime(2026, 3, 3, tzinfo=BEIJING)),
        # 31 December 2026, then Friday 1 January and Monday 4 January 2027 by the fallback.
        (datetime(2026, 12, 30, 12, 0, tzinfo=BEIJING), 3, datetime(2027, 1, 5, tzinfo=BEIJING)),
    ],
)
def test_add_working_days_ends_at_beijing_midnight_after_the_nth_working_day(
    start: datetime, days: int, deadline: datetime
) -> None:
    result = add_working_days(CALENDAR, start, days)

    assert result == deadline
    assert result.utcoffset() == timedelta(hours=8)


def test_an_override_of_the_next_year_moves_a_deadline_past_its_new_year() -> None:
    calendar = WorkingCalendar({2027: override(holidays=(date(2027, 1, 1),))})

    assert calendar.covers(2027)
    deadline = add_working_days(calendar, datetime(2026, 12, 30, 12, 0, tzinfo=BEIJING), 3)
    assert deadline == datetime(2027, 1, 6, tzinfo=BEIJING)


@pytest.mark.parametrize("days", [0, -1])
def test_add_working_days_needs_at_least_one_day(days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        add_working_days(CALENDAR, FRIDAY_BEFORE_SPRING_FESTIVAL, days)


def test_an_instant_without_a_time_zone_has_no_beijing_day() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        add_working_days(CALENDAR, datetime(2026, 3, 6, 15, 0), 1)


@pytest.mark.parametrize(
    ("end", "count"),
    [
        (datetime(2026, 2, 13, 23, 0, tzinfo=BEIJING), 0),  # the same day
        (datetime(2026, 2, 10, 9, 0, tzinfo=BEIJING), 0),  # before the start
        (datetime(2026, 2, 14, 0, 0, tzinfo=BEIJING), 1),  # the make-up Saturday, just begun
        (datetime(2026, 2, 23, 18, 0, tzinfo=BEIJING), 1),  # the last day of the festival
        (datetime(2026, 2, 24, 9, 0, tzinfo=BEIJING), 2),
        (datetime(2026, 3, 2, 17, 0, tzinfo=BEIJING), 7),
    ],
)
def test_working_days_between_counts_the_working_days_after_the_start_up_to_the_end(
    end: datetime, count: int
) -> None:
    assert working_days_between(CALENDAR, FRIDAY_BEFORE_SPRING_FESTIVAL, end) == count


def test_overrides_win_over_the_package_date_by_date() -> None:
    spring_festival_monday, ordinary_monday = date(2026, 2, 16), date(2026, 3, 9)
    calendar = WorkingCalendar(
        {2026: override(holidays=(ordinary_monday,), workdays=(spring_festival_monday,))}
    )

    assert not CALENDAR.is_working_day(spring_festival_monday)
    assert calendar.is_working_day(spring_festival_monday)
    assert CALENDAR.is_working_day(ordinary_monday)
    assert not calendar.is_working_day(ordinary_monday)
    # Dates the override leaves out still follow the package.
    assert calendar.is_working_day(date(2026, 2, 14))
    assert not calendar.is_working_day(date(2026, 2, 17))


def test_the_loader_reads_a_year_of_holidays_and_make_up_working_days(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "_comment": "anything",
            "2027": {"holidays": ["2027-01-01"], "workdays": ["2027-02-06"], "source": "国办发明电"},
        },
    )

    assert load_overrides(path) == {
        2027: YearOverride(frozenset({date(2027, 1, 1)}), frozenset({date(2027, 2, 6)}), "国办发明电")
    }


def year(**fields: Any) -> dict[str, Any]:
    return {"holidays": [], "workdays": [], "source": "a notice", **fields}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected an object whose keys are years"),
        ({"27": year()}, "27: expected a year"),
        ({"2027": ["2027-01-01"]}, "2027: expected an object"),
        ({"2027": year(holiday=["2027-01-01"])}, "2027.holiday: unknown key"),
        ({"2027": year(holidays="2027-01-01")}, "2027.holidays: expected a list"),
        (
            {"2027": year(holidays=["2027-01-01", "2026-12-31"])},
            "2027.holidays[1]: 2026-12-31 is not in 2027",
        ),
        ({"2027": year(workdays=["2027-02-30"])}, "2027.workdays[0]: '2027-02-30' is not a calendar date"),
        ({"2027": year(workdays=["20270206"])}, "2027.workdays[0]: '20270206' is not a YYYY-MM-DD date"),
        ({"2027": year(workdays=[20270206])}, "2027.workdays[0]: 20270206 is not a YYYY-MM-DD date"),
        (
            {"2027": year(holidays=["2027-02-06"], workdays=["2027-02-06"])},
            "2027: 2027-02-06 is both a holiday and a workday",
        ),
        ({"2027": year(source=" ")}, "2027.source: required"),
        ({"2027": {"holidays": []}}, "2027.source: required"),
    ],
)
def test_the_loader_refuses_a_malformed_file_naming_the_entry(
    tmp_path: Path, document: Any, message: str
) -> None:
    path = write(tmp_path, document)

    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        load_overrides(path)
    assert str(path) in str(refused.value)


def test_the_loader_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text('{"2027": ', encoding="utf-8")

    with pytest.raises(ValueError, match="not JSON"):
        load_overrides(path)


def test_the_shipped_file_loads_and_explains_itself() -> None:
    overrides = load_overrides(DEFAULT_OVERRIDES)

    assert all(entry.source for entry in overrides.values())
    assert "国务院办公厅" in " ".join(json.loads(DEFAULT_OVERRIDES.read_text(encoding="utf-8"))["_comment"])
