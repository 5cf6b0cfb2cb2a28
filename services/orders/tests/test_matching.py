"""Matching: each eligibility rule at its boundary, the counts per rule, the ranking and its
tie-break, the index agreeing with the linear scan, and updates taking effect."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from libs.common.beijing import BEIJING
from libs.common.districts import BEIJING_DISTRICTS
from services.orders.domain import (
    DEFAULT_CATALOGUE,
    CardColour,
    CreditLevel,
    HealthTier,
    ServiceType,
    SkillLevel,
)
from services.orders.domain import Trade as T
from services.orders.domain.districts import NEIGHBOURS, district_distance
from services.orders.domain.matching import (
    Interval,
    MatchingIndex,
    MatchRequest,
    MatchResult,
    Rule,
    ScoreComponents,
    WeeklySlot,
    WorkerEligibility,
    linear_match,
    rating_points,
)

CHAOYANG, HAIDIAN, DONGCHENG, YANQING = "110105", "110108", "110101", "110119"
MONDAY = datetime(2024, 6, 3, tzinfo=BEIJING)  # a Monday
WEEKDAYS_8_TO_18 = tuple(WeeklySlot(day, 8 * 60, 18 * 60) for day in range(1, 6))
ALL_WEEK = tuple(WeeklySlot(day, 0, 1440) for day in range(1, 8))

Matcher = Callable[[list[WorkerEligibility], MatchRequest], MatchResult]


def _linear(workers: list[WorkerEligibility], request: MatchRequest) -> MatchResult:
    return linear_match(workers, request, DEFAULT_CATALOGUE)


def _indexed(workers: list[WorkerEligibility], request: MatchRequest) -> MatchResult:
    return MatchingIndex(workers).match(request, DEFAULT_CATALOGUE)


@pytest.fixture(params=[_linear, _indexed], ids=["linear", "index"])
def match(request: pytest.FixtureRequest) -> Matcher:
    matcher: Matcher = request.param
    return matcher


def _worker(worker_id: str = "w-1", **changes: Any) -> WorkerEligibility:
    """A GREEN level-3 housekeeper of Chaoyang, free on weekdays 8:00-18:00, eligible for cleaning."""
    worker = WorkerEligibility(
        worker_id=worker_id,
        home_district=CHAOYANG,
        districts=frozenset({CHAOYANG}),
        trades=frozenset({T.HOUSEKEEPER}),
        skill_level=SkillLevel.LEVEL_3,
        health_tier=HealthTier.GENERAL,
        card_colour=CardColour.GREEN,
        credit_level=CreditLevel.B,
        weekly_slots=WEEKDAYS_8_TO_18,
    )
    return dataclasses.replace(worker, **changes)


def _cleaning(
    start: datetime = MONDAY + timedelta(hours=9), hours: float = 3, **changes: Any
) -> MatchRequest:
    request = MatchRequest(ServiceType.CLEANING, CHAOYANG, start, start + timedelta(hours=hours))
    return dataclasses.replace(request, **changes)


def _excluded_by(result: MatchResult) -> dict[Rule, int]:
    return {rule: n for rule, n in result.excluded.items() if n}


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"trades": frozenset({T.FAMILY_CARER})}, Rule.TRADE),
        ({"districts": frozenset({HAIDIAN})}, Rule.DISTRICT),
        ({"health_tier": None}, Rule.HEALTH_TIER),
        ({"card_colour": CardColour.YELLOW}, Rule.CARD_COLOUR),
        ({"card_colour": CardColour.RED}, Rule.CARD_COLOUR),
        ({"credit_level": CreditLevel.D}, Rule.CREDIT_LEVEL),
        ({"weekly_slots": ()}, Rule.FREE_SLOT),
    ],
)
def test_each_rule_excludes_and_is_counted(match: Matcher, changes: dict[str, Any], rule: Rule) -> None:
    result = match([_worker(**changes)], _cleaning())

    assert result.candidates == ()
    assert _excluded_by(result) == {rule: 1}


@pytest.mark.parametrize(
    ("level", "eligible"),
    [(SkillLevel.LEVEL_3, True), (SkillLevel.LEVEL_4, True), (SkillLevel.LEVEL_5, False)],
)
def test_skill_level_at_least_the_minimum(match: Matcher, level: SkillLevel, eligible: bool) -> None:
    organising = _cleaning(service_type=ServiceType.ORGANISING)  # needs level 4

    result = match([_worker(skill_level=level)], organising)

    assert result.eligible == int(eligible)
    assert result.excluded[Rule.SKILL_LEVEL] == int(not eligible)


@pytest.mark.parametrize(
    ("tier", "eligible"),
    [
        (HealthTier.LIVE_IN, False),
        (HealthTier.ELDERLY_CARE, True),
        (HealthTier.MATERNAL_INFANT, True),
        (None, False),
    ],
)
def test_a_higher_health_tier_satisfies_a_lower(
    match: Matcher, tier: HealthTier | None, eligible: bool
) -> None:
    carer = _worker(trades=frozenset({T.FAMILY_CARER}), health_tier=tier)

    result = match([carer], _cleaning(service_type=ServiceType.ELDERLY_CARE))  # needs ELDERLY_CARE

    assert result.eligible == int(eligible)
    assert result.excluded[Rule.HEALTH_TIER] == int(not eligible)


@pytest.mark.parametrize("level", [CreditLevel.A, CreditLevel.C, None])
def test_credit_above_d_or_not_yet_known_is_eligible(match: Matcher, level: CreditLevel | None) -> None:
    assert match([_worker(credit_level=level)], _cleaning()).eligible == 1


@pytest.mark.parametrize(
    ("start", "hours", "eligible"),
    [
        (MONDAY + timedelta(hours=8), 10, True),  # exactly the slot
        (MONDAY + timedelta(hours=7, minutes=59), 1, False),  # a minute early
        (MONDAY + timedelta(hours=15), 3 + 1 / 60, False),  # a minute late
        (MONDAY + timedelta(hours=17, minutes=59, seconds=30), 0.5 / 60, True),  # rounds within 17:59
        (MONDAY + timedelta(hours=17, minutes=59, seconds=30), 1 / 60, False),  # ends 18:00:30, rounded up
        (MONDAY + timedelta(days=5, hours=9), 3, False),  # Saturday
    ],
)
def test_free_slot_inside_the_weekly_slots_in_beijing_time(
    match: Matcher, start: datetime, hours: float, eligible: bool
) -> None:
    result = match([_worker()], _cleaning(start=start, hours=hours))

    assert result.eligible == int(eligible)


def test_the_time_zone_of_the_request_does_not_matter(match: Matcher) -> None:
    utc_start = (MONDAY + timedelta(hours=9)).astimezone(BEIJING.utc)  # 01:00 UTC

    assert match([_worker()], _cleaning(start=utc_start)).eligible == 1


def test_adjacent_slots_join_across_midnight_and_within_a_day(match: Matcher) -> None:
    slots = (WeeklySlot(7, 20 * 60, 1440), WeeklySlot(1, 0, 6 * 60), WeeklySlot(1, 6 * 60, 9 * 60))
    sunday_night = MONDAY - timedelta(hours=2)

    assert match([_worker(weekly_slots=slots)], _cleaning(start=sunday_night, hours=10)).eligible == 1
    assert match([_worker(weekly_slots=slots)], _cleaning(start=sunday_night, hours=12)).eligible == 0


def test_a_live_in_month_needs_the_whole_week(match: Matcher) -> None:
    live_in = _cleaning(
        start=MONDAY + timedelta(days=2), hours=26 * 24, service_type=ServiceType.LIVE_IN_HOUSEKEEPER
    )
    every_day = _worker("w-every-day", health_tier=HealthTier.LIVE_IN, weekly_slots=ALL_WEEK)
    no_sunday = _worker("w-no-sunday", health_tier=HealthTier.LIVE_IN, weekly_slots=ALL_WEEK[:6])

    result = match([every_day, no_sunday], live_in)

    assert [c.worker_id for c in result.candidates] == ["w-every-day"]
    assert _excluded_by(result) == {Rule.FREE_SLOT: 1}


@pytest.mark.parametrize(
    ("busy_from", "busy_hours", "eligible"),
    [
        (MONDAY + timedelta(hours=6), 3, True),  # ends as the service starts
        (MONDAY + timedelta(hours=6), 3 + 1 / 3600, False),  # a second into it
        (MONDAY + timedelta(hours=12), 2, True),  # starts as it ends
        (MONDAY + timedelta(hours=11, minutes=59), 2, False),
        (MONDAY - timedelta(days=3), 24 * 10, False),  # a long leave around it
    ],
)
@pytest.mark.parametrize("kind", ["leaves", "bookings"])
def test_leave_and_bookings_are_half_open(
    match: Matcher, kind: str, busy_from: datetime, busy_hours: float, eligible: bool
) -> None:
    busy = (Interval(busy_from, busy_from + timedelta(hours=busy_hours)),)

    result = match([_worker("w-1", **{kind: busy})], _cleaning())

    assert result.eligible == int(eligible)
    assert result.excluded[Rule.FREE_SLOT] == int(not eligible)


def test_a_worker_failing_several_rules_counts_under_the_first(match: Matcher) -> None:
    workers = [
        _worker("w-trade", trades=frozenset({T.MATERNITY_NURSE}), districts=frozenset({HAIDIAN})),
        _worker("w-district", districts=frozenset({HAIDIAN}), card_colour=CardColour.RED),
        _worker("w-tier", health_tier=None, card_colour=CardColour.YELLOW, credit_level=CreditLevel.D),
        _worker("w-card", card_colour=CardColour.YELLOW, credit_level=CreditLevel.D, weekly_slots=()),
        _worker("w-credit", credit_level=CreditLevel.D, weekly_slots=()),
        _worker("w-slot", weekly_slots=()),
        _worker("w-ok"),
    ]

    result = match(workers, _cleaning())

    assert _excluded_by(result) == {
        Rule.TRADE: 1,
        Rule.DISTRICT: 1,
        Rule.HEALTH_TIER: 1,
        Rule.CARD_COLOUR: 1,
        Rule.CREDIT_LEVEL: 1,
        Rule.FREE_SLOT: 1,
    }
    assert [c.worker_id for c in result.candidates] == ["w-ok"]
    assert result.eligible == 1


def test_the_score_and_its_components(match: Matcher) -> None:
    worker = _worker(
        credit_level=CreditLevel.A, rating_total=48, rating_count=10, load=1, home_district=HAIDIAN
    )

    (candidate,) = match([worker], _cleaning()).candidates

    assert candidate.components == ScoreComponents(
        credit=300, rating=272, skill_above_minimum=100, district_distance=60, load=75
    )
    assert candidate.score == 807
    assert candidate.passed == tuple(Rule)


def test_a_new_worker_is_rated_as_the_prior() -> None:
    assert rating_points(0, 0) == 240
    assert rating_points(5 * 100, 100) == 60 * (20 + 500) // 105


def test_ranking_best_first_and_ties_by_worker_id(match: Matcher) -> None:
    workers = [
        _worker("w-c", credit_level=CreditLevel.C),
        _worker("w-b2"),
        _worker("w-a", credit_level=CreditLevel.A),
        _worker("w-b1"),
        _worker("w-far", home_district=YANQING),
        _worker("w-busy", load=4),
    ]

    result = match(workers, _cleaning())

    assert [c.worker_id for c in result.candidates] == ["w-a", "w-b1", "w-b2", "w-far", "w-busy", "w-c"]
    assert [c.score for c in result.candidates] == sorted((c.score for c in result.candidates), reverse=True)


def test_only_the_top_n_are_listed_but_all_eligible_are_counted() -> None:
    workers = [_worker(f"w-{i:02}", load=i % 5) for i in range(30)]

    result = MatchingIndex(workers).match(_cleaning(), DEFAULT_CATALOGUE, top_n=4)

    assert [c.worker_id for c in result.candidates] == ["w-00", "w-05", "w-10", "w-15"]
    assert result.eligible == 30


def test_district_distances_are_symmetric_and_neighbours_are_one_border_apart() -> None:
    assert len(BEIJING_DISTRICTS) == 16
    assert all(district_distance(a, b) == district_distance(b, a) for a in NEIGHBOURS for b in NEIGHBOURS)
    assert all(district_distance(a, b) == 1 for a, near in NEIGHBOURS.items() for b in near)
    assert district_distance(DONGCHENG, YANQING) == 3


def _random_worker(rng: random.Random, n: int) -> WorkerEligibility:
    districts = rng.sample(sorted(BEIJING_DISTRICTS)[:5], rng.randint(1, 3))
    start = MONDAY + timedelta(days=rng.randint(-3, 10), hours=rng.randint(0, 23))
    busy = tuple(
        Interval(start, start + timedelta(hours=rng.randint(1, 72))) for _ in range(rng.randint(0, 2))
    )
    day_start = rng.choice([0, 6, 8, 9]) * 60
    return WorkerEligibility(
        worker_id=f"w-{n:05}",
        home_district=rng.choice(sorted(BEIJING_DISTRICTS)),
        districts=frozenset(districts),
        trades=frozenset(rng.sample(list(T), rng.randint(1, 2))),
        skill_level=rng.choice(list(SkillLevel)),
        health_tier=rng.choice([None, *HealthTier]),
        card_colour=rng.choices(list(CardColour), weights=[8, 1, 1])[0],
        credit_level=rng.choice([None, *CreditLevel]),
        rating_total=(count := rng.randint(0, 20)) * rng.randint(2, 5),
        rating_count=count,
        load=rng.randint(0, 5),
        weekly_slots=tuple(
            WeeklySlot(d, day_start, rng.choice([1080, 1440])) for d in rng.sample(range(1, 8), 5)
        ),
        leaves=busy[:1],
        bookings=busy[1:],
    )


def _random_request(rng: random.Random) -> MatchRequest:
    service_type = rng.choice(list(ServiceType))
    start = MONDAY + timedelta(days=rng.randint(0, 7), hours=rng.randint(0, 23), minutes=rng.choice([0, 30]))
    hours = rng.randint(1, DEFAULT_CATALOGUE.entry(service_type).max_hours // 4 or 1)
    district = rng.choice(sorted(BEIJING_DISTRICTS)[:6])
    return MatchRequest(service_type, district, start, start + timedelta(hours=hours))


def test_the_index_gives_the_linear_scans_answer_on_random_workers() -> None:
    rng = random.Random(7)
    workers = [_random_worker(rng, n) for n in range(3_000)]
    index = MatchingIndex(workers)
    requests = [_random_request(rng) for _ in range(60)]

    results = [
        (index.match(r, DEFAULT_CATALOGUE), linear_match(workers, r, DEFAULT_CATALOGUE)) for r in requests
    ]

    assert all(indexed == linear for indexed, linear in results)
    assert sum(linear.eligible > 10 for _, linear in results) > 10  # the top N was really chosen
    assert all(sum(linear.excluded.values()) + linear.eligible == 3_000 for _, linear in results)


def test_the_index_updated_field_by_field_gives_the_linear_scans_answer_on_the_final_workers() -> None:
    rng = random.Random(11)
    workers = {w.worker_id: w for w in (_random_worker(rng, n) for n in range(1_000))}
    index = MatchingIndex(workers.values())
    for _ in range(5_000):  # many of them move the worker nowhere: RED to YELLOW, the same value again
        worker = workers[f"w-{rng.randrange(1_000):05}"]
        changed = rng.choice(
            [
                {"card_colour": rng.choice(list(CardColour))},
                {"credit_level": rng.choice([None, *CreditLevel])},
                {"load": rng.randint(0, 5)},
                {"weekly_slots": _random_worker(rng, 0).weekly_slots},
                {"leaves": _random_worker(rng, 0).leaves},
                {"trades": frozenset(rng.sample(list(T), rng.randint(1, 2)))},
                {},
            ]
        )
        workers[worker.worker_id] = dataclasses.replace(worker, **changed)
        index.upsert(workers[worker.worker_id])

    for request in (_random_request(rng) for _ in range(60)):
        assert index.match(request, DEFAULT_CATALOGUE) == linear_match(
            workers.values(), request, DEFAULT_CATALOGUE
        )
    assert all(index.get(w) is worker for w, worker in workers.items())


def test_a_worker_turned_yellow_drops_out_and_green_again_returns() -> None:
    index = MatchingIndex([_worker("w-1"), _worker("w-2")])

    index.set_card_colour("w-1", CardColour.YELLOW)
    after_yellow = index.match(_cleaning(), DEFAULT_CATALOGUE)
    index.set_card_colour("w-1", CardColour.GREEN)

    assert [c.worker_id for c in after_yellow.candidates] == ["w-2"]
    assert after_yellow.excluded[Rule.CARD_COLOUR] == 1
    assert index.match(_cleaning(), DEFAULT_CATALOGUE).eligible == 2


def test_credit_and_load_updates_change_eligibility_and_order() -> None:
    index = MatchingIndex([_worker("w-1"), _worker("w-2"), _worker("w-3")])

    index.set_credit_level("w-3", CreditLevel.D)
    index.set_load("w-1", 2)
    result = index.match(_cleaning(), DEFAULT_CATALOGUE)

    assert [c.worker_id for c in result.candidates] == ["w-2", "w-1"]
    assert result.excluded[Rule.CREDIT_LEVEL] == 1


def test_upsert_moves_a_worker_and_remove_forgets_them() -> None:
    index = MatchingIndex([_worker("w-1"), _worker("w-2")])

    index.upsert(_worker("w-1", districts=frozenset({HAIDIAN})))
    index.remove("w-2")
    index.remove("w-unknown")
    result = index.match(_cleaning(), DEFAULT_CATALOGUE)

    assert len(index) == 1
    assert (result.eligible, _excluded_by(result)) == (0, {Rule.DISTRICT: 1})
    assert index.match(_cleaning(district_code=HAIDIAN), DEFAULT_CATALOGUE).eligible == 1


def test_a_field_update_of_an_unknown_worker_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        MatchingIndex().set_load("w-unknown", 1)
