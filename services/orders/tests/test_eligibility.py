"""The eligibility index following the projection: the initial load in batches, only changed rows
applied after it, what a row means to matching (health validity on the Beijing day, no certificate,
bookings and load), and the loop that outlives an outage of the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from libs.common.beijing import BEIJING
from libs.common.settings import ServiceSettings
from libs.common.testing import FixedClock
from services.orders.app import OrdersSettings
from services.orders.domain import ServiceType
from services.orders.domain.catalogue import DEFAULT_CATALOGUE
from services.orders.domain.matching import (
    Interval,
    MatchRequest,
    MatchResult,
    Rule,
    WeeklySlot,
    WorkerEligibility,
)
from services.orders.domain.vocabulary import CardColour, HealthTier, SkillLevel, Trade
from services.orders.eligibility import EligibilityIndex, EligibilityRecord, eligibility_of
from services.orders.tests.fake_eligibility import FakeEligibilityFeed, FakeEligibilityUnitOfWork

# 01:00 on Monday 2 March 2026 in Beijing, still Sunday 1 March in UTC
NOW = datetime(2026, 3, 1, 17, tzinfo=UTC)
BEIJING_TODAY = date(2026, 3, 2)
CHAOYANG = "110105"
WEEKDAYS_8_TO_18 = [WeeklySlot(day, 8 * 60, 18 * 60) for day in range(1, 6)]
TUESDAY_9 = datetime(2026, 3, 3, 9, tzinfo=BEIJING)


@pytest.fixture
def uow() -> FakeEligibilityUnitOfWork:
    return FakeEligibilityUnitOfWork(FixedClock(NOW))


@pytest.fixture
def feed(uow: FakeEligibilityUnitOfWork) -> FakeEligibilityFeed:
    return FakeEligibilityFeed(uow.eligibility, uow.clock)


def _cleaning(start: datetime = TUESDAY_9, hours: int = 3) -> MatchRequest:
    return MatchRequest(ServiceType.CLEANING, CHAOYANG, start, start + timedelta(hours=hours))


def _match(index: EligibilityIndex, request: MatchRequest | None = None) -> MatchResult:
    return index.match(request or _cleaning(), DEFAULT_CATALOGUE)


def _held(index: EligibilityIndex, worker_id: str) -> WorkerEligibility:
    worker = index.get(worker_id)
    assert worker is not None
    return worker


def _excluded(result: MatchResult) -> dict[Rule, int]:
    return {rule: count for rule, count in result.excluded.items() if count}


async def _eligible(
    uow: FakeEligibilityUnitOfWork, *worker_ids: str, valid_until: date = date(2026, 8, 31)
) -> None:
    """GREEN level-3 housekeepers of Chaoyang with a valid health check, free on weekdays 8:00-18:00."""
    async with uow:
        for worker_id in worker_ids:
            repo = uow.eligibility
            await repo.set_registration(worker_id, "c-1", [CHAOYANG], [Trade.HOUSEKEEPER])
            await repo.set_skill_level(worker_id, SkillLevel.LEVEL_3)
            await repo.set_health_check(worker_id, HealthTier.GENERAL, valid_until)
            await repo.set_availability(worker_id, WEEKDAYS_8_TO_18, [])
            await repo.set_card_colour(worker_id, CardColour.GREEN)
        await uow.commit()


async def test_the_first_catch_up_loads_every_worker_in_batches(
    uow: FakeEligibilityUnitOfWork, feed: FakeEligibilityFeed
) -> None:
    await _eligible(uow, "w-1", "w-2", "w-3", "w-4", "w-5")
    index = EligibilityIndex(feed, batch_size=2)

    assert await index.catch_up() == 5

    revisions = sorted(uow.eligibility.revisions.values())
    assert feed.asked == [0, revisions[1], revisions[3]]  # two, two, then one: the last batch
    assert (len(index), index.revision) == (5, revisions[-1])
    assert [c.worker_id for c in _match(index).candidates] == ["w-1", "w-2", "w-3", "w-4", "w-5"]


async def test_catch_up_applies_only_the_rows_changed_and_a_yellow_card_drops_the_worker(
    uow: FakeEligibilityUnitOfWork, feed: FakeEligibilityFeed
) -> None:
    await _eligible(uow, "w-1", "w-2", "w-3")
    index = EligibilityIndex(feed)
    await index.catch_up()
    loaded = index.revision

    async with uow:
        await uow.eligibility.set_card_colour("w-2", CardColour.YELLOW)
        await uow.commit()

    assert await index.catch_up() == 1
    assert feed.asked[-1] == loaded
    result = _match(index)
    assert [c.worker_id for c in result.candidates] == ["w-1", "w-3"]
    assert _excluded(result) == {Rule.CARD_COLOUR: 1}
    assert await index.catch_up() == 0


async def test_a_health_check_counts_until_its_last_day_in_beijing(
    uow: FakeEligibilityUnitOfWork, feed: FakeEligibilityFeed
) -> None:
    await _eligible(uow, "w-today", valid_until=BEIJING_TODAY)
    await _eligible(uow, "w-yesterday", valid_until=BEIJING_TODAY - timedelta(days=1))  # today in UTC
    index = EligibilityIndex(feed)
    await index.catch_up()

    result = _match(index)

    assert [c.worker_id for c in result.candidates] == ["w-today"]
    assert _excluded(result) == {Rule.HEALTH_TIER: 1}
    assert _held(index, "w-yesterday").health_tier is None


async def test_a_worker_without_a_certificate_fails_the_skill_level_rule(
    uow: FakeEligibilityUnitOfWork, feed: FakeEligibilityFeed
) -> None:
    await _eligible(uow, "w-certified")
    async with uow:
        repo = uow.eligibility
        await repo.set_registration("w-new", "c-1", [CHAOYANG], [Trade.HOUSEKEEPER])
        await repo.set_health_check("w-new", HealthTier.MATERNAL_INFANT, date(2026, 8, 31))
        await repo.set_availability("w-new", WEEKDAYS_8_TO_18, [])
        await repo.set_card_colour("w-new", CardColour.GREEN)
        await uow.commit()
    index = EligibilityIndex(feed)
    await index.catch_up()

    result = _match(index)

    assert [c.worker_id for c in result.candidates] == ["w-certified"]
    assert _excluded(result) == {Rule.SKILL_LEVEL: 1}


async def test_touched_bookings_are_reloaded_as_busy_time_and_load(
    uow: FakeEligibilityUnitOfWork, feed: FakeEligibilityFeed
) -> None:
    await _eligible(uow, "w-1", "w-2")
    index = EligibilityIndex(feed)
    await index.catch_up()
    feed.bookings["w-1"] = [Interval(TUESDAY_9 + timedelta(hours=2), TUESDAY_9 + timedelta(hours=4))]

    assert await index.catch_up() == 0  # a booking alone is not seen until the worker is touched
    async with uow:
        await uow.eligibility.touch("w-1")
        await uow.eligibility.touch("w-unknown")  # no row: nothing to reload
        await uow.commit()
    assert await index.catch_up() == 1

    assert _held(index, "w-1").load == 1
    assert [c.worker_id for c in _match(index).candidates] == ["w-2"]
    assert _excluded(_match(index)) == {Rule.FREE_SLOT: 1}
    assert [c.worker_id for c in _match(index, _cleaning(TUESDAY_9 + timedelta(hours=4))).candidates] == [
        "w-2",  # no booking: 25 load points more
        "w-1",
    ]


async def test_ratings_add_up_and_rank_the_worker(
    uow: FakeEligibilityUnitOfWork, feed: FakeEligibilityFeed
) -> None:
    await _eligible(uow, "w-1", "w-2")
    async with uow:
        await uow.eligibility.record_rating("w-2", 5)
        await uow.eligibility.record_rating("w-2", 5)
        await uow.commit()
    index = EligibilityIndex(feed)
    await index.catch_up()

    assert (uow.eligibility.records["w-2"].rating_total, uow.eligibility.records["w-2"].rating_count) == (
        10,
        2,
    )
    [first, second] = _match(index).candidates
    assert (first.worker_id, first.components.rating) == ("w-2", 60 * (20 + 10) // 7)
    assert (second.worker_id, second.components.rating) == ("w-1", 240)


def test_a_record_becomes_a_worker_with_their_bookings_as_load() -> None:
    booking = Interval(TUESDAY_9, TUESDAY_9 + timedelta(hours=3))
    record = EligibilityRecord(
        "w-1", card_colour=CardColour.RED, skill_level=2, rating_total=9, rating_count=2
    )

    worker = eligibility_of(record, [booking, booking], BEIJING_TODAY)

    assert (worker.load, worker.bookings, worker.card_colour) == (2, (booking, booking), CardColour.RED)
    assert (worker.skill_level, worker.rating_total, worker.rating_count) == (SkillLevel.LEVEL_4, 9, 2)


class FlakyFeed(FakeEligibilityFeed):
    """Refuses ``failures`` calls as an unreachable database would, then answers."""

    def __init__(self, uow: FakeEligibilityUnitOfWork, failures: int, error: Exception) -> None:
        super().__init__(uow.eligibility, uow.clock)
        self.failures = failures
        self.error = error
        self.answered = asyncio.Event()

    async def changed_since(self, revision: int, limit: int) -> list[tuple[int, WorkerEligibility]]:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.answered.set()
        return await super().changed_since(revision, limit)


async def test_the_loop_waits_out_an_outage_and_then_loads(uow: FakeEligibilityUnitOfWork) -> None:
    await _eligible(uow, "w-1")
    feed = FlakyFeed(uow, failures=3, error=ConnectionRefusedError("database down"))
    index = EligibilityIndex(feed)

    running = asyncio.create_task(index.run(interval_s=0.001))
    await asyncio.wait_for(feed.answered.wait(), timeout=5)
    running.cancel()

    with pytest.raises(asyncio.CancelledError):  # it was still running: the outage did not end it
        await running
    assert feed.failures == 0
    assert [c.worker_id for c in _match(index).candidates] == ["w-1"]


async def test_the_loop_ends_on_an_error_that_is_not_an_outage(uow: FakeEligibilityUnitOfWork) -> None:
    index = EligibilityIndex(FlakyFeed(uow, failures=1, error=ValueError("a bug")))

    with pytest.raises(ValueError, match="a bug"):
        await asyncio.wait_for(index.run(interval_s=0.001), timeout=5)


def test_orders_collects_young_garbage_less_often_than_python_by_default() -> None:
    """The index's churn made Python's default cost a third of the CPU (docs/performance.md)."""
    assert OrdersSettings().gc_young_threshold == 50_000 > ServiceSettings().gc_young_threshold
