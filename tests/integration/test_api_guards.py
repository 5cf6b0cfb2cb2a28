"""Bad input and bad credentials are refused with the right status, and nothing is stored."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.stack import Endpoints, free_port
from jiazheng.orders.v1 import orders_pb2_grpc
from tests.integration.clients import auth, create_order, db_value, field_violations, order_request
from tests.integration.harness import RunningService, ServiceHarness


async def test_malformed_request_is_invalid_argument_naming_the_field(
    harness: ServiceHarness, orders: RunningService, endpoints: Endpoints
) -> None:
    request = order_request(district_code="999999", consumer_ref="张三 13800000000")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_order(orders, harness.key("demo-platform"), request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "order.district_code" in (err.value.details() or "")
    assert sorted(field_violations(err.value)) == ["order.consumer_ref", "order.district_code"]
    assert await stored_orders(endpoints, request.request_id) == 0


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


@pytest.mark.parametrize(
    "start",
    [
        Timestamp(seconds=253_402_300_800),  # beyond 9999-12-31
        Timestamp(seconds=1_900_000_000, nanos=-1),
    ],
)
async def test_an_unreadable_timestamp_is_invalid_argument_naming_the_field(
    harness: ServiceHarness, orders: RunningService, start: Timestamp
) -> None:
    request = order_request()
    request.order.scheduled_start_time.CopyFrom(start)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_order(orders, harness.key("demo-platform"), request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["order.scheduled_start_time"]


@pytest.mark.parametrize(
    ("consumer_ref", "reason"),
    [
        ("13800138000", "mobile phone"),
        ("8613912345678", "mobile phone"),
        ("11010519491231002X", "resident ID"),
    ],
)
async def test_a_consumer_ref_shaped_like_personal_data_is_refused_with_the_reason(
    harness: ServiceHarness, orders: RunningService, endpoints: Endpoints, consumer_ref: str, reason: str
) -> None:
    request = order_request(consumer_ref=consumer_ref)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_order(orders, harness.key("demo-platform"), request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["order.consumer_ref"]
    assert reason in (err.value.details() or "")
    assert await stored_orders(endpoints, request.request_id) == 0


async def test_an_undecodable_body_is_invalid_argument_with_a_plain_message_and_counted(
    harness: ServiceHarness, endpoints: Endpoints, scratch_database: str
) -> None:
    svc = await harness.start("orders", database=scratch_database, metrics_port=free_port())
    async with svc.channel() as channel:
        raw = channel.unary_unary(
            "/jiazheng.orders.v1.OrderService/CreateOrder",
            request_serializer=lambda body: body,
            response_deserializer=lambda body: body,
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw(b"\xff\xff\xff\xff", metadata=auth(harness.key("demo-platform")))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "(request): the request body is not a valid protobuf message"
    method = "/jiazheng.orders.v1.OrderService/CreateOrder"
    counted = f'jz_grpc_requests_total{{code="INVALID_ARGUMENT",method="{method}",service="orders"}} 1.0'
    assert counted in await svc.metrics_showing("INVALID_ARGUMENT")


async def test_two_authorization_headers_are_unauthenticated_even_when_both_are_valid(
    harness: ServiceHarness, orders: RunningService, endpoints: Endpoints
) -> None:
    request = order_request()
    twice = [*auth(harness.key("demo-platform")), *auth(harness.key("other-platform"))]
    async with orders.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await orders_pb2_grpc.OrderServiceStub(channel).CreateOrder(request, metadata=twice)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "more than one" in (err.value.details() or "")
    assert await stored_orders(endpoints, request.request_id) == 0


async def test_the_metrics_endpoint_listens_on_loopback_only(
    harness: ServiceHarness, scratch_database: str
) -> None:
    port = free_port()
    svc = await harness.start("orders", database=scratch_database, metrics_port=port)
    await svc.metrics_showing("jz_grpc")

    assert listening_addresses(svc.proc.pid, port) == {"127.0.0.1"}


def listening_addresses(pid: int, port: int) -> set[str]:
    """The local IPv4 addresses process ``pid`` listens on at ``port`` (from /proc/<pid>/net/tcp)."""
    found = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


async def stored_orders(endpoints: Endpoints, request_id: str) -> int:
    sql = "SELECT count(*) FROM orders WHERE request_id = $1::uuid"
    count: int = await db_value(endpoints.dsn("jz_orders"), sql, request_id)
    return count
