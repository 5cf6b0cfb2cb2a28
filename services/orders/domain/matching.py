"""Matching (供需精准对接): which workers may take a service, who comes first, and why.

A worker is eligible when every rule holds; the rules are checked, and a worker's exclusion is
counted, in this order (a worker failing several rules counts under the first):

1. trade: the worker has the trade the service type needs;
2. district: the worker serves the order's district;
3. skill level: at least the service type's minimum;
4. health tier: the worker holds a valid health check of the tier needed or a higher one;
5. card colour: GREEN;
6. credit level: above D (a worker with no level yet passes);
7. free slot: the window lies inside the worker's weekly slots (Beijing time, to the minute: the
   start rounded down, the end up), overlaps no leave and no booking.

Eligible workers are ranked by ``score_components`` (docs/matching.md), highest first, ties
broken by worker id. ``linear_match`` applies the rules worker by worker; ``MatchingIndex`` gives
the same answer from buckets without visiting most workers.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from libs.common.beijing import BEIJING
from libs.common.errors import InvalidArgument
from services.orders.domain.catalogue import Catalogue, CatalogueEntry
from services.orders.domain.districts import district_distance
from services.orders.domain.vocabulary import (
    CardColour,
    CreditLevel,
    HealthTier,
    ServiceType,
    SkillLevel,
    Trade,
)

DEFAULT_TOP_N = 10


class Rule(StrEnum):
    """An eligibility rule, named as the match result counts its exclusions."""

    TRADE = "trade"
    DISTRICT = "district"
    SKILL_LEVEL = "skill_level"
    HEALTH_TIER = "health_tier"
    CARD_COLOUR = "card_colour"
    CREDIT_LEVEL = "credit_level"
    FREE_SLOT = "free_slot"


RULE_ORDER = tuple(Rule)


class WeeklySlot(NamedTuple):
    """A recurring period of the week a worker takes work in, Beijing time."""

    day_of_week: int  # 1 = Monday ... 7 = Sunday
    start_minute: int
    end_minute: int  # exclusive, at most 1440


@dataclass(frozen=True)
class Interval:
    """A period a worker is not free (leave or a booked order), ``end`` exclusive."""

    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True)
class WorkerEligibility:
    """What orders keeps of a worker, from the workers, credit and orders events, to match them.

    ``skill_level`` None means no certificate yet; ``health_tier`` is the highest tier of a valid
    health check (None: none valid); ``credit_level`` None means credit has published no level
    yet; ``rating_total`` is the sum of the stars of ``rating_count`` ratings; ``load`` is the
    worker's current bookings (assigned or checked in).
    """

    worker_id: str
    home_district: str
    districts: frozenset[str]
    trades: frozenset[Trade]
    skill_level: SkillLevel | None
    health_tier: HealthTier | None
    card_colour: CardColour
    credit_level: CreditLevel | None
    rating_total: int = 0
    rating_count: int = 0
    load: int = 0
    weekly_slots: tuple[WeeklySlot, ...] = ()
    leaves: tuple[Interval, ...] = ()
    bookings: tuple[Interval, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "weekly_slots", tuple(sorted(self.weekly_slots)))

    @functools.cached_property
    def busy(self) -> tuple[Interval, ...]:
        return self.leaves + self.bookings


@dataclass(frozen=True)
class MatchRequest:
    """A service of ``service_type`` wanted in ``district_code`` from ``start`` until ``end``."""

    service_type: ServiceType
    district_code: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidArgument("window", "start and end must carry a time zone")
        if self.end <= self.start:
            raise InvalidArgument("window.end_time", "must be after start_time")


@dataclass(frozen=True)
class ScoreComponents:
    """The points a candidate's score is made of (docs/matching.md)."""

    credit: int
    rating: int
    skill_above_minimum: int
    district_distance: int
    load: int

    @property
    def total(self) -> int:
        return self.credit + self.rating + self.skill_above_minimum + self.district_distance + self.load


@dataclass(frozen=True)
class Candidate:
    """An eligible worker, the score that ranks them and why: the rules passed and the points."""

    worker_id: str
    score: int
    components: ScoreComponents
    passed: tuple[Rule, ...] = RULE_ORDER


@dataclass(frozen=True)
class MatchResult:
    """The top candidates, best first; how many workers each rule excluded; how many were eligible."""

    candidates: tuple[Candidate, ...]
    excluded: Mapping[Rule, int]
    eligible: int


# -- the score -------------------------------------------------------------------------------

CREDIT_POINTS: Mapping[CreditLevel | None, int] = {
    CreditLevel.A: 300,
    CreditLevel.B: 200,
    CreditLevel.C: 100,
    CreditLevel.D: 0,  # never a candidate; the index ranks every worker it holds
    None: 50,
}
RATING_PRIOR_STARS = 4  # a worker with few ratings starts near 4 stars ...
RATING_PRIOR_WEIGHT = 5  # ... as if rated 4 stars five times
RATING_POINTS_PER_STAR = 60
LEVEL_POINTS = 50  # per skill level above the service type's minimum
DISTANCE_POINTS = (100, 60, 30)  # home district the order's, a neighbour, two borders away; else 0
LOAD_POINTS, LOAD_STEP = 100, 25  # 100 points with no booking, 25 fewer for each, at least 0


def rating_points(total: int, count: int) -> int:
    """The Bayesian mean of the stars (prior: 4 stars weighing 5 ratings) × 60, rounded down."""
    prior = RATING_PRIOR_STARS * RATING_PRIOR_WEIGHT
    return RATING_POINTS_PER_STAR * (prior + total) // (RATING_PRIOR_WEIGHT + count)


def score_components(worker: WorkerEligibility, district_code: str, min_level: int) -> ScoreComponents:
    """The points of ``worker`` for an order in ``district_code`` needing skill level ``min_level``."""
    hops = district_distance(worker.home_district, district_code)
    return ScoreComponents(
        credit=CREDIT_POINTS[worker.credit_level],
        rating=rating_points(worker.rating_total, worker.rating_count),
        skill_above_minimum=LEVEL_POINTS * ((worker.skill_level or 0) - min_level),
        district_distance=DISTANCE_POINTS[hops] if hops < len(DISTANCE_POINTS) else 0,
        load=max(0, LOAD_POINTS - LOAD_STEP * worker.load),
    )


def _candidate(worker: WorkerEligibility, request: MatchRequest, needs: CatalogueEntry) -> Candidate:
    points = score_components(worker, request.district_code, needs.min_skill_level)
    return Candidate(worker.worker_id, points.total, points)


# -- the rules, worker by worker -------------------------------------------------------------


def _day_covers(slots: tuple[WeeklySlot, ...], day_of_week: int, start: int, end: int) -> bool:
    """Minutes ``start``-``end`` of that day lie inside the slots (adjacent slots join)."""
    cursor = start
    for slot in slots:
        if slot.day_of_week == day_of_week and slot.start_minute <= cursor < slot.end_minute:
            cursor = slot.end_minute
    return cursor >= end


def _minutes(delta: timedelta) -> int:
    return delta // timedelta(minutes=1)


def within_weekly_slots(slots: tuple[WeeklySlot, ...], start: datetime, end: datetime) -> bool:
    """Every minute from ``start`` (rounded down) to ``end`` (rounded up) is in a weekly slot."""
    first = start.astimezone(BEIJING).replace(second=0, microsecond=0)
    last = end.astimezone(BEIJING)
    if last.replace(second=0, microsecond=0) != last:
        last = last.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = first.replace(hour=0, minute=0)
    while day < last:
        following = day + timedelta(days=1)
        begin, finish = _minutes(max(first, day) - day), _minutes(min(last, following) - day)
        if not _day_covers(slots, day.isoweekday(), begin, finish):
            return False
        day = following
    return True


def is_free(worker: WorkerEligibility, start: datetime, end: datetime) -> bool:
    """The free-slot rule: inside the weekly slots, on no leave, overlapping no booking."""
    return within_weekly_slots(worker.weekly_slots, start, end) and not any(
        busy.overlaps(start, end) for busy in worker.busy
    )


_Check = Callable[[WorkerEligibility, MatchRequest, CatalogueEntry], bool]
RULES: tuple[tuple[Rule, _Check], ...] = (
    (Rule.TRADE, lambda w, r, n: n.trade in w.trades),
    (Rule.DISTRICT, lambda w, r, n: r.district_code in w.districts),
    (Rule.SKILL_LEVEL, lambda w, r, n: w.skill_level is not None and w.skill_level >= n.min_skill_level),
    (Rule.HEALTH_TIER, lambda w, r, n: w.health_tier is not None and w.health_tier >= n.health_tier),
    (Rule.CARD_COLOUR, lambda w, r, n: w.card_colour is CardColour.GREEN),
    (Rule.CREDIT_LEVEL, lambda w, r, n: w.credit_level is not CreditLevel.D),
    (Rule.FREE_SLOT, lambda w, r, n: is_free(w, r.start, r.end)),
)


def first_failed_rule(worker: WorkerEligibility, request: MatchRequest, needs: CatalogueEntry) -> Rule | None:
    return next((rule for rule, holds in RULES if not holds(worker, request, needs)), None)


def _ranked(candidates: Iterable[Candidate], top_n: int) -> tuple[Candidate, ...]:
    return tuple(heapq.nsmallest(top_n, candidates, key=lambda c: (-c.score, c.worker_id)))


def linear_match(
    workers: Iterable[WorkerEligibility],
    request: MatchRequest,
    catalogue: Catalogue,
    top_n: int = DEFAULT_TOP_N,
) -> MatchResult:
    """The match by checking every worker against every rule: the reference and the baseline."""
    needs = catalogue.entry(request.service_type)
    excluded = dict.fromkeys(RULE_ORDER, 0)
    eligible: list[Candidate] = []
    for worker in workers:
        failed = first_failed_rule(worker, request, needs)
        if failed is None:
            eligible.append(_candidate(worker, request, needs))
        else:
            excluded[failed] += 1
    return MatchResult(_ranked(eligible, top_n), excluded, len(eligible))


# -- the index -------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BEIJING_OFFSET = timedelta(hours=8)
_WEEK = 7 * 1440
_WHOLE_WEEK = (1 << _WEEK) - 1
_THURSDAY = 3 * 1440  # 1970-01-01 was a Thursday: minute 0 of the epoch is this minute of the week
_Class = tuple[int, int, bool, bool]  # skill level, health tier (0: none), GREEN, credit above D


def _beijing_minute(moment: datetime, round_up: bool = False) -> int:
    since = moment - _EPOCH + _BEIJING_OFFSET
    return -(-since // timedelta(minutes=1)) if round_up else since // timedelta(minutes=1)


def _beijing_days(start: datetime, end: datetime) -> range:
    """The Beijing days (numbered from the epoch) that ``start``-``end`` (exclusive) touches."""
    first = (start - _EPOCH + _BEIJING_OFFSET) // timedelta(days=1)
    last = (end - timedelta(microseconds=1) - _EPOCH + _BEIJING_OFFSET) // timedelta(days=1)
    return range(first, last + 1)


@functools.lru_cache(maxsize=4096)
def _slots_mask(slots: tuple[WeeklySlot, ...]) -> int:
    """The minutes of the week the slots cover, one bit each from Monday 00:00."""
    mask = 0
    for slot in slots:
        width = slot.end_minute - slot.start_minute
        mask |= ((1 << width) - 1) << ((slot.day_of_week - 1) * 1440 + slot.start_minute)
    return mask


def _window_mask(start: datetime, end: datetime) -> int:
    """The minutes of the week the window touches, wrapping from Sunday into Monday."""
    first, last = _beijing_minute(start), _beijing_minute(end, round_up=True)
    if last - first >= _WEEK:
        return _WHOLE_WEEK
    mask = ((1 << (last - first)) - 1) << ((first + _THURSDAY) % _WEEK)
    return (mask | mask >> _WEEK) & _WHOLE_WEEK


def _class_of(worker: WorkerEligibility) -> _Class:
    tier = 0 if worker.health_tier is None else int(worker.health_tier)
    return (
        0 if worker.skill_level is None else int(worker.skill_level),
        tier,
        worker.card_colour is CardColour.GREEN,
        worker.credit_level is not CreditLevel.D,
    )


def _static_failure(cls: _Class, needs: CatalogueEntry) -> Rule | None:
    """The first of the skill, health, card and credit rules a class of workers fails."""
    level, tier, green, credit_ok = cls
    if level < needs.min_skill_level:
        return Rule.SKILL_LEVEL
    if tier < needs.health_tier:
        return Rule.HEALTH_TIER
    if not green:
        return Rule.CARD_COLOUR
    return None if credit_ok else Rule.CREDIT_LEVEL


class _Group:
    """Workers of one bucket sharing a class and a weekly-slot mask: their rank keys (minus their
    points for a minimum level of 0, then their id) in order, and who is busy on each Beijing day."""

    __slots__ = ("busy_days", "keys")

    def __init__(self) -> None:
        self.keys: list[tuple[int, str]] = []
        self.busy_days: dict[int, set[str]] = {}


class _Bucket:
    """The workers of one (district, trade), grouped by class and weekly-slot mask."""

    __slots__ = ("groups", "sizes")

    def __init__(self) -> None:
        self.groups: dict[_Class, dict[int, _Group]] = {}
        self.sizes: Counter[_Class] = Counter()

    def __len__(self) -> int:
        return self.sizes.total()

    def add(
        self, worker_id: str, place: tuple[_Class, int], key: tuple[int, str], busy_days: frozenset[int]
    ) -> None:
        cls, mask = place
        by_mask = self.groups.setdefault(cls, {})
        group = by_mask.get(mask) or by_mask.setdefault(mask, _Group())
        bisect.insort(group.keys, key)
        self.sizes[cls] += 1
        for day in busy_days:
            group.busy_days.setdefault(day, set()).add(worker_id)

    def discard(
        self, worker_id: str, place: tuple[_Class, int], key: tuple[int, str], busy_days: frozenset[int]
    ) -> None:
        cls, mask = place
        by_mask = self.groups[cls]
        group = by_mask[mask]
        del group.keys[bisect.bisect_left(group.keys, key)]
        for day in busy_days:
            group.busy_days[day].discard(worker_id)
            if not group.busy_days[day]:
                del group.busy_days[day]
        if not group.keys:
            del by_mask[mask]
        if not by_mask:
            del self.groups[cls]
        self.sizes[cls] -= 1


def _days_busy(worker: WorkerEligibility) -> set[int]:
    return {day for busy in worker.busy for day in _beijing_days(busy.start, busy.end)}


def _place(worker: WorkerEligibility) -> tuple[_Class, int]:
    return _class_of(worker), _slots_mask(worker.weekly_slots)


class _Placement(NamedTuple):
    """Where a worker sits: the group in each of their buckets, their rank key in each district's
    buckets, the Beijing days they are busy; kept so that a removal need not compute it again."""

    place: tuple[_Class, int]
    keys: tuple[tuple[str, tuple[int, str]], ...]  # (district, rank key)
    days: frozenset[int]


def _placement(worker: WorkerEligibility) -> _Placement:
    keys = tuple((d, (-score_components(worker, d, 0).total, worker.worker_id)) for d in worker.districts)
    return _Placement(_place(worker), keys, frozenset(_days_busy(worker)))


_NO_BUCKET = _Bucket()


class MatchingIndex:
    """Workers' eligibility kept for matching in a few milliseconds among 100,000.

    Each worker sits in the bucket of every (district, trade) they serve; within it, in the group
    of their class (level, tier, colour, credit) and their weekly-slot mask, kept in rank order.
    A match counts the trade and district exclusions from totals and the class rules from group
    sizes, tests a weekly-slot mask once per group, checks leaves and bookings only of the
    bucket's workers busy on the window's days, and merges the groups' ranked lists until it has
    the top N. Updates cost O(districts × trades × busy days) of the worker.
    """

    def __init__(self, workers: Iterable[WorkerEligibility] = ()) -> None:
        self._records: dict[str, WorkerEligibility] = {}
        self._buckets: dict[tuple[str, Trade], _Bucket] = {}
        self._per_trade: Counter[Trade] = Counter()
        self._placements: dict[str, _Placement] = {}
        for worker in workers:
            self.upsert(worker)

    def __len__(self) -> int:
        return len(self._records)

    def get(self, worker_id: str) -> WorkerEligibility | None:
        return self._records.get(worker_id)

    def upsert(self, worker: WorkerEligibility) -> None:
        """Add ``worker``, or replace what the index holds of them (only the record when the change
        moves them nowhere: a colour from YELLOW to RED, an equal event again)."""
        placement = _placement(worker)
        held = self._records.get(worker.worker_id)
        if (
            held is not None
            and held.trades == worker.trades
            and self._placements[worker.worker_id] == placement
        ):
            self._records[worker.worker_id] = worker
            return
        self.remove(worker.worker_id)
        self._records[worker.worker_id] = worker
        self._placements[worker.worker_id] = placement
        place, days = placement.place, placement.days
        for district, key in placement.keys:
            for trade in worker.trades:
                self._buckets.setdefault((district, trade), _Bucket()).add(worker.worker_id, place, key, days)
        self._per_trade.update(worker.trades)

    def remove(self, worker_id: str) -> None:
        """Forget the worker; nothing happens for a worker the index does not hold."""
        worker = self._records.pop(worker_id, None)
        if worker is None:
            return
        place, keys, days = self._placements.pop(worker_id)
        for district, key in keys:
            for trade in worker.trades:
                self._buckets[(district, trade)].discard(worker_id, place, key, days)
        self._per_trade.subtract(worker.trades)

    def set_card_colour(self, worker_id: str, colour: CardColour) -> None:
        """The card's colour changed (KeyError for a worker the index does not hold)."""
        self.upsert(dataclasses.replace(self._records[worker_id], card_colour=colour))

    def set_credit_level(self, worker_id: str, level: CreditLevel | None) -> None:
        self.upsert(dataclasses.replace(self._records[worker_id], credit_level=level))

    def set_load(self, worker_id: str, load: int) -> None:
        self.upsert(dataclasses.replace(self._records[worker_id], load=load))

    def match(self, request: MatchRequest, catalogue: Catalogue, top_n: int = DEFAULT_TOP_N) -> MatchResult:
        """The same result as ``linear_match`` over the workers held."""
        needs = catalogue.entry(request.service_type)
        bucket = self._buckets.get((request.district_code, needs.trade), _NO_BUCKET)
        excluded = dict.fromkeys(RULE_ORDER, 0)
        excluded[Rule.TRADE] = len(self._records) - self._per_trade[needs.trade]
        excluded[Rule.DISTRICT] = self._per_trade[needs.trade] - len(bucket)
        in_slots = _within_slots(bucket, needs, _window_mask(request.start, request.end), excluded)
        busy = self._busy_among(in_slots, request)
        excluded[Rule.FREE_SLOT] += len(busy)
        ranked = (key[1] for key in heapq.merge(*(g.keys for g in in_slots)) if key[1] not in busy)
        candidates = tuple(
            _candidate(self._records[w], request, needs) for w in itertools.islice(ranked, top_n)
        )
        return MatchResult(candidates, excluded, sum(len(g.keys) for g in in_slots) - len(busy))

    def _busy_among(self, groups: list[_Group], request: MatchRequest) -> set[str]:
        """The workers of ``groups`` on leave or booked during the request's window."""
        days = _beijing_days(request.start, request.end)
        start, end = request.start, request.end
        return {
            w
            for group in groups
            for day in days
            for w in group.busy_days.get(day, ())
            if any(b.overlaps(start, end) for b in self._records[w].busy)
        }


def _within_slots(
    bucket: _Bucket, needs: CatalogueEntry, window: int, excluded: dict[Rule, int]
) -> list[_Group]:
    """The bucket's groups passing the class rules whose weekly slots hold the window; counts the
    others' workers under the rule they fail."""
    found = []
    for cls, by_mask in bucket.groups.items():
        failed = _static_failure(cls, needs)
        if failed is not None:
            excluded[failed] += bucket.sizes[cls]
            continue
        for mask, group in by_mask.items():
            if mask & window == window:
                found.append(group)
            else:
                excluded[Rule.FREE_SLOT] += len(group.keys)
    return found
