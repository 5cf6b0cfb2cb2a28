"""Bad input and bad credentials are refused with the right status, and nothing is stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.stack import Endpoints
from jiazheng.orders.v1 import orders_pb2_grpc
from tests.integration.clients import auth, create_order, order_request
from tests.integration.harness import RunningService, ServiceHarness


def field_violations(err: grpc.aio.AioRpcError) -> list[str]:
    trailers = cast(Sequence[tuple[str, bytes]], err.trailing_metadata() or ())
    trailer = dict(trailers)["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(trailer)
    fields = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        assert detail.Unpack(bad_request)
        fields += [v.field for v in bad_request.field_violations]
    return fields


async def test_malformed_request_is_invalid_argument_naming_the_field(
    harness: ServiceHarness, orders: RunningService, endpoints: Endpoints
) -> None:
    request = order_request(district_code="999999", consumer_ref="张三 13800000000")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_order(orders, harness.key("demo-platform"), request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "order.district_code" in (err.value.details() or "")
    assert sorted(field_violations(err.value)) == ["order.consumer_ref", "order.district_code"]
    conn = await asyncpg.connect(endpoints.dsn("jz_orders"))
    try:
        stored = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE request_id = $1::uuid", request.request_id
        )
    finally:
        await conn.close()
    assert stored == 0


async def test_domain_rule_violation_is_invalid_argument_naming_the_field(
    harness: ServiceHarness, orders: RunningService
) -> None:
    request = order_request()
    request.order.scheduled_start_time.FromSeconds(1_000_000_000)  # 2001
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_order(orders, harness.key("demo-platform"), request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["order.scheduled_start_time"]


@pytest.mark.parametrize(
    "metadata", [[], [("authorization", "Bearer not-a-key")], [("authorization", "Basic x")]]
)
async def test_call_without_a_valid_key_is_unauthenticated(
    orders: RunningService, metadata: list[tuple[str, str]]
) -> None:
    async with orders.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orders_pb2_grpc.OrderServiceStub(channel).CreateOrder(order_request(), metadata=metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_role_without_the_method_is_permission_denied(
    harness: ServiceHarness, orders: RunningService
) -> None:
    async with orders.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orders_pb2_grpc.OrderServiceStub(channel).CreateOrder(
                order_request(), metadata=auth(harness.key("regulator"))
            )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_health_check_needs_no_key(orders: RunningService) -> None:
    async with orders.channel() as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="jiazheng.orders.v1.OrderService")
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
