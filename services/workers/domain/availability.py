"""A worker's availability: a weekly schedule in Beijing time, and leave."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from libs.common.errors import InvalidArgument


@dataclass(frozen=True, order=True)
class WeeklySlot:
    day_of_week: int  # 1 = Monday ... 7 = Sunday
    start_minute: int
    end_minute: int


@dataclass(frozen=True)
class Leave:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Availability:
    weekly_slots: tuple[WeeklySlot, ...]
    leaves: tuple[Leave, ...]


def availability(slots: tuple[WeeklySlot, ...], leaves: tuple[Leave, ...]) -> Availability:
    """Slots sorted, each within its day and not overlapping another of the same day; leave
    periods that end after they start."""
    ordered = tuple(sorted(slots))
    for i, slot in enumerate(ordered):
        if not 1 <= slot.day_of_week <= 7 or not 0 <= slot.start_minute < slot.end_minute <= 1440:
            raise InvalidArgument("weekly_slots", f"slot {slot} is not within one day")
        if (
            i
            and ordered[i - 1].day_of_week == slot.day_of_week
            and ordered[i - 1].end_minute > slot.start_minute
        ):
            raise InvalidArgument("weekly_slots", f"slots of day {slot.day_of_week} overlap")
    for i, leave in enumerate(leaves):
        if leave.end <= leave.start:
            raise InvalidArgument(f"leaves[{i}].end_time", "must be after start_time")
    return Availability(ordered, leaves)
