"""Benchmark 1: CreateOrder through gRPC, order and outbox row in one transaction, relay running.

Measurements, each on a fresh database, all at the same concurrency unless said otherwise:

- ``baseline``: a bare asyncpg loop, one transaction per call: the orders insert
  (``PgOrderRepository.add_once``), the outbox insert and ``NOTIFY jiazheng_outbox``
  (``libs.common.outbox.add_event``), i.e. the very SQL the service runs, on a pool as large as
  the service's (``JZ_DB_POOL_MAX``, default 10). Nothing publishes its outbox rows. Run before
  and again after the service; the ratio is against the mean of the two.
- ``relay_drain``: the real orders process started on the baseline's database, whose outbox now
  holds every baseline row unpublished; how fast its relay empties it (nothing else running).
- ``service``: the real ``python -m services.orders`` process (relay enabled) called through a
  grpc.aio channel with ``concurrency`` calls in flight; afterwards the outbox backlog is watched
  until the relay has published everything, and Kafka's record count is compared with the orders.
- ``diagnostics``, to locate the costs: ``service_layer.create_order`` called in this process
  (the baseline plus the request-id lookup and the domain rules; no gRPC, no telemetry); the
  service with OpenTelemetry (``OTEL_SDK_DISABLED=true``), the relay (``JZ_RELAY_ENABLED=false``),
  or all of those and INFO logs switched off through its environment (no code change);
  ``bench.bare_orders_server``, a grpc.aio CreateOrder with nothing but the baseline's
  transaction, under the same client; baseline and service at a low concurrency (8 in flight),
  where latency is not queueing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from bench.common import (
    BenchEnv,
    LoadResult,
    ServiceProcess,
    closed_loop,
    proc_status_kb,
    process_cpu_s,
    ratio,
    reset_topic,
    running_module,
    running_service,
    topic_record_count,
)
from deploy.local.stack import scratch_database
from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from jiazheng.type.v1 import service_type_pb2
from libs.common.db import create_pool, migrate
from libs.common.grpc_server import violations_of
from libs.common.outbox import add_event
from libs.common.settings import ServiceSettings
from services.orders import domain, events, service_layer
from services.orders.domain import BookingWindow
from services.orders.store import PgOrderRepository, PgOrdersUnitOfWork

ORDERS_MIGRATIONS = Path(events.__file__).with_name("migrations")
PLATFORM = "demo-platform"
TARGET_RATE = 1500.0
TARGET_P99_MS = 30.0
TARGET_RATIO = 0.6
# The service again with one cost switched off through its environment (no code change).
DIAGNOSTICS = {
    "telemetry_off": {"OTEL_SDK_DISABLED": "true"},
    "relay_off": {"JZ_RELAY_ENABLED": "false"},
    "telemetry_relay_and_info_logs_off": {
        "OTEL_SDK_DISABLED": "true",
        "JZ_RELAY_ENABLED": "false",
        "JZ_LOG_LEVEL": "WARNING",
    },
}


def _draft() -> domain.OrderDraft:
    return domain.OrderDraft(
        service_type=domain.ServiceType.CLEANING,
        district_code="110108",
        consumer_ref="consumer-42",
        worker_id=f"w-{uuid.uuid4().hex[:8]}",
        scheduled_start=datetime.now(UTC) + timedelta(days=1),
        duration_hours=3,
    )


def _request() -> orders_pb2.CreateOrderRequest:
    start = Timestamp()
    start.FromSeconds(int(time.time()) + 24 * 3600)
    return orders_pb2.CreateOrderRequest(
        request_id=str(uuid.uuid4()),
        order=orders_pb2.Order(
            service_type=service_type_pb2.SERVICE_TYPE_CLEANING,
            district_code="110108",
            consumer_ref="consumer-42",
            worker_id=f"w-{uuid.uuid4().hex[:8]}",
            scheduled_start_time=start,
            duration_hours=3,
        ),
    )


def _rpc_error(exc: BaseException) -> str | None:
    return exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else None


async def _baseline(dsn: str, concurrency: int, warmup_s: float, duration_s: float) -> LoadResult:
    await migrate(dsn, ORDERS_MIGRATIONS)
    pool = await create_pool(dsn, 2, ServiceSettings().db_pool_max)

    async def call() -> None:
        order = domain.create_order(_draft(), PLATFORM, datetime.now(UTC))
        event = events.order_created(order)
        async with pool.acquire() as conn, conn.transaction():
            earlier = await PgOrderRepository(conn).add_once(order, uuid.uuid4())
            assert earlier is None
            await add_event(conn, events.TOPIC, event)

    try:
        return await closed_loop(call, concurrency, warmup_s, duration_s)
    finally:
        await pool.close()


async def _use_case(dsn: str, concurrency: int, warmup_s: float, duration_s: float) -> LoadResult:
    await migrate(dsn, ORDERS_MIGRATIONS)
    pool = await create_pool(dsn, 2, ServiceSettings().db_pool_max)

    async def call() -> None:
        await service_layer.create_order(
            PgOrdersUnitOfWork(pool), PLATFORM, uuid.uuid4(), _draft(), BookingWindow()
        )

    try:
        return await closed_loop(call, concurrency, warmup_s, duration_s)
    finally:
        await pool.close()


async def _unpublished(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def _relay_drain(env: BenchEnv, database: str, timeout_s: float) -> dict[str, object]:
    """Start the orders process on a database whose outbox is full; time its relay emptying it."""
    bootstrap = env.endpoints.kafka_bootstrap
    await reset_topic(bootstrap, events.TOPIC)
    conn = await asyncpg.connect(env.endpoints.dsn(database))
    try:
        backlog = await _unpublished(conn)
        async with running_service(env, "orders", database) as svc:
            t0, open0, cpu0 = time.perf_counter(), await _unpublished(conn), process_cpu_s(svc.pid)
            open1 = open0
            while open1 and time.perf_counter() - t0 < timeout_s:
                await asyncio.sleep(0.1)
                open1 = await _unpublished(conn)
            elapsed = time.perf_counter() - t0
            cpu_s = round(process_cpu_s(svc.pid) - cpu0, 2)
    finally:
        await conn.close()
    published = open0 - open1
    return {
        "backlog": backlog,
        "published_before_first_sample": backlog - open0,
        "published_timed": published,
        "left_unpublished": open1,
        "elapsed_s": round(elapsed, 2),
        "events_per_s": round(published / elapsed, 1) if elapsed > 0 else None,
        "server_process_cpu_s": cpu_s,
        "kafka_records": await topic_record_count(bootstrap, events.TOPIC),
    }


async def _grpc_load(
    env: BenchEnv, svc: ServiceProcess, concurrency: int, warmup_s: float, duration_s: float
) -> dict[str, object]:
    """The closed-loop CreateOrder load against a running server, and the server's RSS around it."""
    rss_ready_kb = proc_status_kb(svc.pid, "VmRSS")
    metadata = (("authorization", f"Bearer {env.key(PLATFORM)}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{svc.port}") as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)

        async def call() -> None:
            await stub.CreateOrder(_request(), metadata=metadata, timeout=30)

        load = await closed_loop(call, concurrency, warmup_s, duration_s, svc.pid, _rpc_error)
    rss_after_kb = proc_status_kb(svc.pid, "VmRSS")
    return {
        "load": load.summary(),
        "rss_mb": {"ready": round(rss_ready_kb / 1024, 1), "after_load": round(rss_after_kb / 1024, 1)},
    }


async def _service(
    env: BenchEnv,
    database: str,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    drain_timeout_s: float,
    extra: dict[str, str] | None = None,
    watch_outbox: bool = True,
) -> dict[str, object]:
    bootstrap = env.endpoints.kafka_bootstrap
    await reset_topic(bootstrap, events.TOPIC)
    async with running_service(env, "orders", database, extra) as svc:
        result = await _grpc_load(env, svc, concurrency, warmup_s, duration_s)
        if not watch_outbox:
            return result
        load_end = time.perf_counter()
        conn = await asyncpg.connect(env.endpoints.dsn(database))
        try:
            backlog_at_end = open_rows = await _unpublished(conn)
            while open_rows and time.perf_counter() - load_end < drain_timeout_s:
                await asyncio.sleep(0.05)
                open_rows = await _unpublished(conn)
            drain_s = time.perf_counter() - load_end
            lag = await conn.fetchrow(
                "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY published_at - created_at) AS p50,"
                " percentile_disc(0.99) WITHIN GROUP (ORDER BY published_at - created_at) AS p99"
                " FROM outbox WHERE published_at IS NOT NULL"
            )
            orders_rows = int(await conn.fetchval("SELECT count(*) FROM orders"))
        finally:
            await conn.close()
    result["outbox"] = {
        "orders_rows": orders_rows,
        "backlog_when_load_ended": backlog_at_end,
        "left_unpublished": open_rows,
        "drain_s": round(drain_s, 2),
        "commit_to_published_p50_ms": _ms(lag["p50"]),
        "commit_to_published_p99_ms": _ms(lag["p99"]),
        "kafka_records": await topic_record_count(bootstrap, events.TOPIC),
    }
    return result


async def _bare_grpc(
    env: BenchEnv, database: str, concurrency: int, warmup_s: float, duration_s: float
) -> dict[str, object]:
    await migrate(env.endpoints.dsn(database), ORDERS_MIGRATIONS)
    async with running_module(env, "bench.bare_orders_server", database) as svc:
        return await _grpc_load(env, svc, concurrency, warmup_s, duration_s)


async def _diagnostics(
    env: BenchEnv, concurrency: int, warmup_s: float, duration_s: float, low_concurrency: int
) -> dict[str, object]:
    endpoints = env.endpoints
    found: dict[str, object] = {}
    for name, extra in DIAGNOSTICS.items():
        async with scratch_database(endpoints, f"jzbench_orders_{name}") as db:
            run_ = await _service(env, db, concurrency, warmup_s, duration_s, 0, extra, watch_outbox=False)
            found[f"service_{name}"] = {"env": extra, **run_}
    async with scratch_database(endpoints, "jzbench_orders_bare_grpc") as db:
        found["bare_grpc_server"] = await _bare_grpc(env, db, concurrency, warmup_s, duration_s)
    async with scratch_database(endpoints, "jzbench_orders_base_low") as db:
        low = await _baseline(endpoints.dsn(db), low_concurrency, warmup_s, duration_s)
        found[f"baseline_concurrency_{low_concurrency}"] = {"load": low.summary()}
    async with scratch_database(endpoints, "jzbench_orders_svc_low") as db:
        found[f"service_concurrency_{low_concurrency}"] = await _service(
            env, db, low_concurrency, warmup_s, duration_s, 0, watch_outbox=False
        )
    return found


def _ms(delta: timedelta | None) -> float | None:
    return round(delta.total_seconds() * 1000, 1) if delta is not None else None


def _validation_cost_us(iterations: int = 2000) -> float:
    """In-process cost of the interceptor's protovalidate check of one CreateOrderRequest."""
    request = _request()
    violations_of(request)
    t0 = time.perf_counter()
    for _ in range(iterations):
        violations_of(request)
    return round((time.perf_counter() - t0) / iterations * 1e6, 1)


async def run(
    env: BenchEnv,
    concurrency: int = 64,
    warmup_s: float = 2.0,
    duration_s: float = 15.0,
    drain_timeout_s: float = 120.0,
    diagnostics_s: float = 10.0,
    low_concurrency: int = 8,
) -> dict[str, object]:
    """All orders measurements; ``diagnostics_s`` 0 skips the diagnostic runs."""
    endpoints = env.endpoints
    async with scratch_database(endpoints, "jzbench_orders_base") as db:
        baseline = await _baseline(endpoints.dsn(db), concurrency, warmup_s, duration_s)
        relay_drain = await _relay_drain(env, db, drain_timeout_s)
    async with scratch_database(endpoints, "jzbench_orders_svc") as db:
        service = await _service(env, db, concurrency, warmup_s, duration_s, drain_timeout_s)
    # Again after the service: the machine drifts; the ratio is taken against the mean of both.
    async with scratch_database(endpoints, "jzbench_orders_base_after") as db:
        baseline_after = await _baseline(endpoints.dsn(db), concurrency, warmup_s, duration_s)
    base_rate = (baseline.rate + baseline_after.rate) / 2
    async with scratch_database(endpoints, "jzbench_orders_uc") as db:
        use_case = await _use_case(endpoints.dsn(db), concurrency, warmup_s, duration_s)
    diagnostics: dict[str, object] = {"use_case_in_process": {"load": use_case.summary()}}
    if diagnostics_s > 0:
        diagnostics.update(await _diagnostics(env, concurrency, warmup_s, diagnostics_s, low_concurrency))
    load = service["load"]
    assert isinstance(load, dict)
    rate, p99 = float(load["calls_per_s"]), float(load["p99_ms"])
    return {
        "concurrency": concurrency,
        "warmup_s": warmup_s,
        "duration_s": duration_s,
        "baseline": baseline.summary(),
        "baseline_after_service": baseline_after.summary(),
        "baseline_calls_per_s_mean": round(base_rate, 1),
        "service": service,
        "ratio_to_baseline": ratio(rate, base_rate),
        "relay_drain": relay_drain,
        "diagnostics": diagnostics,
        "protovalidate_us_per_request": _validation_cost_us(),
        "targets": {"calls_per_s": TARGET_RATE, "p99_ms": TARGET_P99_MS, "ratio_to_baseline": TARGET_RATIO},
        "meets": {
            "calls_per_s": rate >= TARGET_RATE,
            "p99_ms": p99 <= TARGET_P99_MS,
            "ratio_to_baseline": ratio(rate, base_rate) >= TARGET_RATIO,
        },
    }
