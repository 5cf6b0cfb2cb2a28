"""One span per unit of work, exported over OTLP when an endpoint is set, sampled by the standard
variables, with the trace id in logs and ledger either way; reflection (v1 and v1alpha) resolves
methods with their comments, for our own client and for grpcurl."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from deploy.local.stack import free_port
from deploy.local.stack import scratch_database as new_scratch_database
from services.credit.app import SOURCES as CREDIT_SOURCES
from tests.integration.clients import (
    create_order,
    ledger,
    log_lines,
    new_traceparent,
    new_worker_id,
    order_request,
)
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import start_group_at_end


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    name: str
    linked_trace_ids: tuple[str, ...]


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """A minimal OTLP trace receiver: remembers every span it gets."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans += [
                    ReceivedSpan(
                        attributes["service.name"],
                        s.trace_id.hex(),
                        s.name,
                        tuple(link.trace_id.hex() for link in s.links),
                    )
                    for s in scope_spans.spans
                ]
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans_in(self, trace_id: str, service: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id and s.service == service]

    def names_in(self, trace_id: str, service: str) -> list[str]:
        return [s.name for s in self.spans_in(trace_id, service)]

    def reaching(self, trace_id: str, service: str) -> list[ReceivedSpan]:
        """``service``'s spans in the trace or linked to it."""
        return [
            s
            for s in self.spans
            if s.service == service and (s.trace_id == trace_id or trace_id in s.linked_trace_ids)
        ]


@pytest.fixture
async def collector(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Collector, str]]:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # the services export every 100 ms
    server = grpc.aio.server()
    receiver = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    yield receiver, f"http://127.0.0.1:{port}"
    await server.stop(None)


@contextlib.asynccontextmanager
async def orders_and_credit(
    harness: ServiceHarness, otlp_endpoint: str
) -> AsyncIterator[tuple[RunningService, RunningService]]:
    """An orders and a credit process of their own (own databases, own consumer group)."""
    async with (
        new_scratch_database(harness.endpoints, "jz_scratch") as orders_db,
        new_scratch_database(harness.endpoints, "jz_scratch") as credit_db,
    ):
        orders = await harness.start(
            "orders", database=orders_db, log_level="DEBUG", otlp_endpoint=otlp_endpoint
        )
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        for topic in CREDIT_SOURCES:  # not the history of what earlier tests left in credit's topics
            await start_group_at_end(harness.endpoints.kafka_bootstrap, f"{prefix}-credit", topic)
        credit = await harness.start(
            "credit",
            database=credit_db,
            log_level="DEBUG",
            consumer_group_prefix=prefix,
            otlp_endpoint=otlp_endpoint,
        )
        try:
            yield orders, credit
        finally:
            credit.kill(signal.SIGTERM)
            orders.kill(signal.SIGTERM)


CREATE_ORDER_SPAN = "jiazheng.orders.v1.OrderService/CreateOrder"


async def test_one_span_per_unit_of_work_from_the_call_to_the_ledger(
    harness: ServiceHarness, collector: tuple[Collector, str]
) -> None:
    receiver, endpoint = collector
    worker = new_worker_id()
    trace_id, traceparent = new_traceparent()
    async with orders_and_credit(harness, endpoint) as (orders, credit):
        await create_order(orders, harness.key("demo-platform"), order_request(worker), traceparent)
        [entry] = await eventually(lambda: ledger(credit, harness.key("operator"), worker))

        async def consumed() -> list[ReceivedSpan]:
            # In a poll of several traces, the poll's span only links to this one (any other test
            # may publish meanwhile); the span of this trace's run carries it on.
            return receiver.spans_in(trace_id, "credit")

        async def served() -> bool:
            return CREATE_ORDER_SPAN in receiver.names_in(trace_id, "orders")

        [consumer_span] = await eventually(consumed, within=30)
        await eventually(served, within=30)

    # The server span ends after the statements inside it, so theirs would have been exported by now.
    assert receiver.names_in(trace_id, "orders") == [CREATE_ORDER_SPAN]
    # A poll of this event alone continues its trace; in a larger poll, its run does.
    assert consumer_span.name in ("consume credit", "apply jiazheng.orders.events.v1.OrderCreated")
    assert entry.trace_id == trace_id
    assert any(s.name == "outbox relay batch" for s in receiver.spans if s.service == "orders")


async def test_statement_spans_are_a_setting(
    harness: ServiceHarness, scratch_database: str, collector: tuple[Collector, str]
) -> None:
    receiver, endpoint = collector
    orders = await harness.start(
        "orders", database=scratch_database, otlp_endpoint=endpoint, trace_sql="true"
    )
    trace_id, traceparent = new_traceparent()
    await create_order(orders, harness.key("demo-platform"), order_request(), traceparent)

    async def traced() -> list[str]:
        names = receiver.names_in(trace_id, "orders")
        return names if CREATE_ORDER_SPAN in names else []

    names = await eventually(traced, within=30)
    assert len([n for n in names if n != CREATE_ORDER_SPAN]) >= 3  # the inserts and the commit


async def test_an_unsampled_trace_still_reaches_the_logs_and_the_ledger(
    harness: ServiceHarness, collector: tuple[Collector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver, endpoint = collector
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    worker = new_worker_id()
    trace_id, traceparent = new_traceparent()
    unsampled = traceparent[:-2] + "00"  # the caller did not sample it either
    async with orders_and_credit(harness, endpoint) as (orders, credit):
        order = await create_order(orders, harness.key("demo-platform"), order_request(worker), unsampled)
        [entry] = await eventually(lambda: ledger(credit, harness.key("operator"), worker))

        async def logged() -> list[dict[str, str]]:
            return log_lines(credit, "event_id", entry.event_id)

        await eventually(logged)

    assert entry.trace_id == trace_id
    assert {"msg": "order created", "trace_id": trace_id} in log_lines(orders, "order_id", order.name[7:])
    assert {"msg": "ledger entry recorded", "trace_id": trace_id} in await logged()
    assert receiver.reaching(trace_id, "orders") == receiver.reaching(trace_id, "credit") == []


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
