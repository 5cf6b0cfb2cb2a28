"""CloudEvents Kafka binary binding: headers, round trip, and what counts as a permanent failure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from jiazheng.orders.events.v1 import events_pb2
from libs.common.errors import PermanentEventError
from libs.common.events import (
    CONTENT_TYPE,
    EventEnvelope,
    envelope_from_headers,
    envelope_from_kafka,
    event_type_of,
    new_event,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
WHEN = datetime(2024, 5, 1, 8, 30, 15, 123456, tzinfo=UTC)


def _envelope(traceparent: str | None = None, extra: dict[str, str] | None = None) -> EventEnvelope:
    payload = events_pb2.OrderCreated(order_id="3f1d2c3e-0000-4000-8000-000000000001", district_code="110105")
    return EventEnvelope(
        id="evt-1",
        type="jiazheng.orders.events.v1.OrderCreated",
        source="/jiazheng/orders",
        subject="orders/3f1d2c3e-0000-4000-8000-000000000001",
        time=WHEN,
        data=payload.SerializeToString(),
        traceparent=traceparent,
        extra_headers=extra or {},
    )


def test_headers_carry_every_cloudevents_attribute() -> None:
    headers = _envelope().headers()

    assert headers == {
        "ce_specversion": "1.0",
        "ce_id": "evt-1",
        "ce_type": "jiazheng.orders.events.v1.OrderCreated",
        "ce_source": "/jiazheng/orders",
        "ce_subject": "orders/3f1d2c3e-0000-4000-8000-000000000001",
        "ce_time": "2024-05-01T08:30:15.123456Z",
        "content-type": CONTENT_TYPE,
    }
    assert CONTENT_TYPE == "application/protobuf"


def test_headers_include_traceparent_only_when_set() -> None:
    assert "traceparent" not in _envelope(traceparent=None).headers()
    assert "traceparent" not in _envelope(traceparent="").headers()
    assert _envelope(traceparent=TRACEPARENT).headers()["traceparent"] == TRACEPARENT


def test_headers_render_non_utc_time_with_its_offset() -> None:
    beijing = timezone(timedelta(hours=8))
    env = EventEnvelope(
        id="e", type="t", source="s", subject="x", time=datetime(2024, 5, 1, 16, 30, tzinfo=beijing), data=b""
    )

    assert env.headers()["ce_time"] == "2024-05-01T16:30:00+08:00"


def test_key_is_the_subject() -> None:
    assert _envelope().key == b"orders/3f1d2c3e-0000-4000-8000-000000000001"


def test_kafka_headers_are_utf8_bytes_of_headers() -> None:
    env = _envelope(traceparent=TRACEPARENT, extra={"x-tenant": "平台-1"})

    kafka = env.kafka_headers()

    assert all(isinstance(v, bytes) for _, v in kafka)
    assert {k: v.decode() for k, v in kafka} == env.headers()
    assert dict(kafka)["x-tenant"] == "平台-1".encode()


def test_envelope_from_kafka_round_trips_list_of_tuples() -> None:
    env = _envelope(traceparent=TRACEPARENT, extra={"x-tenant": "p-1"})

    back = envelope_from_kafka(env.kafka_headers(), env.data)

    assert back == env
    assert back.time == WHEN
    assert back.time.utcoffset() == timedelta(0)
    assert back.extra_headers == {"x-tenant": "p-1"}


def test_envelope_from_kafka_round_trips_dict_form() -> None:
    env = _envelope(traceparent=TRACEPARENT)

    back = envelope_from_kafka(dict(env.kafka_headers()), env.data)

    assert back == env


def test_envelope_from_kafka_without_traceparent_keeps_none() -> None:
    env = _envelope()

    back = envelope_from_kafka(env.kafka_headers(), env.data)

    assert back.traceparent is None
    assert back == env


def test_empty_payload_parses_as_the_default_message() -> None:
    env = _envelope()

    back = envelope_from_kafka(env.kafka_headers(), b"")

    assert back.data == b""
    assert back.parse(events_pb2.OrderCreated) == events_pb2.OrderCreated()


@pytest.mark.parametrize("missing", ["ce_id", "ce_type", "ce_source", "ce_time"])
def test_missing_required_attribute_is_permanent(missing: str) -> None:
    headers = [(k, v) for k, v in _envelope().kafka_headers() if k != missing]

    with pytest.raises(PermanentEventError):
        envelope_from_kafka(headers, b"")


@pytest.mark.parametrize("bad_time", [b"yesterday", b"", b"2024-13-45T99:00:00Z"])
def test_bad_ce_time_is_permanent(bad_time: bytes) -> None:
    headers = [(k, bad_time if k == "ce_time" else v) for k, v in _envelope().kafka_headers()]

    with pytest.raises(PermanentEventError):
        envelope_from_kafka(headers, b"")


def test_non_utf8_header_is_permanent() -> None:
    headers = [*_envelope().kafka_headers(), ("x-binary", b"\xff\xfe\x00")]

    with pytest.raises(PermanentEventError, match="UTF-8"):
        envelope_from_kafka(headers, b"")


def test_non_utf8_header_in_dict_form_is_permanent() -> None:
    headers = dict(_envelope().kafka_headers())
    headers["ce_id"] = b"\xc3\x28"

    with pytest.raises(PermanentEventError):
        envelope_from_kafka(headers, b"")


def test_null_header_value_is_dropped_not_a_crash() -> None:
    # Kafka headers may carry a null value, and aiokafka hands it over as None.
    env = _envelope()
    headers: list[tuple[str, bytes | None]] = [*env.kafka_headers(), ("x-null", None)]

    assert envelope_from_kafka(headers, env.data).id == env.id


def test_null_cloudevents_id_is_permanent() -> None:
    headers: list[tuple[str, bytes | None]] = [
        (k, None if k == "ce_id" else v) for k, v in _envelope().kafka_headers()
    ]

    with pytest.raises(PermanentEventError):
        envelope_from_kafka(headers, b"")


def test_envelope_from_headers_drops_cloudevents_and_transport_headers_from_extras() -> None:
    env = _envelope(traceparent=TRACEPARENT, extra={"x-a": "1"})

    back = envelope_from_headers(env.headers(), env.data)

    assert back.extra_headers == {"x-a": "1"}
    assert back.traceparent == TRACEPARENT


def test_missing_subject_defaults_to_empty() -> None:
    headers = {k: v for k, v in _envelope().headers().items() if k != "ce_subject"}

    assert envelope_from_headers(headers, b"").subject == ""


def test_parse_returns_the_payload() -> None:
    env = _envelope()

    msg = env.parse(events_pb2.OrderCreated)

    assert msg.order_id == "3f1d2c3e-0000-4000-8000-000000000001"
    assert msg.district_code == "110105"


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff", b"\x0a\x05ab", b"not a protobuf \x00\xff"])
def test_parse_of_garbage_is_permanent(garbage: bytes) -> None:
    env = EventEnvelope(id="evt-9", type="t.T", source="s", subject="x", time=WHEN, data=garbage)

    with pytest.raises(PermanentEventError, match="evt-9"):
        env.parse(events_pb2.OrderCreated)


def test_event_type_is_the_message_full_name() -> None:
    assert event_type_of(events_pb2.OrderCreated()) == "jiazheng.orders.events.v1.OrderCreated"


def test_new_event_stamps_id_type_time_and_payload() -> None:
    msg = events_pb2.OrderCreated(order_id="o-1", duration_hours=3)

    first = new_event(msg, source="/jiazheng/orders", subject="orders/o-1")
    second = new_event(msg, source="/jiazheng/orders", subject="orders/o-1")

    assert first.type == "jiazheng.orders.events.v1.OrderCreated"
    assert first.source == "/jiazheng/orders"
    assert first.subject == "orders/o-1"
    assert uuid.UUID(first.id).version == 4
    assert first.id != second.id
    assert first.time.utcoffset() == timedelta(0)
    assert first.parse(events_pb2.OrderCreated) == msg


def test_new_event_has_no_traceparent_outside_a_trace() -> None:
    env = new_event(events_pb2.OrderCreated(), source="s", subject="x")

    assert env.traceparent is None


def test_new_event_carries_the_current_trace_context() -> None:
    span_context = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )

    with trace.use_span(NonRecordingSpan(span_context)):
        env = new_event(events_pb2.OrderCreated(), source="s", subject="x")

    assert env.traceparent == TRACEPARENT
    assert env.headers()["traceparent"] == TRACEPARENT
