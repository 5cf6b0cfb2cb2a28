"""Benchmark: the orders process's outbox relay draining a backlog, per-aggregate order checked.

A fresh database gets a backlog of ``aggregates`` x ``per_aggregate`` OrderCreated events,
written with ``libs.common.outbox.add_event`` as real writers would: a few concurrent writers,
each owning some aggregates and writing every aggregate's events in sequence, the aggregates
interleaved at random. The k-th event of an aggregate carries ``create_time`` = base + k seconds,
so its place in the sequence is in the payload. Then the real ``python -m services.orders`` is
started on that database (relay on) with the orders topic recreated empty, and timed from the
first published row until the outbox is empty; its CPU over that window gives CPU per event.

Afterwards the topic is read back: Kafka records = events, distinct event ids = events, and
``order_kept``: every aggregate's records, in partition order, carry 0, 1, ..., k-1.

Target: >= 10,000 events/s, per-aggregate order kept.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.bare_orders_server import PLATFORM
from bench.common import (
    BenchEnv,
    ServiceProcess,
    Target,
    figure,
    process_cpu_s,
    reset_topic,
    spawn_service,
    stopped_after,
    watch_outbox,
)
from bench.orders_create import draft
from deploy.local.stack import scratch_database
from jiazheng.orders.events.v1 import events_pb2 as order_events
from libs.common.db import migrate
from libs.common.outbox import add_event
from services.orders import domain, events
from services.orders.app import MIGRATIONS
from tests.integration.kafka_tools import Record, read_topic

TARGET_RATE = 10_000.0
WRITERS = 4
EVENTS_PER_TRANSACTION = 100
# The k-th event of an aggregate is stamped BASE + k seconds (whole seconds: exact in a Timestamp).
BASE = datetime(2030, 1, 1, tzinfo=UTC)


def _write_order(aggregates: int, per_aggregate: int, seed: int = 5) -> list[int]:
    """Aggregate indexes in the order their events are written: each ``per_aggregate`` times, shuffled."""
    order = [a for a in range(aggregates) for _ in range(per_aggregate)]
    random.Random(seed).shuffle(order)
    return order


async def _writer(conn: asyncpg.Connection, orders: list[domain.Order], sequence: list[int]) -> None:
    """Write the events of ``sequence`` (indexes into ``orders``) in that order, a few per transaction."""
    written = [0] * len(orders)
    for start in range(0, len(sequence), EVENTS_PER_TRANSACTION):
        async with conn.transaction():
            for a in sequence[start : start + EVENTS_PER_TRANSACTION]:
                order = replace(orders[a], created_at=BASE + timedelta(seconds=written[a]))
                written[a] += 1
                await add_event(conn, events.TOPIC, events.order_created(order))


async def _write_backlog(dsn: str, aggregates: int, per_aggregate: int) -> float:
    """Migrate ``dsn`` and write the backlog; the seconds it took. Writer ``w`` owns the
    aggregates ``a`` with ``a % WRITERS == w``."""
    await migrate(dsn, MIGRATIONS)
    now = datetime.now(UTC)
    orders = [
        domain.create_order(draft(), PLATFORM, now, domain.DEFAULT_CATALOGUE) for _ in range(aggregates)
    ]
    sequence = _write_order(aggregates, per_aggregate)
    conns = [await asyncpg.connect(dsn) for _ in range(WRITERS)]
    t0 = time.perf_counter()
    try:
        await asyncio.gather(
            *(_writer(c, orders, [a for a in sequence if a % WRITERS == w]) for w, c in enumerate(conns))
        )
    finally:
        for c in conns:
            await c.close()
    return round(time.perf_counter() - t0, 2)


@dataclass(frozen=True)
class Drain:
    """How the relay emptied the backlog."""

    backlog: int
    published_before_timing: int  # by the first sample that saw any published row
    published_timed: int
    left_unpublished: int
    elapsed_s: float
    server_process_cpu_s: float

    @property
    def events_per_s(self) -> float:
        return round(self.published_timed / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0

    @property
    def cpu_ms_per_event(self) -> float | None:
        return (
            round(self.server_process_cpu_s * 1000 / self.published_timed, 3)
            if self.published_timed
            else None
        )


async def _drain(conn: asyncpg.Connection, svc: ServiceProcess, backlog: int, timeout_s: float) -> Drain:
    """Watch the outbox from the process's start: timed from the first published row to the last."""
    open0 = await watch_outbox(conn, lambda n: n < backlog, timeout_s, svc)
    t0, cpu0 = time.perf_counter(), process_cpu_s(svc.pid)
    open1 = await watch_outbox(conn, lambda n: n == 0, timeout_s, svc)
    elapsed, cpu_s = time.perf_counter() - t0, process_cpu_s(svc.pid) - cpu0
    return Drain(backlog, backlog - open0, open0 - open1, open1, round(elapsed, 3), round(cpu_s, 3))


def _sequence(record: Record) -> int:
    created = order_events.OrderCreated.FromString(record.value)
    return int(created.create_time.seconds - int(BASE.timestamp()))


def _check(records: Sequence[Record], aggregates: int, per_aggregate: int) -> dict[str, object]:
    """Whether Kafka holds each event once and every aggregate's events in the order written."""
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key[r.key].append(_sequence(r))
    written = list(range(per_aggregate))
    return {
        "kafka_records": len(records),
        "distinct_event_ids": len({r.headers.get("ce_id") for r in records}),
        "aggregates_seen": len(by_key),
        "order_kept": len(by_key) == aggregates and all(seqs == written for seqs in by_key.values()),
    }


def _figures(drain: Drain, check: dict[str, object], events_: int, what: str) -> list[dict[str, object]]:
    once = check["kafka_records"] == events_ == check["distinct_event_ids"]
    return [
        figure(what, "events/s", drain.events_per_s, target=Target(at_least=TARGET_RATE)),
        figure("relay CPU per event (orders process)", "CPU ms", drain.cpu_ms_per_event),
        figure(
            "relay: each event published once", "yes/no", once, target=Target(holds="Kafka records = events")
        ),
        figure(
            "relay: per-aggregate order kept",
            "yes/no",
            bool(check["order_kept"]),
            target=Target(holds="each aggregate's records in written order"),
        ),
    ]


async def run(
    env: BenchEnv, aggregates: int = 4000, per_aggregate: int = 10, timeout_s: float = 120.0
) -> dict[str, object]:
    events_ = aggregates * per_aggregate
    bootstrap = env.endpoints.kafka_bootstrap
    async with scratch_database(env.endpoints, "jzbench_relay") as db:
        dsn = env.endpoints.dsn(db)
        written_s = await _write_backlog(dsn, aggregates, per_aggregate)
        await reset_topic(bootstrap, events.TOPIC)
        conn = await asyncpg.connect(dsn)
        try:
            async with stopped_after(spawn_service(env, "orders", db)) as svc:
                drain = await _drain(conn, svc, events_, timeout_s)
        finally:
            await conn.close()
    check = _check(await read_topic(bootstrap, events.TOPIC), aggregates, per_aggregate)
    what = f"relay drain, {aggregates:,} aggregates x {per_aggregate} events"
    summary = {
        **asdict(drain),
        "events_per_s": drain.events_per_s,
        "cpu_ms_per_event": drain.cpu_ms_per_event,
    }
    return {
        "aggregates": aggregates,
        "events_per_aggregate": per_aggregate,
        "events": events_,
        "backlog_written_s": written_s,
        **check,
        "figures": _figures(drain, check, events_, what),
        "runs": [{"what": what, **summary}],
    }
