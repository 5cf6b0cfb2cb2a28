"""Outages injected through the local stack's own controls, under a steady CreateOrder load.

A stack of its own (so that stopping its PostgreSQL or killing its broker disturbs no other
test), orders and credit supervised as an orchestrator would run them, and a platform that
retries a failed call with the same request id, as the API asks. After each fault: every order
reached the credit ledger exactly once, nothing was dead-lettered, and the relay publishes
within moments again (woken by NOTIFY: its polling interval is set to 30 s here).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import asyncpg
import grpc
import pytest

from deploy.local.stack import Endpoints, LocalStack, default_home
from deploy.local.stack import scratch_database as new_scratch_database
from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from libs.common.kafka import dlq_topic
from tests.integration.clients import auth, create_order, new_worker_id, order_request
from tests.integration.harness import RunningService, ServiceHarness, eventually, services_on
from tests.integration.kafka_tools import produce_order_created, read_topic

RELAY_POLL_S = 30  # far longer than any wait below: publishing must come from NOTIFY
CALLS_PER_S = 50
OUTAGE_S = 8


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[LocalStack]:
    stack = LocalStack(default_home("test") / "faults")
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def fault_harness(fault_stack: LocalStack) -> Iterator[ServiceHarness]:
    with services_on(fault_stack.endpoints(), fault_stack.home) as harness:
        yield harness


@dataclass
class Pipeline:
    orders: RunningService
    credit: RunningService
    orders_dsn: str
    credit_dsn: str


@contextlib.asynccontextmanager
async def pipeline(harness: ServiceHarness) -> AsyncIterator[Pipeline]:
    """orders and credit, supervised, on databases of their own, credit in a group of its own."""
    endpoints = harness.endpoints
    async with (
        new_scratch_database(endpoints, "jz_faults") as orders_db,
        new_scratch_database(endpoints, "jz_faults") as credit_db,
    ):
        orders = await harness.start(
            "orders", database=orders_db, supervised=True, relay_poll_interval_s=str(RELAY_POLL_S)
        )
        credit = await harness.start(
            "credit",
            database=credit_db,
            supervised=True,
            consumer_group_prefix=f"faults-{uuid.uuid4().hex[:8]}",
        )
        try:
            yield Pipeline(orders, credit, endpoints.dsn(orders_db), endpoints.dsn(credit_db))
        finally:
            await asyncio.to_thread(credit.stop)
            await asyncio.to_thread(orders.stop)


@dataclass
class Platform:
    """A platform booking at a steady pace; a failed call is retried later with its request id."""

    stub: orders_pb2_grpc.OrderServiceAsyncStub
    key: str
    requests: dict[str, orders_pb2.CreateOrderRequest] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)  # request id -> order name
    codes: Counter[str] = field(default_factory=Counter)
    calls: set[asyncio.Task[None]] = field(default_factory=set)

    async def book(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            request = order_request(new_worker_id())
            self.requests[request.request_id] = request
            call = asyncio.create_task(self.call(request))
            self.calls.add(call)
            call.add_done_callback(self.calls.discard)
            await asyncio.sleep(1 / CALLS_PER_S)
        await asyncio.gather(*self.calls)

    async def call(self, request: orders_pb2.CreateOrderRequest) -> None:
        try:
            reply = await self.stub.CreateOrder(request, metadata=auth(self.key), timeout=10)
        except grpc.aio.AioRpcError as err:
            self.codes[err.code().name] += 1
            return
        self.codes["OK"] += 1
        self.created[request.request_id] = reply.order.name

    async def settle(self) -> None:
        """Retry every request that has not succeeded yet, until all have."""

        async def all_created() -> bool:
            missing = [r for rid, r in self.requests.items() if rid not in self.created]
            await asyncio.gather(*(self.call(r) for r in missing))
            return len(self.created) == len(self.requests)

        await eventually(all_created, within=120, interval=1)

    async def seen(self, code: str, more_than: int) -> bool:
        return self.codes[code] > more_than


@contextlib.asynccontextmanager
async def booking(harness: ServiceHarness, orders: RunningService) -> AsyncIterator[Platform]:
    async with orders.channel() as channel:
        platform = Platform(orders_pb2_grpc.OrderServiceStub(channel), harness.key("demo-platform"))
        stop = asyncio.Event()
        load = asyncio.create_task(platform.book(stop))
        try:
            await eventually(lambda: platform.seen("OK", 20))
            yield platform
        finally:
            stop.set()
            await load
        await platform.settle()


async def each_order_once_in_the_ledger(p: Pipeline, platform: Platform, others: Sequence[str] = ()) -> None:
    """Every booking of ``platform`` (and of the ``others`` workers) is one ledger entry."""
    workers = [r.order.worker_id for r in platform.requests.values()] + list(others)

    async def counts() -> dict[str, int] | None:
        conn = await asyncpg.connect(p.credit_dsn)
        try:
            rows = await conn.fetch(
                "SELECT worker_id, count(*) AS n FROM ledger_entries WHERE worker_id = ANY($1::text[])"
                " GROUP BY worker_id",
                workers,
            )
        finally:
            await conn.close()
        found = {r["worker_id"]: r["n"] for r in rows}
        return found if len(found) == len(workers) else None

    found = await eventually(counts, within=120, interval=1)
    assert found is not None
    assert set(found.values()) == {1}, {w: n for w, n in found.items() if n != 1}


async def published_promptly(p: Pipeline, key: str) -> None:
    """A fresh order reaches Kafka within seconds, far inside the relay's 30 s polling interval."""
    order = await create_order(p.orders, key, order_request(new_worker_id()))
    conn = await asyncpg.connect(p.orders_dsn)
    try:

        async def published() -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT published_at IS NOT NULL FROM outbox WHERE aggregate_id = $1", order.name
                )
            )

        await eventually(published, within=RELAY_POLL_S / 3)
    finally:
        await conn.close()


async def nothing_dead_lettered(endpoints: Endpoints) -> None:
    assert await read_topic(endpoints.kafka_bootstrap, dlq_topic("credit")) == []


def restarts(svc: RunningService) -> int:
    state = svc.supervision()
    assert state is not None
    return state.restarts


async def restarted_once(svc: RunningService) -> bool:
    return restarts(svc) == 1


async def test_a_postgresql_outage_answers_unavailable_dead_letters_nothing_and_loses_nothing(
    fault_harness: ServiceHarness, fault_stack: LocalStack
) -> None:
    in_flight = [new_worker_id() for _ in range(200)]
    async with pipeline(fault_harness) as p:
        async with booking(fault_harness, p.orders) as platform:
            await asyncio.to_thread(fault_stack.stop_postgres)
            await eventually(lambda: platform.seen("UNAVAILABLE", 10))
            # Events credit reads while its database is away: they must wait, not dead-letter.
            await produce_order_created(fault_harness.endpoints.kafka_bootstrap, in_flight)
            await asyncio.sleep(OUTAGE_S)
            await asyncio.to_thread(fault_stack.start_postgres)
            ok = platform.codes["OK"]
            await eventually(lambda: platform.seen("OK", ok + 20))

        assert set(platform.codes) == {"OK", "UNAVAILABLE"}, platform.codes
        await each_order_once_in_the_ledger(p, platform, in_flight)
        await published_promptly(p, platform.key)
        await nothing_dead_lettered(fault_harness.endpoints)
        assert [restarts(p.orders), restarts(p.credit)] == [0, 0], (  # rode it out, no crash
            p.orders.supervision(),
            p.credit.supervision(),
        )


async def test_a_broker_killed_and_restarted_loses_nothing_and_publishing_resumes(
    fault_harness: ServiceHarness, fault_stack: LocalStack
) -> None:
    async with pipeline(fault_harness) as p:
        async with booking(fault_harness, p.orders) as platform:
            await asyncio.to_thread(fault_stack.stop_kafka, signal.SIGKILL)
            await asyncio.sleep(OUTAGE_S)
            ok = platform.codes["OK"]
            await eventually(lambda: platform.seen("OK", ok + 100))  # orders keeps taking bookings
            await asyncio.to_thread(fault_stack.start_kafka)

        assert set(platform.codes) == {"OK"}, platform.codes
        await each_order_once_in_the_ledger(p, platform)
        await published_promptly(p, platform.key)
        await nothing_dead_lettered(fault_harness.endpoints)


@pytest.mark.parametrize("victim", ["credit", "orders"])
async def test_a_service_killed_under_load_is_restarted_and_loses_nothing(
    fault_harness: ServiceHarness, victim: str
) -> None:
    async with pipeline(fault_harness) as p:
        svc = p.credit if victim == "credit" else p.orders
        async with booking(fault_harness, p.orders) as platform:
            svc.kill_child(signal.SIGKILL)
            await eventually(lambda: restarted_once(svc))
            await svc.wait_serving()
            ok = platform.codes["OK"]
            await eventually(lambda: platform.seen("OK", ok + 20))

        assert set(platform.codes) <= {"OK", "UNAVAILABLE"}, platform.codes
        await each_order_once_in_the_ledger(p, platform)
        await published_promptly(p, platform.key)
        await nothing_dead_lettered(fault_harness.endpoints)
