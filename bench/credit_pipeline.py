"""Benchmark: the credit consumer applying OrderCreated events exactly once (inbox row + ledger row).

``events`` OrderCreated CloudEvents (``libs.common.events.new_event``, each with a worker id and a
traceparent) are produced to a freshly recreated ``jiazheng.orders.events.v1``; then, each on a
fresh database, with nothing else consuming:

- ``baseline``: a bare aiokafka consumer (own group) + asyncpg, one transaction per poll: the
  inbox rows inserted with one ``INSERT .. SELECT unnest(..) ON CONFLICT DO NOTHING RETURNING``,
  the ledger rows of the events that were new with one ``executemany``, then the offsets committed.
  Same tables, same columns, same exactly-once guarantee. Run before and again after the
  service (own group and database each time); the ratio is against the mean of the two.
- ``service``: the real ``python -m services.credit`` process (its aiokafka ingest loop,
  ``libs.common.ingest``, feeding ``IdempotentConsumer``; group ``jiazheng-credit``). Completion
  is read from the database: the rate is the ledger rows before the last transaction over the
  span between the first and the last transaction's ``recorded_at`` (start-up and the group
  join are excluded).
- ``in_process`` (diagnostic): the service's own ingest loop (``run_ingest``) and consumer
  (``IdempotentConsumer`` + ``EFFECTS``) run in this process, without the service's telemetry,
  logging and gRPC server.

Every run checks the effect: ledger rows = inbox rows = distinct event ids = events produced.
Target: >= 10,000 events/s in one credit process and >= 0.4 x the baseline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from google.protobuf.timestamp_pb2 import Timestamp

from bench.common import (
    BenchEnv,
    CpuWindow,
    Target,
    cpu_ms_per_unit,
    figure,
    mean,
    reset_topic,
    running_service,
    topic_record_count,
)
from deploy.local.stack import scratch_database
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.type.v1 import service_type_pb2
from libs.common.db import create_pool, database_answers, migrate
from libs.common.events import event_type_of, new_event
from libs.common.inbox import ConsumedRecord, IdempotentConsumer, KafkaDeadLetters
from libs.common.ingest import kafka_consumer, run_ingest
from libs.common.kafka import events_topic
from libs.common.settings import ServiceSettings
from services.credit.app import CONSUMER, MIGRATIONS
from services.credit.domain import RULE_VERSION
from services.credit.handlers import EFFECTS, CreditUnitOfWork
from services.credit.store import PgCreditUnitOfWork

TOPIC = events_topic("orders")  # the benchmark feeds credit orders' events only
ORDER_CREATED = event_type_of(order_events.OrderCreated())
TARGET_RATE = 10_000.0
TARGET_RATIO = 0.4

_INBOX_BATCH = """
INSERT INTO inbox (consumer, event_id, event_type)
SELECT $1, e.id, e.type FROM unnest($2::text[], $3::text[]) AS e(id, type)
ON CONFLICT DO NOTHING
RETURNING event_id
"""
_LEDGER_INSERT = (
    "INSERT INTO ledger_entries (entry_id, worker_id, event_id, event_type, score_delta, reason,"
    " rule_version, trace_id, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)


async def produce(bootstrap: str, count: int, workers: int = 500) -> dict[str, object]:
    """``count`` OrderCreated events on ``TOPIC``, keyed by order as the relay keys them."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=10
    )
    await producer.start()
    t0 = time.perf_counter()
    try:
        start = Timestamp()
        start.FromSeconds(int(time.time()) + 24 * 3600)
        pending = []
        for i in range(count):
            order_id = str(uuid.uuid4())
            created = Timestamp()
            created.GetCurrentTime()
            message = order_events.OrderCreated(
                order_id=order_id,
                platform_id="demo-platform",
                service_type=service_type_pb2.SERVICE_TYPE_CLEANING,
                district_code="110108",
                worker_id=f"bench-w-{i % workers:04d}",
                scheduled_start_time=start,
                duration_hours=3,
                create_time=created,
            )
            event = new_event(message, source="/jiazheng/orders", subject=f"orders/{order_id}")
            event = dataclasses.replace(
                event, traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
            )
            pending.append(
                await producer.send(TOPIC, value=event.data, key=event.key, headers=event.kafka_headers())
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - t0
    return {"events": count, "elapsed_s": round(elapsed, 2), "events_per_s": round(count / elapsed, 1)}


@dataclasses.dataclass(frozen=True)
class _Decoded:
    event_id: str
    event_type: str
    created: order_events.OrderCreated | None
    trace_id: str


def _decode(headers: list[tuple[str, bytes]], value: bytes) -> _Decoded:
    h = {k: v.decode() for k, v in headers if v is not None}
    event_type = h["ce_type"]
    created = order_events.OrderCreated.FromString(value) if event_type == ORDER_CREATED else None
    parts = h.get("traceparent", "").split("-")
    return _Decoded(h["ce_id"], event_type, created, parts[1] if len(parts) == 4 else "")


async def _apply_batch(pool: asyncpg.Pool, records: list[Any]) -> int:
    """One transaction for a whole poll: the inbox rows, then the ledger rows of the new events."""
    decoded = [_decode(r.headers, r.value) for r in records]
    async with pool.acquire() as conn, conn.transaction():
        new = {
            row["event_id"]
            for row in await conn.fetch(
                _INBOX_BATCH, CONSUMER, [d.event_id for d in decoded], [d.event_type for d in decoded]
            )
        }
        ledger = [
            (
                uuid.uuid4(),
                d.created.worker_id,
                d.event_id,
                d.event_type,
                0,
                f"booked for order {d.created.order_id}",
                RULE_VERSION,
                d.trace_id,
                d.created.create_time.ToDatetime(tzinfo=UTC),
            )
            for d in decoded
            if d.event_id in new and d.created is not None and d.created.worker_id
        ]
        await conn.executemany(_LEDGER_INSERT, ledger)
    return len(decoded)


@dataclasses.dataclass
class Applied:
    """How one consumer applied the produced events, and what the database holds afterwards."""

    what: str
    records: int
    elapsed_s: float
    events_per_s: float
    cpu: dict[str, float]
    effect: dict[str, int] = dataclasses.field(default_factory=dict)
    extra: dict[str, object] = dataclasses.field(default_factory=dict)
    cpu_events: int | None = None  # the events applied inside the CPU window, when not all were

    def exactly_once(self, events: int) -> bool:
        return self.effect == {"ledger_rows": events, "ledger_distinct_events": events, "inbox_rows": events}

    @property
    def cpu_ms_per_event(self) -> float | None:
        return cpu_ms_per_unit(self.cpu, self.records if self.cpu_events is None else self.cpu_events)

    def summary(self) -> dict[str, object]:
        return {
            "what": self.what,
            "records": self.records,
            "elapsed_s": round(self.elapsed_s, 3),
            "events_per_s": round(self.events_per_s, 1),
            "cpu_ms_per_event": self.cpu_ms_per_event,
            **self.extra,
            "cpu": self.cpu,
            "effect": self.effect,
        }


# (bootstrap, pool, events, timeout_s) -> how the events were applied through that pool
Consume = Callable[[str, asyncpg.Pool, int, float], Awaitable[Applied]]


async def _baseline(bootstrap: str, pool: asyncpg.Pool, count: int, timeout_s: float) -> Applied:
    """Consume ``count`` records with a group of our own and apply each poll with the bare SQL."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"jzbench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    done = 0
    first: float | None = None
    cpu = CpuWindow()
    deadline = time.perf_counter() + timeout_s
    try:
        while done < count and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            records = [m for messages in batches.values() for m in messages]
            if not records:
                continue
            if first is None:
                first = time.perf_counter()
                cpu.start()
            done += await _apply_batch(pool, records)
            await consumer.commit()
        end = time.perf_counter()
        if first is not None:
            cpu.stop()
    finally:
        await consumer.stop()
    elapsed = end - first if first is not None else 0.0
    return Applied("baseline", done, elapsed, done / elapsed if elapsed > 0 else 0.0, cpu.result)


class _Watched(IdempotentConsumer[CreditUnitOfWork]):
    """The service's consumer, as the credit service builds it, timing the polls until
    ``expected`` records are settled."""

    def __init__(self, pool: asyncpg.Pool, dlq: AIOKafkaProducer, expected: int) -> None:
        super().__init__(
            CONSUMER,
            lambda: PgCreditUnitOfWork(pool),
            EFFECTS,
            KafkaDeadLetters(dlq, CONSUMER, timeout_s=10),
            lambda: database_answers(pool),
        )
        self.expected = expected
        self.outcomes: Counter[str] = Counter()
        self.cpu = CpuWindow()
        self.first = self.last = 0.0
        self.settled = asyncio.Event()

    async def handle_batch(self, records: Sequence[ConsumedRecord]) -> list[str]:
        if not self.first:
            self.first = time.perf_counter()
            self.cpu.start()
        outcomes = await super().handle_batch(records)
        self.outcomes.update(outcomes)
        if self.outcomes.total() >= self.expected and not self.settled.is_set():
            self.last = time.perf_counter()
            self.cpu.stop()
            self.settled.set()
        return outcomes

    def applied(self) -> Applied:
        elapsed = self.last - self.first if self.settled.is_set() else 0.0
        done = self.outcomes.total()
        rate = done / elapsed if elapsed > 0 else 0.0
        extra: dict[str, object] = {"outcomes": dict(self.outcomes)}
        return Applied(
            "service's ingest loop in this process", done, elapsed, rate, self.cpu.result, extra=extra
        )


async def _in_process(bootstrap: str, pool: asyncpg.Pool, count: int, timeout_s: float) -> Applied:
    """The service's ``run_ingest`` and consumer in this process, with a group of our own."""
    dlq = AIOKafkaProducer(bootstrap_servers=bootstrap)  # never started: nothing here dead-letters
    consumer = _Watched(pool, dlq, count)
    settings = ServiceSettings(
        kafka_bootstrap=bootstrap, consumer_group_prefix=f"jzbench-{uuid.uuid4().hex[:8]}"
    )
    ingest = asyncio.create_task(run_ingest(kafka_consumer(settings, CONSUMER, [TOPIC]), consumer, settings))
    settled = asyncio.create_task(consumer.settled.wait())
    try:
        await asyncio.wait([ingest, settled], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if ingest.done():
            ingest.result()  # the loop ended: raise what ended it
    finally:
        for task in (ingest, settled):
            task.cancel()
        await asyncio.gather(ingest, settled, return_exceptions=True)
        await dlq.stop()
    return consumer.applied()


async def _effect(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM ledger_entries) AS ledger_rows,"
            " (SELECT count(DISTINCT event_id) FROM ledger_entries) AS ledger_distinct_events,"
            " (SELECT count(*) FROM inbox) AS inbox_rows"
        )
    finally:
        await conn.close()
    return {k: int(v) for k, v in dict(row).items()}


async def _on_fresh_database(
    env: BenchEnv, prefix: str, consume: Consume, count: int, timeout_s: float
) -> Applied:
    async with scratch_database(env.endpoints, prefix) as db:
        dsn = env.endpoints.dsn(db)
        await migrate(dsn, MIGRATIONS)
        pool = await create_pool(dsn, 2, ServiceSettings().db_pool_max)
        try:
            result = await consume(env.endpoints.kafka_bootstrap, pool, count, timeout_s)
        finally:
            await pool.close()
        result.effect = await _effect(dsn)
    return result


# The rows of every transaction but the last over the span between the first and the last
# transaction's start (recorded_at is now(), the start of the transaction that wrote the row).
_SERVICE_RATE = """
SELECT extract(epoch FROM max(recorded_at) - min(recorded_at)) AS span_s,
       count(*) FILTER (WHERE recorded_at < (SELECT max(recorded_at) FROM ledger_entries)) AS timed
FROM ledger_entries
"""


async def _watch_ledger(
    conn: asyncpg.Connection, cpu: CpuWindow, count: int, timeout_s: float
) -> tuple[int, int, float | None]:
    """Poll the ledger until it has ``count`` rows, the CPU window open from the first row seen:
    (rows, rows when the first were seen, seconds until then)."""
    started = time.perf_counter()
    applied = first_rows = 0
    first_seen: float | None = None
    while applied < count and time.perf_counter() - started < timeout_s:
        await asyncio.sleep(0.05)
        applied = int(await conn.fetchval("SELECT count(*) FROM ledger_entries"))
        if applied and first_seen is None:
            first_seen, first_rows = time.perf_counter() - started, applied
            cpu.start()
    if first_seen is not None:
        cpu.stop()
    return applied, first_rows, first_seen


async def _service(env: BenchEnv, count: int, timeout_s: float) -> Applied:
    """The credit process on a fresh database; its rate from the ledger rows' ``recorded_at``."""
    async with scratch_database(env.endpoints, "jzbench_credit_svc") as db:
        dsn = env.endpoints.dsn(db)
        conn = await asyncpg.connect(dsn)
        try:
            async with running_service(env, "credit", db) as svc:
                cpu = CpuWindow(svc.pid)
                applied, first_rows, first_seen = await _watch_ledger(conn, cpu, count, timeout_s)
            rate = await conn.fetchrow(_SERVICE_RATE)
        finally:
            await conn.close()
        effect = await _effect(dsn)
    span_s, timed = float(rate["span_s"] or 0.0), int(rate["timed"])
    extra: dict[str, object] = {
        "all_applied": applied >= count,
        "serving_to_first_entry_s": round(first_seen, 2) if first_seen is not None else None,
    }
    per_s = timed / span_s if span_s > 0 else 0.0
    return Applied("service", applied, span_s, per_s, cpu.result, effect, extra, applied - first_rows)


def _figures(
    events: int, service: Applied, baselines: list[Applied], checked: list[Applied]
) -> list[dict[str, object]]:
    return [
        figure(
            "credit events/s, one process",
            "events/s",
            round(service.events_per_s, 1),
            mean(*(b.events_per_s for b in baselines)),
            Target(at_least=TARGET_RATE, ratio_at_least=TARGET_RATIO),
        ),
        figure(
            "credit CPU per event",
            "CPU ms",
            service.cpu_ms_per_event,
            mean(*(b.cpu_ms_per_event for b in baselines)),
        ),
        figure(
            "credit: each event applied once",
            "yes/no",
            all(r.exactly_once(events) for r in checked),
            target=Target(holds="ledger = inbox = distinct ids = events"),
        ),
    ]


async def run(
    env: BenchEnv, events: int = 40_000, in_process: bool = True, timeout_s: float = 240.0
) -> dict[str, object]:
    """All credit measurements; ``in_process`` False skips the diagnostic run."""
    bootstrap = env.endpoints.kafka_bootstrap
    await reset_topic(bootstrap, TOPIC)
    produced = await produce(bootstrap, events)
    in_topic = await topic_record_count(bootstrap, TOPIC)
    baseline = await _on_fresh_database(env, "jzbench_credit_base", _baseline, events, timeout_s)
    service = await _service(env, events, timeout_s)
    # Again after the service (the machine drifts); the ratio is against the mean of both.
    baseline_after = await _on_fresh_database(env, "jzbench_credit_base", _baseline, events, timeout_s)
    baseline_after.what = "baseline again"
    runs = [baseline, service, baseline_after]
    if in_process:
        runs.append(await _on_fresh_database(env, "jzbench_credit_inproc", _in_process, events, timeout_s))
    return {
        "events": events,
        "produced": produced,
        "records_in_topic": in_topic,
        "figures": _figures(events, service, [baseline, baseline_after], runs),
        "runs": [r.summary() for r in runs],
    }
