"""The thin vertical slice: a platform's CreateOrder reaches the credit ledger exactly once,
with one trace from the platform's call to the ledger entry."""

from __future__ import annotations

import grpc
import pytest

from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from tests.integration.clients import (
    auth,
    create_order,
    db_value,
    ledger,
    log_lines,
    new_traceparent,
    new_worker_id,
    order_request,
)
from tests.integration.harness import RunningService, ServiceHarness, eventually


async def test_order_reaches_credit_ledger_once_with_the_callers_trace(
    harness: ServiceHarness, orders: RunningService, credit: RunningService
) -> None:
    worker = new_worker_id()
    trace_id, traceparent = new_traceparent()
    order = await create_order(orders, harness.key("demo-platform"), order_request(worker), traceparent)

    assert order.name.startswith("orders/")
    assert order.platform_id == "demo-platform"
    assert order.state == orders_pb2.ORDER_STATE_CREATED
    entries = await eventually(lambda: ledger(credit, harness.key("operator"), worker))
    assert len(entries) == 1
    entry = entries[0]
    assert entry.worker_id == worker
    assert entry.event_type == "jiazheng.orders.events.v1.OrderCreated"
    assert order.name.removeprefix("orders/") in entry.reason
    assert entry.trace_id == trace_id
    assert {"msg": "order created", "trace_id": trace_id} in log_lines(orders, "order_id", order.name[7:])
    metrics = await credit.metrics_showing('jz_events_consumed_total{consumer="credit",outcome="applied"}')
    assert 'jz_consumer_lag{consumer="credit",partition=' in metrics
    assert {"msg": "ledger entry recorded", "trace_id": trace_id} in log_lines(
        credit, "event_id", entry.event_id
    )


async def test_retry_with_same_request_id_returns_same_order_and_publishes_once(
    harness: ServiceHarness, orders: RunningService, credit: RunningService
) -> None:
    worker = new_worker_id()
    request = order_request(worker)
    first = await create_order(orders, harness.key("demo-platform"), request)
    second = await create_order(orders, harness.key("demo-platform"), request)
    assert second == first

    # Orders are keyed by order, so another order is no marker for this one's partition: the
    # outbox is where "published once" is decided, the ledger where it is applied once.
    marker = await create_order(orders, harness.key("demo-platform"), order_request(worker))
    expected = sorted(f"booked for order {o.name.removeprefix('orders/')}" for o in (first, marker))

    async def both_recorded() -> list[str]:
        reasons = sorted(e.reason for e in await ledger(credit, harness.key("operator"), worker))
        return reasons if set(expected) <= set(reasons) else []

    assert await eventually(both_recorded) == expected
    sql = "SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type LIKE '%OrderCreated'"
    assert await db_value(harness.endpoints.dsn("jz_orders"), sql, first.name) == 1


async def test_request_id_reused_for_a_different_order_is_rejected(
    harness: ServiceHarness, orders: RunningService
) -> None:
    request = order_request(new_worker_id())
    await create_order(orders, harness.key("demo-platform"), request)
    changed = order_request(new_worker_id(), request_id=request.request_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_order(orders, harness.key("demo-platform"), changed)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in (err.value.details() or "")


async def test_one_platform_cannot_see_another_platforms_order(
    harness: ServiceHarness, orders: RunningService
) -> None:
    order = await create_order(orders, harness.key("demo-platform"), order_request())
    async with orders.channel() as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)
        own = await stub.GetOrder(
            orders_pb2.GetOrderRequest(name=order.name), metadata=auth(harness.key("demo-platform"))
        )
        assert own.order == order
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetOrder(
                orders_pb2.GetOrderRequest(name=order.name), metadata=auth(harness.key("other-platform"))
            )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
