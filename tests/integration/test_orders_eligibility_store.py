"""Workers' eligibility on the real PostgreSQL (orders' migrations in a scratch database): upserts
through a unit of work, a new revision on every change and revisions visible in their order, the
feed's bookings from real orders rows, and the index catching up over the real feed."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from libs.common.beijing import BEIJING
from libs.common.db import PgUnitOfWork
from libs.common.pii import Keyring
from libs.common.testing import FixedClock
from services.orders import app as orders_app
from services.orders.domain import ServiceType
from services.orders.domain.catalogue import DEFAULT_CATALOGUE
from services.orders.domain.matching import (
    Interval,
    MatchRequest,
    Rule,
    WeeklySlot,
    WorkerEligibility,
)
from services.orders.domain.vocabulary import (
    CardColour,
    CreditLevel,
    HealthTier,
    SkillLevel,
    Trade,
)
from services.orders.eligibility import CardOnFile, EligibilityIndex
from services.orders.eligibility_store import PgEligibilityFeed, PgEligibilityRepository
from services.orders.store import PgOrdersUnitOfWork


@pytest.fixture
def migrations() -> Path:
    """What the conftest's ``pool`` fixture migrates: the orders service's tables."""
    return orders_app.MIGRATIONS


NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)  # 10:00 on Monday in Beijing
CHAOYANG = "110105"
WEEKDAYS_8_TO_18 = [WeeklySlot(day, 8 * 60, 18 * 60) for day in range(1, 6)]
TUESDAY_9 = datetime(2026, 3, 3, 9, tzinfo=BEIJING)


class EligibilityUnitOfWork(PgUnitOfWork):
    eligibility: PgEligibilityRepository

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.eligibility = PgEligibilityRepository(conn)


@pytest.fixture
def feed(pool: asyncpg.Pool) -> PgEligibilityFeed:
    return PgEligibilityFeed(pool, FixedClock(NOW))


async def _revision(uow: EligibilityUnitOfWork, worker_id: str) -> int | None:
    revision: int | None = await uow.conn.fetchval(
        "SELECT revision FROM worker_eligibility WHERE worker_id = $1", worker_id
    )
    return revision


async def _eligible(pool: asyncpg.Pool, worker_id: str, colour: CardColour = CardColour.GREEN) -> None:
    """A level-3 housekeeper of Chaoyang with a valid health check, free on weekdays 8:00-18:00."""
    async with EligibilityUnitOfWork(pool) as uow:
        repo = uow.eligibility
        await repo.set_registration(worker_id, "c-1", [CHAOYANG], [Trade.HOUSEKEEPER])
        await repo.set_skill_level(worker_id, SkillLevel.LEVEL_3)
        await repo.set_health_check(worker_id, HealthTier.GENERAL, date(2026, 8, 31))
        await repo.set_availability(worker_id, WEEKDAYS_8_TO_18, [])
        await repo.set_card_colour(worker_id, colour)
        await uow.commit()


async def _order(
    pool: asyncpg.Pool, worker_id: str, state: str, start: datetime, hours: int, assigned: bool = True
) -> None:
    """An orders row with the columns of 0001 and 0002 that a booking needs."""
    await pool.execute(
        "INSERT INTO orders (order_id, platform_id, request_id, request_fingerprint, service_type,"
        " district_code, consumer_ref, worker_id, scheduled_start, duration_hours, state, created_at,"
        " assigned_worker_id) VALUES ($1, 'p-1', $2, 'f', 'cleaning', $3, 'c-1', $4, $5, $6, $7, $8, $9)",
        uuid.uuid4(),
        uuid.uuid4(),
        CHAOYANG,
        worker_id,
        start,
        hours,
        state,
        NOW,
        worker_id if assigned else None,
    )


async def test_setters_upsert_the_row_and_every_change_draws_a_higher_revision(
    pool: asyncpg.Pool, feed: PgEligibilityFeed
) -> None:
    leave = Interval(TUESDAY_9, TUESDAY_9 + timedelta(days=2))
    async with EligibilityUnitOfWork(pool) as uow:
        repo = uow.eligibility
        revisions: list[int] = []
        changes = [
            repo.set_credit_level("w-1", CreditLevel.B),  # before the registration: creates the row
            repo.set_registration(
                "w-1", "c-1", ["110108", CHAOYANG], [Trade.HOUSEKEEPER, Trade.FAMILY_CARER]
            ),
            repo.set_company("w-1", "c-2"),
            repo.set_health_check("w-1", HealthTier.LIVE_IN, date(2026, 8, 31)),
            repo.set_skill_level("w-1", SkillLevel.LEVEL_4),
            repo.set_availability("w-1", WEEKDAYS_8_TO_18, [leave]),
            repo.issue_card("w-1", "card-1"),
            repo.set_card_colour("w-1", CardColour.GREEN),
            repo.record_rating("w-1", 5),
            repo.record_rating("w-1", 3),
            repo.touch("w-1"),
        ]
        for change in changes:
            await change
            revision = await _revision(uow, "w-1")
            assert revision is not None
            revisions.append(revision)
        await uow.commit()

    assert revisions == sorted(set(revisions))  # each higher than the one before
    [(revision, worker)] = await feed.changed_since(0, 10)
    assert revision == revisions[-1]
    assert worker == WorkerEligibility(
        worker_id="w-1",
        home_district="110108",
        districts=frozenset({"110108", CHAOYANG}),
        trades=frozenset({Trade.HOUSEKEEPER, Trade.FAMILY_CARER}),
        skill_level=SkillLevel.LEVEL_4,
        health_tier=HealthTier.LIVE_IN,
        card_colour=CardColour.GREEN,
        credit_level=CreditLevel.B,
        rating_total=8,
        rating_count=2,
        weekly_slots=tuple(WEEKDAYS_8_TO_18),
        leaves=(leave,),
    )
    assert await feed.changed_since(revision, 10) == []


async def _write_mix(repo: PgEligibilityRepository, prefix: str) -> None:
    """Writes of every kind, several per worker, interleaved as a poll of both topics has them."""
    leave = Interval(TUESDAY_9, TUESDAY_9 + timedelta(days=2))
    one, two, three = f"{prefix}-1", f"{prefix}-2", f"{prefix}-3"
    await repo.set_credit_level(one, CreditLevel.B)
    await repo.set_company(one, "c-0")
    await repo.set_registration(one, "c-1", ["110108", CHAOYANG], [Trade.HOUSEKEEPER])
    await repo.issue_card(one, "card-1")
    await repo.set_card_colour(one, CardColour.GREEN)
    await repo.set_credit_level(two, CreditLevel.A)
    await repo.revoke_card(one, "card-0")  # not the card on file: changes nothing
    await repo.set_availability(one, WEEKDAYS_8_TO_18, [leave])
    await repo.set_credit_level(one, CreditLevel.D)
    await repo.record_rating(two, 5)
    await repo.set_card_colour(one, CardColour.RED)
    await repo.set_company(one, "c-2")
    await repo.issue_card(two, "card-2")
    await repo.revoke_card(two, "card-2")
    await repo.record_rating(two, 2)
    await repo.set_health_check(three, HealthTier.GENERAL, date(2026, 8, 31))
    await repo.set_skill_level(three, SkillLevel.LEVEL_3)
    await repo.set_availability(one, WEEKDAYS_8_TO_18[:2], [])
    await repo.set_health_check(three, HealthTier.LIVE_IN, date(2026, 9, 30))
    await repo.touch(two)


async def test_held_writes_flushed_together_leave_the_rows_one_by_one_writes_leave(
    pool: asyncpg.Pool, feed: PgEligibilityFeed
) -> None:
    async with EligibilityUnitOfWork(pool) as uow:
        await _write_mix(uow.eligibility, "alone")
        await uow.commit()
    async with EligibilityUnitOfWork(pool) as uow:
        uow.eligibility.hold()
        await _write_mix(uow.eligibility, "held")
        assert await _revision(uow, "held-1") is None  # nothing sent yet
        await uow.eligibility.flush()
        await uow.commit()
    alone = await feed.changed_since(0, 3)
    held = await feed.changed_since(alone[-1][0], 10)
    assert len(held) == 3
    as_alone = {w.worker_id.replace("held", "alone"): dataclasses.replace(w, worker_id="") for _, w in held}
    assert as_alone == {w.worker_id: dataclasses.replace(w, worker_id="") for _, w in alone}


async def test_writes_still_held_at_the_commit_of_the_orders_unit_of_work_are_sent(
    pool: asyncpg.Pool,
) -> None:
    async with PgOrdersUnitOfWork(pool, Keyring({"k": bytes(32)}, "k", bytes(32))) as uow:
        uow.eligibility.hold()
        await uow.eligibility.set_card_colour("w-1", CardColour.RED)
        await uow.commit()
    async with EligibilityUnitOfWork(pool) as uow:
        assert await uow.eligibility.card_on_file("w-1") is None
        assert await uow.conn.fetchval("SELECT card_colour FROM worker_eligibility") == "red"


async def test_the_card_on_file_and_the_company_for_the_use_cases(pool: asyncpg.Pool) -> None:
    async with EligibilityUnitOfWork(pool) as uow:
        repo = uow.eligibility
        await repo.set_registration("w-1", "c-1", [CHAOYANG], [Trade.HOUSEKEEPER])
        assert (await repo.card_on_file("w-1"), await repo.company_of("w-1")) == (None, "c-1")
        assert (await repo.card_on_file("w-x"), await repo.company_of("w-x")) == (None, None)

        await repo.issue_card("w-1", "card-1")
        await repo.revoke_card("w-1", "card-1")
        await repo.issue_card("w-1", "card-2")  # a reissue
        before = await _revision(uow, "w-1")
        await repo.revoke_card("w-1", "card-1")  # a late revocation of the old card
        assert await _revision(uow, "w-1") == before
        assert await repo.card_on_file("w-1") == CardOnFile("card-2", CardColour.YELLOW, False)

        await repo.revoke_card("w-1", "card-2")
        assert await repo.card_on_file("w-1") == CardOnFile("card-2", CardColour.YELLOW, True)
        await repo.touch("w-x")  # no row: nothing to reload, nothing created
        assert await _revision(uow, "w-x") is None
        await uow.commit()


async def test_revisions_become_visible_in_their_order(pool: asyncpg.Pool, feed: PgEligibilityFeed) -> None:
    async def later_writer() -> None:
        async with EligibilityUnitOfWork(pool) as uow:
            await uow.eligibility.set_card_colour("w-b", CardColour.GREEN)
            await uow.commit()

    async with EligibilityUnitOfWork(pool) as first:
        await first.eligibility.set_card_colour("w-a", CardColour.GREEN)
        later = asyncio.create_task(later_writer())
        await asyncio.sleep(0.3)
        assert not later.done()  # it waits for the first writer's revision to commit
        assert await feed.changed_since(0, 10) == []
        await first.commit()
    await asyncio.wait_for(later, timeout=10)

    assert [w.worker_id for _, w in await feed.changed_since(0, 10)] == ["w-a", "w-b"]


async def test_the_feed_reads_the_workers_bookings_from_the_orders(
    pool: asyncpg.Pool, feed: PgEligibilityFeed
) -> None:
    await _eligible(pool, "w-1")
    await _eligible(pool, "w-2")
    await _order(pool, "w-1", "assigned", TUESDAY_9, 3)
    monday_9 = TUESDAY_9 - timedelta(days=1)
    await _order(pool, "w-1", "checked_in", monday_9, 2)
    await _order(pool, "w-1", "completed", TUESDAY_9 + timedelta(days=1), 2)
    await _order(pool, "w-1", "cancelled", TUESDAY_9 + timedelta(days=2), 2)
    await _order(pool, "w-1", "created", TUESDAY_9 + timedelta(days=3), 2, assigned=False)
    await _order(pool, "w-2", "assigned", TUESDAY_9 + timedelta(days=1), 4)

    loaded = {w.worker_id: w for _, w in await feed.changed_since(0, 10)}

    assert loaded["w-1"].bookings == (
        Interval(monday_9, monday_9 + timedelta(hours=2)),
        Interval(TUESDAY_9, TUESDAY_9 + timedelta(hours=3)),
    )
    assert loaded["w-1"].load == 2
    assert (loaded["w-2"].load, loaded["w-2"].bookings[0].end) == (1, TUESDAY_9 + timedelta(days=1, hours=4))
    [(_, first)] = await feed.changed_since(0, 1)
    assert first.worker_id == "w-1"


async def test_the_index_catches_up_over_the_real_feed_and_matches(
    pool: asyncpg.Pool, feed: PgEligibilityFeed
) -> None:
    for worker_id in ("w-free", "w-booked", "w-yellow"):
        await _eligible(pool, worker_id, CardColour.YELLOW if worker_id == "w-yellow" else CardColour.GREEN)
    await _order(pool, "w-booked", "assigned", TUESDAY_9 + timedelta(hours=1), 2)
    index = EligibilityIndex(feed, batch_size=2)
    request = MatchRequest(ServiceType.CLEANING, CHAOYANG, TUESDAY_9, TUESDAY_9 + timedelta(hours=3))

    assert await index.catch_up() == 3
    result = index.match(request, DEFAULT_CATALOGUE)
    assert [c.worker_id for c in result.candidates] == ["w-free"]
    assert (result.excluded[Rule.CARD_COLOUR], result.excluded[Rule.FREE_SLOT]) == (1, 1)

    async with EligibilityUnitOfWork(pool) as uow:
        await uow.eligibility.set_card_colour("w-free", CardColour.RED)
        await uow.eligibility.set_card_colour("w-yellow", CardColour.GREEN)
        await uow.commit()
    assert await index.catch_up() == 2
    assert [c.worker_id for c in index.match(request, DEFAULT_CATALOGUE).candidates] == ["w-yellow"]
