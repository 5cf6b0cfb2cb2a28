"""libs/common's outbox relay and idempotent consumer against the real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import asyncpg
import pytest
from google.protobuf.wrappers_pb2 import Int32Value, StringValue

from deploy.local.stack import Endpoints
from libs.common.db import PgUnitOfWork
from libs.common.events import EventEnvelope, new_event
from libs.common.inbox import Effect, KafkaRecord
from libs.common.ingest import idempotent_consumer
from libs.common.kafka import dlq_topic, ensure_topics, idempotent_producer
from libs.common.outbox import _CLAIM_BATCH, OutboxRelay, add_event, add_events
from libs.common.settings import ServiceSettings
from tests.integration.harness import eventually
from tests.integration.kafka_tools import read_topic


def settings_for(endpoints: Endpoints, database: str, **overrides: object) -> ServiceSettings:
    return ServiceSettings(
        service_name="infra-test",
        database_url=endpoints.dsn(database),
        kafka_bootstrap=endpoints.kafka_bootstrap,
        **overrides,  # type: ignore[arg-type]
    )


async def test_relays_publish_each_event_once_in_per_aggregate_order(
    endpoints: Endpoints, scratch_database: str, pool: asyncpg.Pool
) -> None:
    settings = settings_for(endpoints, scratch_database, relay_batch_size=5, relay_poll_interval_s=0.05)
    topic = f"jiazheng.test-outbox-{uuid.uuid4().hex[:8]}.events.v1"
    await ensure_topics(settings, [topic])
    aggregates = [f"things/{uuid.uuid4()}" for _ in range(4)]
    per_aggregate = 40

    async def add(i: int) -> None:
        events = [new_event(Int32Value(value=i), source="/test", subject=a) for a in aggregates]
        if i % 2:  # every aggregate's i-th event in one transaction, in one round trip
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, topic, events)
            return
        for event in events:
            async with pool.acquire() as conn, conn.transaction():
                await add_event(conn, topic, event)

    for i in range(per_aggregate // 2):  # a backlog, then events arriving while three relays run
        await add(i)
    relays = [
        asyncio.create_task(OutboxRelay(pool, idempotent_producer(settings), settings).run())
        for _ in range(3)
    ]
    try:
        for i in range(per_aggregate // 2, per_aggregate):
            await add(i)

        async def all_published() -> bool:
            backlog = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            return bool(backlog == 0)

        await eventually(all_published)
    finally:
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    records = await read_topic(endpoints.kafka_bootstrap, topic)
    for aggregate in aggregates:
        values = [Int32Value.FromString(r.value).value for r in records if r.key == aggregate.encode()]
        assert values == list(range(per_aggregate))


async def test_a_claim_under_a_backlog_the_statistics_never_saw_reads_only_the_rows_it_claims(
    pool: asyncpg.Pool,
) -> None:
    """Statistics taken while the outbox was drained say one row is unpublished; under a backlog of
    thousands the claim must still fetch its rows by key, not scan every unpublished row (or join
    the backlog with itself), or the relay stalls as the backlog grows."""
    await _insert(pool, "old", 2_000, aggregates=2_000, published=True)
    await pool.execute("ANALYZE outbox")
    await _insert(pool, "new", 5_000, aggregates=1_000, published=False)
    async with pool.acquire() as conn, conn.transaction():
        [plan] = json.loads(await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {_CLAIM_BATCH}", 100, []))
    reads = [node for node in _nodes(plan["Plan"]) if node.get("Alias") == "o"]
    rows_read = sum(node["Actual Rows"] + node.get("Rows Removed by Filter", 0) for node in reads)
    assert [node["Index Name"] for node in reads] == ["outbox_pkey"]
    assert rows_read == 100  # the head's rows, each read once: not the 5,000 unpublished


async def _insert(pool: asyncpg.Pool, prefix: str, count: int, aggregates: int, published: bool) -> None:
    await pool.execute(
        "INSERT INTO outbox (event_id, topic, aggregate_id, event_type, headers, payload, published_at)"
        " SELECT gen_random_uuid(), 't', $1 || (g % $3), 'x', '{}', '\\x00', CASE WHEN $4 THEN now() END"
        " FROM generate_series(1, $2) g",
        f"{prefix}/",
        count,
        aggregates,
        published,
    )


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


class FlakyEffect:
    """Records the events in a table, then fails its first ``failures`` calls (the database answers
    throughout: these are failures of the work, not outages)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, uow: PgUnitOfWork, events: Sequence[EventEnvelope]) -> None:
        self.calls += 1
        await uow.conn.executemany("INSERT INTO effects (event_id) VALUES ($1)", [(e.id,) for e in events])
        if self.calls <= self.failures:
            raise RuntimeError(f"effect failed, call {self.calls}")


async def consume_batch(
    endpoints: Endpoints,
    pool: asyncpg.Pool,
    name: str,
    effects: Mapping[str, Effect[PgUnitOfWork]],
    events: list[EventEnvelope],
) -> list[str]:
    await pool.execute("CREATE TABLE IF NOT EXISTS effects (event_id text NOT NULL)")
    settings = settings_for(endpoints, "postgres", consumer_max_attempts=3, consumer_retry_backoff_s=0.01)
    await ensure_topics(settings, [dlq_topic(name)])
    producer = idempotent_producer(settings)
    await producer.start()
    try:
        consumer = idempotent_consumer(name, pool, lambda: PgUnitOfWork(pool), effects, producer, settings)
        return await consumer.handle_batch(
            [KafkaRecord("some.topic", e.key, e.data, e.kafka_headers()) for e in events]
        )
    finally:
        await producer.stop()


async def consume(
    endpoints: Endpoints, pool: asyncpg.Pool, name: str, effect: FlakyEffect, event: EventEnvelope
) -> str:
    [outcome] = await consume_batch(endpoints, pool, name, {event.type: effect}, [event])
    return outcome


async def test_a_batch_applies_each_new_event_once_and_isolates_a_failing_one(
    endpoints: Endpoints, pool: asyncpg.Pool
) -> None:
    good = [new_event(Int32Value(value=i), source="/test", subject=f"things/{i}") for i in range(3)]
    bad = new_event(StringValue(value="poison"), source="/test", subject="things/bad")
    name = f"test-{uuid.uuid4().hex[:8]}"
    effects: dict[str, Effect[PgUnitOfWork]] = {
        good[0].type: FlakyEffect(failures=0),
        bad.type: FlakyEffect(failures=99),
    }

    outcomes = await consume_batch(endpoints, pool, name, effects, [good[0], good[1], good[0], bad, good[2]])

    assert outcomes == ["applied", "applied", "duplicate", "dead_lettered", "applied"]
    rows = await pool.fetch("SELECT event_id FROM effects")
    assert sorted(r["event_id"] for r in rows) == sorted(e.id for e in good)
    assert await consume_batch(endpoints, pool, name, effects, good) == ["duplicate"] * 3


async def test_transient_failures_are_retried_and_the_effect_applied_once(
    endpoints: Endpoints, pool: asyncpg.Pool
) -> None:
    event = new_event(Int32Value(value=1), source="/test", subject="things/1")
    effect = FlakyEffect(failures=2)
    name = f"test-{uuid.uuid4().hex[:8]}"

    assert await consume(endpoints, pool, name, effect, event) == "applied"
    assert await consume(endpoints, pool, name, effect, event) == "duplicate"
    assert effect.calls == 3
    assert await pool.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", event.id) == 1


async def test_effect_failing_every_attempt_is_dead_lettered_and_left_unapplied(
    endpoints: Endpoints, pool: asyncpg.Pool
) -> None:
    event = new_event(Int32Value(value=2), source="/test", subject="things/2")
    name = f"test-{uuid.uuid4().hex[:8]}"

    assert await consume(endpoints, pool, name, FlakyEffect(failures=99), event) == "dead_lettered"

    [record] = await read_topic(endpoints.kafka_bootstrap, dlq_topic(name))
    assert record.headers["ce_id"] == event.id.encode()
    assert record.headers["dlq_attempts"] == b"3"
    assert b"effect failed, call 3" in record.headers["dlq_error"]
    assert record.value == event.data
    assert await pool.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", event.id) == 0
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event.id) == 0


async def test_a_unit_of_work_that_only_reads_opens_no_transaction_and_cannot_commit(
    pool: asyncpg.Pool,
) -> None:
    async with PgUnitOfWork(pool) as writing:
        assert writing.conn.is_in_transaction()
    async with PgUnitOfWork(pool).reading() as reading:
        assert not reading.conn.is_in_transaction()
        assert await reading.conn.fetchval("SELECT 1") == 1
        with pytest.raises(RuntimeError, match="only reads"):
            await reading.commit()
