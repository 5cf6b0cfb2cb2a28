"""Benchmark 2: the credit consumer applying OrderCreated events exactly once (inbox row + ledger row).

``events`` OrderCreated CloudEvents (``libs.common.events.new_event``, each with a worker id and a
traceparent) are produced to a freshly recreated ``jiazheng.orders.events.v1``; then, each on a
fresh database, with nothing else consuming:

- ``baseline``: a bare aiokafka consumer (own group) + asyncpg, one transaction per poll: the
  inbox rows inserted with one ``INSERT .. SELECT unnest(..) ON CONFLICT DO NOTHING RETURNING``,
  the ledger rows of the events that were new with one ``executemany``, then the offsets committed.
  Same tables, same columns, same exactly-once guarantee. Run before and again after the
  service (own group and database each time); the ratio is against the mean of the two.
- ``service``: the real ``python -m services.credit`` process (faust agent feeding
  ``IdempotentConsumer``, group ``jiazheng-credit``). Completion is read from the database: the
  rate is ledger rows over the span between the first and the last ledger row's ``recorded_at``
  (so start-up and the group join are excluded).
- ``idempotent_consumer_in_process``: diagnostic; the service's own ``IdempotentConsumer`` and
  ``EFFECTS`` (``handle_batch``, one transaction per poll) fed by a bare aiokafka loop in this
  process, without faust and without the service's telemetry and logging set-up.
- ``diagnostics``: the service again on fewer events (the topic recreated and refilled), with
  OpenTelemetry, then also INFO logs, switched off through the environment.

Every run checks the effect: ledger rows = inbox rows = distinct event ids = events produced.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from google.protobuf.timestamp_pb2 import Timestamp

import services.credit
from bench.common import (
    BenchEnv,
    CpuWindow,
    ratio,
    reset_topic,
    running_service,
    topic_record_count,
)
from deploy.local.stack import scratch_database
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.type.v1 import service_type_pb2
from libs.common.db import create_pool, database_answers, migrate
from libs.common.events import event_type_of, new_event
from libs.common.inbox import IdempotentConsumer, KafkaDeadLetters, KafkaRecord
from libs.common.kafka import events_topic
from libs.common.settings import ServiceSettings
from services.credit.domain import RULE_VERSION
from services.credit.handlers import EFFECTS
from services.credit.store import PgCreditUnitOfWork

TOPIC = events_topic("orders")
CONSUMER = "credit"  # the inbox's consumer name in services/credit/app.py
CREDIT_MIGRATIONS = Path(services.credit.__file__).with_name("migrations")
ORDER_CREATED = event_type_of(order_events.OrderCreated())
TARGET_RATE = 10_000.0
TARGET_RATIO = 0.5
# The service again, with one cost switched off through its environment (no code change).
DIAGNOSTICS = {
    "telemetry_off": {"OTEL_SDK_DISABLED": "true"},
    "telemetry_and_info_logs_off": {"OTEL_SDK_DISABLED": "true", "JZ_LOG_LEVEL": "WARNING"},
}

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

    records: int
    elapsed_s: float
    events_per_s: float
    cpu: dict[str, float]
    effect: dict[str, int] = dataclasses.field(default_factory=dict)
    extra: dict[str, object] = dataclasses.field(default_factory=dict)

    def exactly_once(self, events: int) -> bool:
        return self.effect == {"ledger_rows": events, "ledger_distinct_events": events, "inbox_rows": events}

    def _cpu_s(self) -> float:
        """CPU of the process doing the work: the service's, else this one's."""
        return self.cpu.get("server_process_cpu_s", self.cpu.get("bench_process_cpu_s", 0.0))

    def summary(self) -> dict[str, object]:
        return {
            "records": self.records,
            "elapsed_s": round(self.elapsed_s, 3),
            "events_per_s": round(self.events_per_s, 1),
            "cpu_ms_per_event": round(self._cpu_s() * 1000 / self.records, 3) if self.records else None,
            **self.extra,
            "cpu": self.cpu,
            "effect": self.effect,
        }


async def _bare_consumer(
    bootstrap: str, dsn: str, count: int, timeout_s: float, through_consumer: bool
) -> Applied:
    """Consume ``count`` records with a group of our own and apply each poll, either with the bare
    batched SQL or, with ``through_consumer``, through the service's ``IdempotentConsumer``."""
    await migrate(dsn, CREDIT_MIGRATIONS)
    pool = await create_pool(dsn, 2, ServiceSettings().db_pool_max)
    dlq = AIOKafkaProducer(bootstrap_servers=bootstrap)  # never started: nothing here dead-letters
    idempotent = IdempotentConsumer(
        CONSUMER,
        lambda: PgCreditUnitOfWork(pool),
        EFFECTS,
        KafkaDeadLetters(dlq, CONSUMER, timeout_s=10),
        lambda: database_answers(pool),
    )
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"jzbench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    done = 0
    outcomes: dict[str, int] = {}
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
            if through_consumer:
                batch = [KafkaRecord(r.topic, r.key, r.value, r.headers) for r in records]
                for outcome in await idempotent.handle_batch(batch):
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                done += len(batch)
            else:
                done += await _apply_batch(pool, records)
            await consumer.commit()
        end = time.perf_counter()
        if first is not None:
            cpu.stop()
    finally:
        await consumer.stop()
        await dlq.stop()
        await pool.close()
    elapsed = end - first if first is not None else 0.0
    extra: dict[str, object] = {"outcomes": outcomes} if through_consumer else {}
    return Applied(done, elapsed, done / elapsed if elapsed > 0 else 0.0, cpu.result, extra=extra)


async def _effect_check(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM ledger_entries) AS ledger_rows,"
        " (SELECT count(DISTINCT event_id) FROM ledger_entries) AS ledger_distinct_events,"
        " (SELECT count(*) FROM inbox) AS inbox_rows"
    )
    return {k: int(v) for k, v in dict(row).items()}


async def _bare(env: BenchEnv, purpose: str, count: int, timeout_s: float, through_consumer: bool) -> Applied:
    async with scratch_database(env.endpoints, f"jzbench_{purpose}") as db:
        dsn = env.endpoints.dsn(db)
        result = await _bare_consumer(env.endpoints.kafka_bootstrap, dsn, count, timeout_s, through_consumer)
        conn = await asyncpg.connect(dsn)
        try:
            result.effect = await _effect_check(conn)
        finally:
            await conn.close()
    return result


async def _service(
    env: BenchEnv, count: int, timeout_s: float, extra_env: dict[str, str] | None = None
) -> Applied:
    """The credit process on a fresh database; its rate from the ledger rows' ``recorded_at`` span."""
    async with scratch_database(env.endpoints, "jzbench_credit_svc") as db:
        conn = await asyncpg.connect(env.endpoints.dsn(db))
        try:
            async with running_service(env, "credit", db, extra_env) as svc:
                cpu = CpuWindow(svc.pid)
                started = time.perf_counter()
                first_seen: float | None = None
                applied = 0
                while applied < count and time.perf_counter() - started < timeout_s:
                    await asyncio.sleep(0.05)
                    applied = int(await conn.fetchval("SELECT count(*) FROM ledger_entries"))
                    if applied and first_seen is None:
                        first_seen = time.perf_counter()
                        cpu.start()
                done_seen = time.perf_counter()
                if first_seen is not None:
                    cpu.stop()
                span = await conn.fetchval(
                    "SELECT extract(epoch FROM max(recorded_at) - min(recorded_at)) FROM ledger_entries"
                )
                effect = await _effect_check(conn)
        finally:
            await conn.close()
    span_s = float(span or 0.0)
    extra: dict[str, object] = {
        "all_applied": applied >= count,
        "seen_by_polling_s": round(done_seen - first_seen, 3) if first_seen else None,
        "serving_to_first_entry_s": round(first_seen - started, 2) if first_seen else None,
    }
    rate = (applied - 1) / span_s if span_s > 0 else 0.0
    return Applied(applied, span_s, rate, cpu.result, effect, extra)


async def run(
    env: BenchEnv, events: int = 40_000, timeout_s: float = 240.0, diagnostic_events: int = 10_000
) -> dict[str, object]:
    """All credit measurements; ``diagnostic_events`` 0 skips the switched-off service runs."""
    bootstrap = env.endpoints.kafka_bootstrap
    await reset_topic(bootstrap, TOPIC)
    produced = await produce(bootstrap, events)
    in_topic = await topic_record_count(bootstrap, TOPIC)
    baseline = await _bare(env, "credit_base", events, timeout_s, through_consumer=False)
    service = await _service(env, events, timeout_s)
    # Again after the service (the machine drifts); the ratio is against the mean of both.
    baseline_after = await _bare(env, "credit_base_after", events, timeout_s, through_consumer=False)
    base_rate = (baseline.events_per_s + baseline_after.events_per_s) / 2
    in_process = await _bare(env, "credit_inbox", events, timeout_s, through_consumer=True)
    rate_ratio = ratio(service.events_per_s, base_rate)
    diagnostics: dict[str, object] = {}
    for name, extra_env in DIAGNOSTICS.items() if diagnostic_events > 0 else ():
        # credit's group has consumed the topic: recreate it (dropping the group's offsets) and refill.
        await reset_topic(bootstrap, TOPIC)
        await produce(bootstrap, diagnostic_events)
        run_ = await _service(env, diagnostic_events, timeout_s, extra_env)
        diagnostics[name] = {
            "env": extra_env,
            "exactly_once": run_.exactly_once(diagnostic_events),
            **run_.summary(),
        }
    return {
        "events": events,
        "produced": produced,
        "records_in_topic": in_topic,
        "baseline": baseline.summary(),
        "baseline_after_service": baseline_after.summary(),
        "baseline_events_per_s_mean": round(base_rate, 1),
        "service": service.summary(),
        "ratio_to_baseline": rate_ratio,
        "idempotent_consumer_in_process": in_process.summary(),
        "diagnostics": diagnostics,
        "each_event_applied_exactly_once": all(
            r.exactly_once(events) for r in (baseline, service, in_process)
        ),
        "targets": {"events_per_s": TARGET_RATE, "ratio_to_baseline": TARGET_RATIO},
        "meets": {
            "events_per_s": service.events_per_s >= TARGET_RATE,
            "ratio_to_baseline": rate_ratio >= TARGET_RATIO,
        },
    }
