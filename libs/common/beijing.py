"""Beijing time, which every date in this system is counted in: validities, deadlines, cover,
working days. UTC+8 all year (China keeps no daylight saving time), so a fixed offset."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def beijing_day(moment: datetime) -> date:
    """The Beijing date of ``moment`` (an aware datetime)."""
    return moment.astimezone(BEIJING).date()


def beijing_midnight(day: date) -> datetime:
    """00:00 Beijing time on ``day``: when something dated that day begins."""
    return datetime.combine(day, time(), BEIJING)
