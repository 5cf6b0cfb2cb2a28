"""China's working-day calendar (工作日) for the complaints service's SLA clocks.

Whether a day is a working day is decided, first answer wins, by:

1. the operator's override of its year (``holiday_overrides.json``): a listed holiday (放假) is
   a day off, a listed workday is a working day, such as a make-up working weekend day (调休上班);
2. the ``chinese_calendar`` package, for the years whose State Council (国务院办公厅) schedule it
   ships;
3. otherwise Monday to Friday. ``WorkingCalendar.covers`` tells which years fall back to this,
   so that the service can warn about each.

Overrides patch single dates: a date neither list names goes on to the package, then to the
fallback. Days are Beijing calendar days.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import chinese_calendar  # type: ignore[import-untyped]

from libs.common.beijing import BEIJING

DEFAULT_OVERRIDES = Path(__file__).parents[1] / "holiday_overrides.json"
COMMENT_KEY = "_comment"
YEAR_KEYS = frozenset({"holidays", "workdays", "source"})
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
ONE_DAY = timedelta(days=1)
SATURDAY = 5


@dataclass(frozen=True)
class YearOverride:
    """One year's schedule as an operator entered it from the State Council's notice."""

    holidays: frozenset[date]  # days off (放假), weekdays or not
    workdays: frozenset[date]  # working days, such as the make-up weekend days (调休上班)
    source: str  # the notice the dates come from


@dataclass(frozen=True)
class WorkingCalendar:
    """Which Beijing calendar days are working days (工作日), see the module's docstring."""

    overrides: Mapping[int, YearOverride] = field(default_factory=dict)

    def is_working_day(self, day: date) -> bool:
        override = self.overrides.get(day.year)
        if override is not None and day in override.holidays:
            return False
        if override is not None and day in override.workdays:
            return True
        if _package_covers(day.year):
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < SATURDAY

    def covers(self, year: int) -> bool:
        """Whether the year's holidays are known; if not, its working days are Monday to Friday."""
        return year in self.overrides or _package_covers(year)


@functools.cache
def _package_covers(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def add_working_days(calendar: WorkingCalendar, start: datetime, days: int) -> datetime:
    """The deadline "within ``days`` working days" of ``start``: the end (00:00 Beijing of the day
    after) of the ``days``-th working day after the Beijing day of ``start``."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    working_days = _working_days_after(calendar, _beijing_day(start))
    last = next(itertools.islice(working_days, days - 1, None))
    return datetime.combine(last + ONE_DAY, time(), BEIJING)


def working_days_between(calendar: WorkingCalendar, start: datetime, end: datetime) -> int:
    """The working days after the Beijing day of ``start`` up to and including that of ``end``
    (0 when ``end`` is not on a later day)."""
    last = _beijing_day(end)
    working_days = _working_days_after(calendar, _beijing_day(start))
    return sum(1 for _ in itertools.takewhile(lambda day: day <= last, working_days))


def _working_days_after(calendar: WorkingCalendar, day: date) -> Iterator[date]:
    while True:
        day += ONE_DAY
        if calendar.is_working_day(day):
            yield day


def _beijing_day(instant: datetime) -> date:
    if instant.utcoffset() is None:
        raise ValueError(f"{instant.isoformat()} has no time zone, so no Beijing day")
    return instant.astimezone(BEIJING).date()


def load_overrides(path: Path) -> Mapping[int, YearOverride]:
    """The override years of a file like ``DEFAULT_OVERRIDES``: an object whose keys are years
    ("2027"), each ``{"holidays": [...], "workdays": [...], "source": "..."}`` with YYYY-MM-DD
    dates of that year, besides a "_comment". Raises ValueError naming the malformed entry."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected an object whose keys are years")
    years = {_year(path, key): entry for key, entry in document.items() if key != COMMENT_KEY}
    return {year: _year_override(path, year, entry) for year, entry in years.items()}


def _year(path: Path, key: str) -> int:
    if not (len(key) == 4 and key.isascii() and key.isdigit()):
        raise _malformed(path, key, "expected a year such as 2027")
    return int(key)


def _year_override(path: Path, year: int, entry: object) -> YearOverride:
    if not isinstance(entry, dict):
        raise _malformed(path, str(year), "expected an object with holidays, workdays and source")
    unknown = sorted(entry.keys() - YEAR_KEYS)
    if unknown:
        raise _malformed(path, f"{year}.{unknown[0]}", "unknown key (expected holidays, workdays, source)")
    holidays = _dates(path, f"{year}.holidays", entry.get("holidays", []), year)
    workdays = _dates(path, f"{year}.workdays", entry.get("workdays", []), year)
    both = sorted(holidays & workdays)
    if both:
        raise _malformed(path, str(year), f"{both[0]} is both a holiday and a workday")
    return YearOverride(holidays, workdays, _source(path, year, entry.get("source")))


def _dates(path: Path, entry: str, values: object, year: int) -> frozenset[date]:
    if not isinstance(values, list):
        raise _malformed(path, entry, "expected a list of YYYY-MM-DD dates")
    return frozenset(_date(path, f"{entry}[{index}]", value, year) for index, value in enumerate(values))


def _date(path: Path, entry: str, value: object, year: int) -> date:
    if not (isinstance(value, str) and ISO_DATE.fullmatch(value)):
        raise _malformed(path, entry, f"{value!r} is not a YYYY-MM-DD date")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _malformed(path, entry, f"{value!r} is not a calendar date") from None
    if day.year != year:
        raise _malformed(path, entry, f"{value} is not in {year}")
    return day


def _source(path: Path, year: int, source: object) -> str:
    if not (isinstance(source, str) and source.strip()):
        raise _malformed(path, f"{year}.source", "required: the notice the dates come from")
    return source


def _malformed(path: Path, entry: str, what: str) -> ValueError:
    return ValueError(f"{path}: {entry}: {what}")
