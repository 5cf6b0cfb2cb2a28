"""Traces leave the process over OTLP when an endpoint is set; reflection (v1 and v1alpha) resolves
methods with their comments, for our own client and for grpcurl."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from deploy.local.stack import free_port
from tests.integration.clients import create_order, new_traceparent, order_request
from tests.integration.harness import RunningService, ServiceHarness, eventually


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """A minimal OTLP trace receiver: remembers (service, trace id, span name) of what it gets."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans += [
                    (attributes["service.name"], s.trace_id.hex(), s.name) for s in scope_spans.spans
                ]
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, int]]:
    server = grpc.aio.server()
    receiver = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    yield receiver, port
    await server.stop(None)


async def test_spans_are_exported_over_otlp_when_an_endpoint_is_set(
    harness: ServiceHarness,
    scratch_database: str,
    collector: tuple[Collector, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver, port = collector
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    orders = await harness.start(
        "orders", database=scratch_database, otlp_endpoint=f"http://127.0.0.1:{port}", trace_sql="true"
    )
    trace_id, traceparent = new_traceparent()
    await create_order(orders, harness.key("demo-platform"), order_request(), traceparent)

    async def traced() -> list[str]:
        names = [name for service, trace, name in receiver.spans if trace == trace_id and service == "orders"]
        return names if "jiazheng.orders.v1.OrderService/CreateOrder" in names and len(names) > 1 else []

    names = await eventually(traced, within=30)
    assert any(name != "jiazheng.orders.v1.OrderService/CreateOrder" for name in names)  # asyncpg's spans


REFLECTION = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
ORDER_SERVICE = "jiazheng.orders.v1.OrderService"
CREATE_ORDER = f"{ORDER_SERVICE}.CreateOrder"
CREATE_ORDER_COMMENT = "Creates an order for the calling platform and publishes OrderCreated"
GRPCURL = Path(__file__).resolve().parents[2] / ".build" / "go" / "bin" / "grpcurl"


async def reflect(service: RunningService, protocol: str, requests: list[Any]) -> list[Any]:
    """Replies of the ServerReflectionInfo stream under ``protocol``, without an API key."""
    async with service.channel() as channel:
        call = channel.stream_stream(
            f"/{protocol}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        return [reply async for reply in call(iter(requests))]


def method_comment(file: descriptor_pb2.FileDescriptorProto, service: str, method: str) -> str:
    """The leading comment of ``service.method`` in the file's source info."""
    service_index = [s.name for s in file.service].index(service)
    method_index = [m.name for m in file.service[service_index].method].index(method)
    path = [6, service_index, 2, method_index]  # FileDescriptorProto.service, ServiceDescriptorProto.method
    return "".join(loc.leading_comments for loc in file.source_code_info.location if list(loc.path) == path)


@pytest.mark.parametrize("protocol", REFLECTION)
async def test_reflection_resolves_a_method_with_its_comment_without_a_key(
    orders: RunningService, protocol: str
) -> None:
    listed, method = await reflect(
        orders,
        protocol,
        [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=CREATE_ORDER),
        ],
    )

    names = {s.name for s in listed.list_services_response.service}
    assert {ORDER_SERVICE, "grpc.health.v1.Health", *REFLECTION} <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(data)
        for data in method.file_descriptor_response.file_descriptor_proto
    ]
    assert files[0].name == "jiazheng/orders/v1/orders.proto"
    assert CREATE_ORDER_COMMENT in " ".join(method_comment(files[0], "OrderService", "CreateOrder").split())


async def grpcurl(service: RunningService, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(GRPCURL),
        "-plaintext",
        f"127.0.0.1:{service.port}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_grpcurl_lists_the_services_and_describes_a_method_with_its_comment(
    orders: RunningService,
) -> None:
    assert GRPCURL.exists(), "grpcurl is not installed: run `make grpcurl` (`make integration` does)"
    listed = await grpcurl(orders, "list")
    described = await grpcurl(orders, "describe", CREATE_ORDER)

    assert {ORDER_SERVICE, "grpc.health.v1.Health", *REFLECTION} <= set(listed.split())
    assert f"{CREATE_ORDER} is a method" in described
    assert "rpc CreateOrder ( .jiazheng.orders.v1.CreateOrderRequest )" in described
    assert CREATE_ORDER_COMMENT in " ".join(
        line.removeprefix("//").strip() for line in described.splitlines()
    )
