"""Benchmark: CreateOrder through gRPC, order and outbox row in one transaction, relay running.

Each measurement on a fresh database, through the same grpc.aio client (one channel, a closed
loop of ``concurrency`` calls in flight):

- ``bare_grpc_server``: the baseline, ``bench.bare_orders_server``: a grpc.aio CreateOrder doing
  the service's transaction and nothing else, the floor for one Python gRPC process, with
  ``python -m libs.common.relay`` beside it publishing its outbox rows as it does the service's
  (the same relay, PostgreSQL and Kafka work on the machine in both measurements: only the API
  process differs). Run at ``concurrency`` before and again after the service (the ratio is
  against the mean of the two), and at ``p99_concurrency`` (the baseline of the latency target).
- ``service``: the real ``python -m services.orders`` process with its outbox relay in a process
  of its own (``JZ_RELAY_ENABLED=false`` and ``python -m libs.common.relay``, the shape in which
  calls per second count), at ``concurrency`` and, on another database, at ``p99_concurrency`` in
  flight. After each load the outbox is watched until the relay has published everything, and
  Kafka's record count is compared with the orders rows.
- diagnostics: ``service, relay in the API process``, the default local shape (what the relay
  costs the API's event loop); the bare gRPC server with no relay beside it (what the relay's
  process costs the machine); ``bare_asyncpg_loop``, the same transaction in a bare asyncpg loop
  in this process on a pool like the service's (the floor without gRPC); the in-process cost of
  the guard's protovalidate check.

Targets: calls/s >= 0.8 x the bare gRPC server's, both at 64 in flight; p99 <= 30 ms at 16 in
flight; every order reaches Kafka once.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from bench.bare_orders_server import PLATFORM, create_order
from bench.common import (
    BenchEnv,
    LoadResult,
    ServiceProcess,
    Target,
    closed_loop,
    figure,
    mean,
    proc_status_kb,
    reset_topic,
    running_module,
    running_service,
    topic_record_count,
    unpublished,
    watch_outbox,
)
from deploy.local.stack import scratch_database
from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from jiazheng.type.v1 import service_type_pb2
from libs.common.db import create_pool, migrate
from libs.common.grpc_server import violations_of
from libs.common.settings import ServiceSettings
from services.orders import domain, events
from services.orders.app import MIGRATIONS

TARGET_RATIO = 0.8  # of the bare gRPC server's calls/s, both at `concurrency` in flight
TARGET_P99_MS = 30.0  # at `p99_concurrency` in flight
RELAY_ELSEWHERE = {"JZ_RELAY_ENABLED": "false"}
# The consumer's particulars every order carries (sealed by the store: their cost is in every run).
CONTACT = domain.Contact(full_name="张三", mobile="13812345678")
ADDRESS = "北京市海淀区中关村大街1号"  # in the orders' district, 110108 (海淀区)


def draft() -> domain.OrderDraft:
    return domain.OrderDraft(
        service_type=domain.ServiceType.CLEANING,
        district_code="110108",
        consumer_ref="consumer-42",
        worker_id=f"w-{uuid.uuid4().hex[:8]}",
        scheduled_start=datetime.now(UTC) + timedelta(days=1),
        duration_hours=3,
        contact=CONTACT,
        address=ADDRESS,
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
            contact=orders_pb2.Contact(full_name=CONTACT.full_name, mobile=CONTACT.mobile),
            address=ADDRESS,
        ),
    )


def _rpc_error(exc: BaseException) -> str | None:
    return exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else None


@dataclass(frozen=True)
class Outbox:
    """The outbox once the relay has drained what the load wrote, and what Kafka holds."""

    orders_rows: int
    backlog_when_load_ended: int
    left_unpublished: int
    drain_s: float
    commit_to_published_p50_ms: float | None
    commit_to_published_p99_ms: float | None
    kafka_records: int = 0

    @property
    def each_order_published_once(self) -> bool:
        return self.left_unpublished == 0 and self.kafka_records == self.orders_rows


@dataclass
class Run:
    """One closed-loop CreateOrder load: against a server process, or in this process."""

    name: str
    concurrency: int
    load: LoadResult
    rss_mb: dict[str, float] | None = None  # the server's, around the load
    outbox: Outbox | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def what(self) -> str:
        return f"{self.name}, {self.concurrency} in flight"

    def summary(self) -> dict[str, object]:
        entry: dict[str, object] = {"what": self.what, "load": self.load.summary()}
        if self.rss_mb is not None:
            entry["rss_mb"] = self.rss_mb
        if self.env:
            entry["env"] = self.env
        if self.outbox is not None:
            entry["outbox"] = {
                **asdict(self.outbox),
                "each_order_published_once": self.outbox.each_order_published_once,
            }
        return entry


async def _grpc_load(
    env: BenchEnv, svc: ServiceProcess, name: str, concurrency: int, warmup_s: float, duration_s: float
) -> Run:
    """The closed-loop CreateOrder load against a running server, and the server's RSS around it."""
    rss_ready_kb = proc_status_kb(svc.pid, "VmRSS")
    metadata = (("authorization", f"Bearer {env.key(PLATFORM)}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{svc.port}") as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)

        async def call() -> None:
            await stub.CreateOrder(_request(), metadata=metadata, timeout=30)

        load = await closed_loop(call, concurrency, warmup_s, duration_s, svc.pid, _rpc_error)
    rss_after_kb = proc_status_kb(svc.pid, "VmRSS")
    rss = {"ready": round(rss_ready_kb / 1024, 1), "after_load": round(rss_after_kb / 1024, 1)}
    return Run(name, concurrency, load, rss)


def _ms(delta: timedelta | None) -> float | None:
    return round(delta.total_seconds() * 1000, 1) if delta is not None else None


async def _outbox_after_load(conn: asyncpg.Connection, svc: ServiceProcess, timeout_s: float) -> Outbox:
    """Wait until the relay has published every row; the backlog, the wait and the lag."""
    load_end = time.perf_counter()
    backlog = await unpublished(conn)
    left = await watch_outbox(conn, lambda n: n == 0, timeout_s, svc)
    drain_s = time.perf_counter() - load_end
    lag = await conn.fetchrow(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY published_at - created_at) AS p50,"
        " percentile_disc(0.99) WITHIN GROUP (ORDER BY published_at - created_at) AS p99"
        " FROM outbox WHERE published_at IS NOT NULL"
    )
    orders_rows = int(await conn.fetchval("SELECT count(*) FROM orders"))
    return Outbox(orders_rows, backlog, left, round(drain_s, 2), _ms(lag["p50"]), _ms(lag["p99"]))


@dataclass(frozen=True)
class Load:
    """How long each CreateOrder run lasts, and how long the outbox may take to drain after it."""

    warmup_s: float
    duration_s: float
    drain_timeout_s: float = 120.0


async def _service(
    env: BenchEnv, name: str, concurrency: int, load: Load, relay_in_process: bool = False
) -> Run:
    """The orders process on a fresh database and an empty topic, its relay in a process of its own
    unless ``relay_in_process``: the load, then the outbox drained."""
    bootstrap = env.endpoints.kafka_bootstrap
    await reset_topic(bootstrap, events.TOPIC)
    extra = {} if relay_in_process else RELAY_ELSEWHERE
    async with scratch_database(env.endpoints, "jzbench_orders_svc") as db:
        conn = await asyncpg.connect(env.endpoints.dsn(db))
        try:
            async with (
                running_service(env, "orders", db, extra) as svc,
                _relay(env, db, relay_in_process) as relay,
            ):
                run_ = await _grpc_load(env, svc, name, concurrency, load.warmup_s, load.duration_s)
                outbox = await _outbox_after_load(conn, relay or svc, load.drain_timeout_s)
        finally:
            await conn.close()
    run_.outbox = replace(outbox, kafka_records=await topic_record_count(bootstrap, events.TOPIC))
    run_.env = extra
    return run_


def _relay(
    env: BenchEnv, database: str, in_process: bool
) -> contextlib.AbstractAsyncContextManager[ServiceProcess | None]:
    """``python -m libs.common.relay`` on ``database``; nothing when the API process relays itself."""
    return contextlib.nullcontext() if in_process else running_module(env, "libs.common.relay", database)


async def _bare_grpc(
    env: BenchEnv, runs: list[tuple[str, int]], load: Load, relay_beside: bool = True
) -> list[Run]:
    """``bench.bare_orders_server`` on a fresh database: one run per (name, concurrency).

    With ``relay_beside``, ``python -m libs.common.relay`` publishes the rows it writes, as it does
    the service's: the machine then carries the same relay, PostgreSQL and Kafka work in both
    measurements, and only the API process differs. Each run ends once the outbox has drained."""
    async with scratch_database(env.endpoints, "jzbench_orders_bare") as db:
        await migrate(env.endpoints.dsn(db), MIGRATIONS)
        conn = await asyncpg.connect(env.endpoints.dsn(db))
        try:
            async with (
                running_module(env, "bench.bare_orders_server", db) as svc,
                _relay(env, db, in_process=not relay_beside) as relay,
            ):
                measured = []
                for name, n in runs:
                    run_ = await _grpc_load(env, svc, name, n, load.warmup_s, load.duration_s)
                    if relay is not None:
                        run_.outbox = await _outbox_after_load(conn, relay, load.drain_timeout_s)
                    measured.append(run_)
                return measured
        finally:
            await conn.close()


async def _bare_asyncpg(env: BenchEnv, concurrency: int, load: Load) -> Run:
    """The service's transaction in a bare asyncpg loop in this process, on a pool like the service's."""
    async with scratch_database(env.endpoints, "jzbench_orders_asyncpg") as db:
        dsn = env.endpoints.dsn(db)
        await migrate(dsn, MIGRATIONS)
        pool = await create_pool(dsn, 2, ServiceSettings().db_pool_max)
        keyring = env.keyring()

        async def call() -> None:
            async with pool.acquire() as conn:
                await create_order(conn, keyring, draft(), uuid.uuid4())

        try:
            result = await closed_loop(call, concurrency, load.warmup_s, load.duration_s)
        finally:
            await pool.close()
    return Run("bare asyncpg loop (no gRPC)", concurrency, result)


def _validation_cost_us(iterations: int = 2000) -> float:
    """In-process cost of the interceptor's protovalidate check of one CreateOrderRequest."""
    request = _request()
    violations_of(request)
    t0 = time.perf_counter()
    for _ in range(iterations):
        violations_of(request)
    return round((time.perf_counter() - t0) / iterations * 1e6, 1)


def _figures(
    service: Run, service_low: Run, bare: list[Run], bare_low: Run, published_once: bool
) -> list[dict[str, object]]:
    n, low = f"{service.concurrency} in flight", f"{service_low.concurrency} in flight"
    return [
        figure(
            f"CreateOrder calls/s, {n}",
            "calls/s",
            round(service.load.rate, 1),
            mean(*(b.load.rate for b in bare)),
            Target(ratio_at_least=TARGET_RATIO),
        ),
        figure(
            f"CreateOrder p99, {low}",
            "ms",
            service_low.load.percentile_ms(99),
            bare_low.load.percentile_ms(99),
            Target(at_most=TARGET_P99_MS),
        ),
        figure(
            f"CreateOrder p99, {n}",
            "ms",
            service.load.percentile_ms(99),
            mean(*(b.load.percentile_ms(99) for b in bare)),
        ),
        figure(
            f"CreateOrder CPU per call, {n}",
            "CPU ms",
            service.load.cpu_ms_per_call,
            mean(*(b.load.cpu_ms_per_call for b in bare)),
        ),
        figure(
            f"CreateOrder outbox commit -> published p99, {n}",
            "ms",
            service.outbox.commit_to_published_p99_ms if service.outbox else None,
        ),
        figure(
            "CreateOrder: each order published once",
            "yes/no",
            published_once,
            target=Target(holds="Kafka records = orders rows"),
        ),
    ]


async def run(
    env: BenchEnv,
    concurrency: int = 64,
    p99_concurrency: int = 16,
    warmup_s: float = 2.0,
    duration_s: float = 15.0,
    diagnostics_s: float = 10.0,
) -> dict[str, object]:
    """All CreateOrder measurements; ``diagnostics_s`` 0 skips the diagnostic runs."""
    load = Load(warmup_s, duration_s)
    bare = "bare gRPC server, relay beside it"
    bare_before, bare_low = await _bare_grpc(env, [(bare, concurrency), (bare, p99_concurrency)], load)
    service = await _service(env, "service", concurrency, load)
    # Again after the service: the machine drifts; the ratio is taken against the mean of both.
    [bare_after] = await _bare_grpc(env, [(f"{bare} again", concurrency)], load)
    service_low = await _service(env, "service", p99_concurrency, load)
    runs = [bare_before, service, bare_after, bare_low, service_low]
    services = [service, service_low]
    result: dict[str, object] = {"concurrency": concurrency, "p99_concurrency": p99_concurrency}
    if diagnostics_s > 0:
        short = Load(warmup_s, diagnostics_s)
        services.append(await _service(env, "service, relay in the API process", concurrency, short, True))
        [bare_alone] = await _bare_grpc(env, [("bare gRPC server, no relay", concurrency)], short, False)
        runs += [services[-1], bare_alone, await _bare_asyncpg(env, concurrency, short)]
        result["protovalidate_us_per_request"] = _validation_cost_us()
    # Every run of the service checks its effect, the diagnostic one too.
    published_once = all(r.outbox is not None and r.outbox.each_order_published_once for r in services)
    return {
        **result,
        "warmup_s": warmup_s,
        "duration_s": duration_s,
        "diagnostics_s": diagnostics_s,
        "figures": _figures(service, service_low, [bare_before, bare_after], bare_low, published_once),
        "runs": [r.summary() for r in runs],
    }
