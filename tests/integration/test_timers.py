"""libs/common's durable timers against the real PostgreSQL: fired once in effect, by several
workers, after a stop, early on NOTIFY; failures retried, then parked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from deploy.local.stack import Endpoints
from libs.common.db import PgUnitOfWork, database_answers
from libs.common.settings import ServiceSettings
from libs.common.timers import NOTIFY_CHANNEL, DueTimer, TimerHandler, TimerWorker
from tests.integration.harness import eventually

KIND = "workers.health_check_expiry"


@pytest.fixture
def dsn(endpoints: Endpoints, scratch_database: str) -> str:
    return endpoints.dsn(scratch_database)


@pytest.fixture
async def pool(pool: asyncpg.Pool) -> asyncpg.Pool:
    """The conftest's pool (the common tables), with the table the handlers here write to."""
    await pool.execute("CREATE TABLE effects (timer_key text NOT NULL, payload jsonb NOT NULL)")
    return pool


class Expire:
    """Writes an effect row per timer it fires, then raises for the keys in ``poison``."""

    def __init__(self, poison: frozenset[str] = frozenset()) -> None:
        self.poison = poison
        self.calls = 0

    async def __call__(self, uow: PgUnitOfWork, timer: DueTimer) -> None:
        self.calls += 1
        await uow.conn.execute("INSERT INTO effects VALUES ($1, $2::jsonb)", timer.key, '{"tier": 1}')
        if timer.key in self.poison:
            raise ValueError(f"cannot expire {timer.key}")


def timer_worker(
    pool: asyncpg.Pool, dsn: str, handler: TimerHandler[PgUnitOfWork], **settings: Any
) -> TimerWorker[PgUnitOfWork]:
    config = ServiceSettings(service_name="timers-test", database_url=dsn, **settings)
    clock = config.clock()
    return TimerWorker(
        lambda: PgUnitOfWork(pool, clock), {KIND: handler}, config, lambda: database_answers(pool)
    )


@asynccontextmanager
async def running(*workers: TimerWorker[PgUnitOfWork]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        assert task.cancelled(), task.exception()  # no worker ended on an error of its own


async def schedule(pool: asyncpg.Pool, key: str, in_s: float, payload: dict[str, Any] | None = None) -> None:
    async with PgUnitOfWork(pool) as uow:
        await uow.timers.schedule(KIND, key, datetime.now(UTC) + timedelta(seconds=in_s), payload or {})
        await uow.commit()


async def timer_row(pool: asyncpg.Pool, key: str) -> asyncpg.Record:
    row: asyncpg.Record = await pool.fetchrow("SELECT * FROM timers WHERE key = $1", key)
    return row


async def effects_of(pool: asyncpg.Pool, key: str) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM effects WHERE timer_key = $1", key)
    return count


async def test_a_due_timer_fires_once_with_its_effect_and_a_failing_one_leaves_neither(
    pool: asyncpg.Pool, dsn: str
) -> None:
    await schedule(pool, "workers/good", in_s=1)
    await schedule(pool, "workers/bad", in_s=1)
    expire = Expire(poison=frozenset({"workers/bad"}))
    worker = timer_worker(pool, dsn, expire, timer_poll_interval_s=0.2, timer_retry_backoff_s=60)

    async with running(worker):
        assert (await timer_row(pool, "workers/good"))["fired_at"] is None
        await eventually(
            lambda: pool.fetchval("SELECT fired_at FROM timers WHERE key = 'workers/good'"), within=20
        )
        await eventually(
            lambda: pool.fetchval("SELECT attempts FROM timers WHERE key = 'workers/bad'"), within=20
        )
        await asyncio.sleep(0.5)  # a second firing would have happened by now

    assert await effects_of(pool, "workers/good") == 1
    bad = await timer_row(pool, "workers/bad")
    assert (bad["fired_at"], bad["attempts"], await effects_of(pool, "workers/bad")) == (None, 1, 0)
    assert bad["last_error"] == "ValueError: cannot expire workers/bad"


async def test_two_workers_fire_each_of_200_due_timers_exactly_once(pool: asyncpg.Pool, dsn: str) -> None:
    async with PgUnitOfWork(pool) as uow:
        for i in range(200):
            await uow.timers.schedule(KIND, f"workers/w{i}", datetime.now(UTC) - timedelta(seconds=1), {})
        await uow.commit()
    expires = [Expire(), Expire()]
    workers = [timer_worker(pool, dsn, e, timer_batch_size=7, timer_poll_interval_s=0.2) for e in expires]

    async def all_fired() -> bool:
        return bool(await pool.fetchval("SELECT count(*) = 0 FROM timers WHERE fired_at IS NULL"))

    async with running(*workers):
        await eventually(all_fired, within=60)

    assert await pool.fetchval("SELECT count(*) FROM effects") == 200
    assert await pool.fetchval("SELECT count(DISTINCT timer_key) FROM effects") == 200
    assert sum(e.calls for e in expires) == 200


async def test_a_timer_that_fell_due_while_no_worker_ran_fires_when_one_starts(
    pool: asyncpg.Pool, dsn: str
) -> None:
    await schedule(pool, "workers/w1", in_s=-3600)
    await asyncio.sleep(0.2)  # nobody fires it meanwhile
    assert (await timer_row(pool, "workers/w1"))["fired_at"] is None

    async with running(timer_worker(pool, dsn, Expire(), timer_poll_interval_s=30)):
        await eventually(lambda: effects_of(pool, "workers/w1"), within=20)

    assert (await timer_row(pool, "workers/w1"))["fired_at"] is not None


async def test_rescheduling_replaces_the_pending_timer_and_cancel_cancels(
    pool: asyncpg.Pool, dsn: str
) -> None:
    await schedule(pool, "workers/w1", in_s=3600, payload={"tier": "一般"})
    await schedule(pool, "workers/w1", in_s=0, payload={"tier": "居家"})
    await schedule(pool, "workers/w2", in_s=0)
    async with PgUnitOfWork(pool) as uow:
        assert await uow.timers.cancel(KIND, "workers/w2")
        assert not await uow.timers.cancel(KIND, "workers/w3")
        await uow.commit()
    fired: list[dict[str, Any]] = []

    async def record(uow: PgUnitOfWork, timer: DueTimer) -> None:
        fired.append({"key": timer.key, **timer.payload})

    async with running(timer_worker(pool, dsn, record, timer_poll_interval_s=0.2)):
        await eventually(
            lambda: pool.fetchval("SELECT fired_at FROM timers WHERE key = 'workers/w1'"), within=20
        )

    assert fired == [{"key": "workers/w1", "tier": "居家"}]
    assert await pool.fetchval("SELECT count(*) FROM timers") == 1


async def test_scheduling_a_timer_as_it_stands_writes_nothing_and_wakes_nobody(
    pool: asyncpg.Pool, dsn: str
) -> None:
    due = datetime.now(UTC) + timedelta(hours=1)
    heard: list[str] = []
    listener = await asyncpg.connect(dsn)
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: heard.append(args[1]))

    async def schedule_at(when: datetime, payload: dict[str, Any]) -> tuple[int, int]:
        """Schedule w1; the row's version (xmin) afterwards, and the notifications heard by then."""
        async with PgUnitOfWork(pool) as uow:
            await uow.timers.schedule(KIND, "workers/w1", when, payload)
            await uow.commit()
        await listener.execute("SELECT 1")  # notifications sent before this arrive before its answer
        version: int = await pool.fetchval("SELECT xmin::text::bigint FROM timers WHERE key = 'workers/w1'")
        return version, len(heard)

    try:
        first, woken = await schedule_at(due, {"tier": "一般"})
        assert woken == 1
        assert await schedule_at(due, {"tier": "一般"}) == (first, 1)  # as it stands: untouched
        moved, woken = await schedule_at(due + timedelta(minutes=1), {"tier": "一般"})
        assert (moved != first, woken) == (True, 2)
        changed, woken = await schedule_at(due + timedelta(minutes=1), {"tier": "居家"})
        assert (changed != moved, woken) == (True, 3)
        await pool.execute("UPDATE timers SET attempts = 3, last_error = 'boom', parked_at = now()")
        await schedule_at(due + timedelta(minutes=1), {"tier": "居家"})  # a parked one is revived
    finally:
        await listener.close()
    row = await timer_row(pool, "workers/w1")
    revived = (row["attempts"], row["last_error"], row["parked_at"], row["payload"])
    assert revived == (0, None, None, '{"tier": "居家"}')
    assert await pool.fetchval("SELECT count(*) FROM timers") == 1


async def test_a_worker_is_woken_by_a_new_timer_long_before_its_poll_interval(
    pool: asyncpg.Pool, dsn: str
) -> None:
    await schedule(pool, "workers/w1", in_s=0)
    async with running(timer_worker(pool, dsn, Expire(), timer_poll_interval_s=120)):
        await eventually(lambda: effects_of(pool, "workers/w1"), within=20)
        await asyncio.sleep(0.5)  # the worker now waits: nothing is pending
        await schedule(pool, "workers/w2", in_s=0.5)
        await eventually(lambda: effects_of(pool, "workers/w2"), within=30)  # far less than 120 s


async def test_a_failing_handler_is_retried_with_attempts_recorded_then_parked(
    pool: asyncpg.Pool, dsn: str
) -> None:
    await schedule(pool, "workers/bad", in_s=0)
    expire = Expire(poison=frozenset({"workers/bad"}))
    worker = timer_worker(
        pool,
        dsn,
        expire,
        timer_max_attempts=3,
        timer_retry_backoff_s=0.05,
        timer_max_backoff_s=0.1,
        timer_poll_interval_s=0.2,
    )

    async with running(worker):
        await eventually(
            lambda: pool.fetchval("SELECT parked_at FROM timers WHERE key = 'workers/bad'"), within=30
        )
        await asyncio.sleep(0.5)  # a parked timer is no longer tried

    bad = await timer_row(pool, "workers/bad")
    assert (bad["attempts"], bad["fired_at"], expire.calls) == (3, None, 3)
    assert bad["last_error"] == "ValueError: cannot expire workers/bad"
    assert await effects_of(pool, "workers/bad") == 0


async def test_a_failing_handler_on_a_clock_behind_the_databases_is_retried_by_its_own_clock(
    pool: asyncpg.Pool, dsn: str
) -> None:
    """A retry falls due ``backoff`` after the worker's own now: judged by the database's clock
    instead, a worker an hour behind would not try again for an hour."""
    await schedule(pool, "workers/late", in_s=-7200)
    expire = Expire(poison=frozenset({"workers/late"}))
    worker = timer_worker(
        pool,
        dsn,
        expire,
        clock_offset_s=-3600,
        timer_max_attempts=3,
        timer_retry_backoff_s=0.05,
        timer_max_backoff_s=0.1,
        timer_poll_interval_s=0.2,
    )

    async with running(worker):
        await eventually(
            lambda: pool.fetchval("SELECT parked_at FROM timers WHERE key = 'workers/late'"), within=30
        )

    late = await timer_row(pool, "workers/late")
    assert (late["attempts"], expire.calls) == (3, 3)
    assert late["parked_at"] < datetime.now(UTC) - timedelta(minutes=59)  # the worker's clock


async def test_a_handler_rescheduling_its_own_timer_leaves_the_next_deadline_pending(
    pool: asyncpg.Pool, dsn: str
) -> None:
    await schedule(pool, "cases/c1", in_s=0, payload={"tier": "first"})

    async def next_deadline(uow: PgUnitOfWork, timer: DueTimer) -> None:
        later = uow.clock.now() + timedelta(hours=1)
        await uow.timers.schedule(KIND, timer.key, later, {"tier": "second"})

    async with running(timer_worker(pool, dsn, next_deadline, timer_poll_interval_s=0.2)):
        await eventually(
            lambda: pool.fetchval("SELECT payload->>'tier' = 'second' FROM timers WHERE key = 'cases/c1'"),
            within=20,
        )

    row = await pool.fetchrow("SELECT fired_at, due_at > now() + interval '50 minutes' AS later FROM timers")
    assert row["fired_at"] is None
    assert row["later"]


async def test_a_handler_rescheduling_its_own_timer_at_its_due_time_with_another_payload_fires_it_again(
    pool: asyncpg.Pool, dsn: str
) -> None:
    await schedule(pool, "cases/c2", in_s=0, payload={"tier": "first"})
    fired: list[str] = []

    async def escalate_at_once(uow: PgUnitOfWork, timer: DueTimer) -> None:
        fired.append(timer.payload["tier"])
        if timer.payload["tier"] == "first":
            await uow.timers.schedule(KIND, timer.key, timer.due_at, {"tier": "second"})

    async def fired_at() -> datetime | None:
        fired_at: datetime | None = (await timer_row(pool, "cases/c2"))["fired_at"]
        return fired_at

    async with running(timer_worker(pool, dsn, escalate_at_once, timer_poll_interval_s=0.2)):
        await eventually(fired_at, within=20)

    assert fired == ["first", "second"]
    assert (await timer_row(pool, "cases/c2"))["payload"] == '{"tier": "second"}'


async def _if_absent(pool: asyncpg.Pool, key: str, due_at: datetime, payload: dict[str, Any]) -> bool:
    async with PgUnitOfWork(pool) as uow:
        stored = await uow.timers.schedule_if_absent(KIND, key, due_at, payload)
        await uow.commit()
    return stored


async def test_scheduling_if_absent_keeps_the_pending_timers_due_time_and_sets_one_after_it_fired(
    pool: asyncpg.Pool, dsn: str
) -> None:
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    assert await _if_absent(pool, "companies/c1", first, {"tier": "first"})
    assert not await _if_absent(pool, "companies/c1", first + timedelta(seconds=30), {"tier": "later"})
    pending = await pool.fetchrow("SELECT due_at, payload->>'tier' AS t FROM timers WHERE fired_at IS NULL")
    assert (pending["due_at"], pending["t"]) == (first, "first")

    async with running(timer_worker(pool, dsn, Expire(), timer_poll_interval_s=0.2)):
        await eventually(lambda: effects_of(pool, "companies/c1"), within=20)
        await eventually(lambda: pool.fetchval("SELECT count(*) = 0 FROM timers WHERE fired_at IS NULL"))

    assert await _if_absent(pool, "companies/c1", first + timedelta(hours=1), {"tier": "next"})
    assert await pool.fetchval("SELECT payload->>'tier' FROM timers WHERE fired_at IS NULL") == "next"


async def test_scheduling_if_absent_waits_for_no_firing_and_leaves_a_parked_timer_parked(
    pool: asyncpg.Pool,
) -> None:
    await schedule(pool, "companies/firing", in_s=-1)
    await schedule(pool, "companies/parked", in_s=-1)
    await pool.execute("UPDATE timers SET parked_at = now() WHERE key = 'companies/parked'")
    later = datetime.now(UTC) + timedelta(hours=1)

    async with PgUnitOfWork(pool) as firing:
        [claimed] = await firing.timers.claim_due(10)  # held, as a worker holds what it fires
        stored = await asyncio.wait_for(_if_absent(pool, "companies/firing", later, {}), timeout=5)
    parked = await _if_absent(pool, "companies/parked", later, {})

    assert (claimed.key, stored, parked) == ("companies/firing", False, False)
    rows = await pool.fetch("SELECT key, due_at < now() AS due, parked_at IS NOT NULL AS parked FROM timers")
    assert {(r["key"], r["due"], r["parked"]) for r in rows} == {
        ("companies/firing", True, False),
        ("companies/parked", True, True),
    }


async def test_the_batch_calls_leave_the_rows_the_calls_one_by_one_leave(
    pool: asyncpg.Pool, dsn: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await schedule(pool, "workers/w1", in_s=3600, payload={"tier": "old"})
    await _if_absent(pool, "companies/c1", now + timedelta(hours=2), {"tier": "kept"})
    async with PgUnitOfWork(pool) as uow:
        await uow.timers.schedule_many(
            KIND, [("workers/w1", now, {"tier": "new"}), ("workers/w2", now + timedelta(hours=1), {})]
        )
        await uow.timers.schedule_many_if_absent(
            KIND, [("companies/c1", now, {"tier": "later"}), ("companies/c2", now, {"tier": "first"})]
        )
        await uow.commit()
    async with running(timer_worker(pool, dsn, Expire(), timer_poll_interval_s=0.2)):
        await eventually(lambda: effects_of(pool, "workers/w1"), within=20)
        await eventually(lambda: effects_of(pool, "companies/c2"), within=20)
    async with PgUnitOfWork(pool) as uow:  # a fired timer stays; the pending ones named go
        await uow.timers.cancel_many(KIND, ["workers/w1", "workers/w2", "workers/w3"])
        await uow.commit()

    rows = await pool.fetch(
        "SELECT key, payload->>'tier' AS tier, fired_at IS NOT NULL AS fired FROM timers ORDER BY key"
    )
    assert [tuple(r) for r in rows] == [
        ("companies/c1", "kept", False),
        ("companies/c2", "first", True),
        ("workers/w1", "new", True),
    ]
