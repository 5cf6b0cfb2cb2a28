"""Traces leave the process over OTLP when an endpoint is set; reflection lists the APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
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
        "orders", database=scratch_database, otlp_endpoint=f"http://127.0.0.1:{port}"
    )
    trace_id, traceparent = new_traceparent()
    await create_order(orders, harness.key("demo-platform"), order_request(), traceparent)

    async def traced() -> list[str]:
        names = [name for service, trace, name in receiver.spans if trace == trace_id and service == "orders"]
        return names if "jiazheng.orders.v1.OrderService/CreateOrder" in names and len(names) > 1 else []

    names = await eventually(traced, within=30)
    assert any(name != "jiazheng.orders.v1.OrderService/CreateOrder" for name in names)  # asyncpg's spans


async def test_reflection_lists_the_services_without_a_key(orders: RunningService) -> None:
    async with orders.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        replies = [reply async for reply in call]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"jiazheng.orders.v1.OrderService", "grpc.health.v1.Health"} <= names
