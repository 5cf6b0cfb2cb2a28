"""The OrderCreated event orders publishes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from jiazheng.orders.events.v1 import events_pb2
from jiazheng.type.v1 import service_type_pb2
from libs.common.events import envelope_from_kafka
from services.orders.domain import Order, OrderDraft, OrderState, ServiceType
from services.orders.events import SOURCE, TOPIC, order_created

ORDER_ID = uuid.UUID("0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c")
START = datetime(2024, 6, 3, 8, 30, 0, 123456, tzinfo=UTC)
CREATED = datetime(2024, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)


def _order(worker_id: str | None = "w-42") -> Order:
    draft = OrderDraft(
        service_type=ServiceType.INFANT_CARE,
        district_code="110106",
        consumer_ref="c-secret-ref",
        worker_id=worker_id,
        scheduled_start=START,
        duration_hours=8,
    )
    return Order(
        order_id=ORDER_ID,
        platform_id="p-meituan",
        draft=draft,
        state=OrderState.CREATED,
        created_at=CREATED,
        price_fen=24_000,
        catalogue_version=1,
    )


def test_envelope_attributes() -> None:
    env = order_created(_order())

    assert env.type == "jiazheng.orders.events.v1.OrderCreated"
    assert env.subject == f"orders/{ORDER_ID}"
    assert env.source == "/jiazheng/orders"
    assert env.source == SOURCE
    assert env.key == f"orders/{ORDER_ID}".encode()
    assert uuid.UUID(env.id)


def test_topic_name() -> None:
    assert TOPIC == "jiazheng.orders.events.v1"


def test_payload_parses_back_to_the_order() -> None:
    env = order_created(_order())

    payload = env.parse(events_pb2.OrderCreated)

    assert payload.order_id == str(ORDER_ID)
    assert payload.platform_id == "p-meituan"
    assert payload.service_type == service_type_pb2.SERVICE_TYPE_INFANT_CARE
    assert payload.district_code == "110106"
    assert payload.worker_id == "w-42"
    assert payload.scheduled_start_time.ToDatetime(tzinfo=UTC) == START
    assert payload.duration_hours == 8
    assert payload.create_time.ToDatetime(tzinfo=UTC) == CREATED


def test_no_worker_is_an_empty_worker_id() -> None:
    assert order_created(_order(worker_id=None)).parse(events_pb2.OrderCreated).worker_id == ""


def test_consumer_ref_is_not_published() -> None:
    env = order_created(_order())

    assert "consumer_ref" not in events_pb2.OrderCreated.DESCRIPTOR.fields_by_name
    assert b"c-secret-ref" not in env.data
    assert all("c-secret-ref" not in v for v in env.headers().values())


@pytest.mark.parametrize("headers_as_dict", [False, True])
def test_event_survives_the_kafka_binding(headers_as_dict: bool) -> None:
    env = order_created(_order())
    headers = env.kafka_headers()

    back = envelope_from_kafka(dict(headers) if headers_as_dict else headers, env.data)

    assert back == env
    assert back.parse(events_pb2.OrderCreated).order_id == str(ORDER_ID)


def test_each_call_is_a_distinct_event() -> None:
    order = _order()

    assert order_created(order).id != order_created(order).id
