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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
import pytest

from deploy.local.stack import Endpoints, LocalStack
from deploy.local.stack import scratch_database as new_scratch_database
from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from libs.common.kafka import dlq_topic
from tests.integration.clients import auth, create_order, new_worker_id, order_request
from tests.integration.faults import (  # noqa: F401
    Load,
    each_once_in_the_ledger,
    fault_harness_fixture,
    fault_stack_fixture,
    restarts,
    running,
)
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import produce_order_created, read_topic

pytestmark = pytest.mark.own_stack  # and integration, as everything here (conftest)

RELAY_POLL_S = 30  # far longer than any wait below: publishing must come from NOTIFY
CALLS_PER_S = 50
OUTAGE_S = 8


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


Platform = Load[orders_pb2.CreateOrderRequest]


@contextlib.asynccontextmanager
async def booking(harness: ServiceHarness, orders: RunningService) -> AsyncIterator[Platform]:
    """A platform booking at a steady pace; a failed call is retried later with its request id."""
    key = harness.key("demo-platform")
    async with orders.channel() as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)

        async def book(request: orders_pb2.CreateOrderRequest, deadline_s: float) -> str:
            reply = await stub.CreateOrder(request, metadata=auth(key), timeout=deadline_s)
            return reply.order.name

        platform = Load("orders", lambda: order_request(new_worker_id()), book, CALLS_PER_S)
        async with running(platform, warm_up=20):
            yield platform


async def each_order_once_in_the_ledger(p: Pipeline, platform: Platform, others: Sequence[str] = ()) -> None:
    """Every booking of ``platform`` (and of the ``others`` workers) is one ledger entry."""
    workers = [r.order.worker_id for r in platform.requests.values()] + list(others)
    await each_once_in_the_ledger(p.credit_dsn, workers)


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
        await published_promptly(p, fault_harness.key("demo-platform"))
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
        await published_promptly(p, fault_harness.key("demo-platform"))
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
        await published_promptly(p, fault_harness.key("demo-platform"))
        await nothing_dead_lettered(fault_harness.endpoints)
