"""OpenTelemetry tracing (W3C trace context through gRPC, the outbox and Kafka) and Prometheus metrics."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:  # settings import telemetry's users (the clock), so only for the type
    from libs.common.settings import ServiceSettings

_configured = False


def setup_telemetry(settings: ServiceSettings) -> None:
    """Install the tracer provider once per process: one span per unit of work (a gRPC call, a
    relay batch, a consumed batch), SQL statement spans only when ``trace_sql`` asks for them.

    Spans are exported when an OTLP endpoint is set, sampled by the standard variables
    (``OTEL_TRACES_SAMPLER``, e.g. ``parentbased_traceidratio``, and ``OTEL_TRACES_SAMPLER_ARG``).
    Without an endpoint nothing would receive them, so none is recorded. Either way an
    unsampled span carries its trace id to logs, outbox headers and ledger entries.
    """
    global _configured
    if _configured:
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=None if settings.otlp_endpoint else ALWAYS_OFF,
    )
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    trace.set_tracer_provider(provider)
    if settings.trace_sql:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    _configured = True


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (what the propagator would inject), if any."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return None
    return f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.trace_flags:02x}"


def context_from(traceparent: str | None) -> context.Context:
    if not traceparent:
        return context.Context()
    return propagate.extract({"traceparent": traceparent})


_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def trace_id_of(traceparent: str | None) -> str:
    """The 32-hex trace id inside a W3C traceparent, or '' when absent or malformed."""
    match = _TRACEPARENT.fullmatch(traceparent or "")
    return match.group(1) if match else ""


def span_context_of(traceparent: str | None) -> trace.SpanContext | None:
    """The remote span a W3C traceparent names (cheaper than a propagator for many at once)."""
    match = _TRACEPARENT.fullmatch(traceparent or "")
    if not match:
        return None
    trace_id, span_id, flags = match.groups()
    found = trace.SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=trace.TraceFlags(int(flags, 16))
    )
    return found if found.is_valid else None


def span_in_trace_of(
    traceparent: str | None, name: str, **attributes: str | int
) -> AbstractContextManager[object]:
    """A span of ``traceparent``'s trace, linked to the current span, so that what is published and
    logged within it carries on the call that caused it; none (the current span stays) without a
    valid traceparent."""
    if span_context_of(traceparent) is None:
        return contextlib.nullcontext()
    current = trace.get_current_span().get_span_context()
    return tracer.start_as_current_span(
        name,
        context=context_from(traceparent),
        links=[trace.Link(current)] if current.is_valid else [],
        attributes=attributes,
    )


def extract_from_metadata(metadata: Mapping[str, str]) -> context.Context:
    """The caller's trace context; an empty one (a new trace) when it sent none."""
    if "traceparent" not in metadata:
        return context.Context()
    return propagate.extract(metadata)


tracer = trace.get_tracer("jiazheng")

GRPC_REQUESTS = Counter("jz_grpc_requests_total", "gRPC requests handled", ["service", "method", "code"])
GRPC_LATENCY = Histogram("jz_grpc_request_seconds", "gRPC request latency", ["service", "method"])
OUTBOX_PUBLISHED = Counter("jz_outbox_published_total", "Outbox events published to Kafka", ["service"])
OUTBOX_BACKLOG = Gauge("jz_outbox_backlog", "Outbox events not yet published", ["service"])
EVENTS_CONSUMED = Counter(
    "jz_events_consumed_total", "Events handled by idempotent consumers", ["consumer", "outcome"]
)
DLQ_EVENTS = Counter("jz_dlq_events_total", "Events sent to a dead-letter topic", ["consumer"])
CONSUMER_LAG = Gauge(
    "jz_consumer_lag",
    "Records behind the partition's end after the last batch",
    ["consumer", "topic", "partition"],
)
