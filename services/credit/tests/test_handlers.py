"""credit's effects of consumed events, driven as in production: Kafka records through the
IdempotentConsumer into the fake unit of work.

The events are built by the producer's own code (``services.orders.events``), so these are
consumer contract tests: a change to what orders publishes that credit cannot read fails here.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from libs.common.events import EventEnvelope
from libs.common.inbox import IdempotentConsumer, KafkaRecord
from libs.common.testing import FakeDeadLetters
from services.credit.domain import RULE_VERSION
from services.credit.handlers import EFFECTS
from services.credit.tests.fakes import FakeCreditUnitOfWork
from services.orders import events as order_events
from services.orders.domain import Order, OrderDraft, OrderState, ServiceType

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CREATED = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)


def _order(worker_id: str | None) -> Order:
    draft = OrderDraft(
        service_type=ServiceType.CLEANING,
        district_code="110105",
        consumer_ref="c-1",
        worker_id=worker_id,
        scheduled_start=datetime(2024, 6, 3, tzinfo=UTC),
        duration_hours=2,
    )
    return Order(
        uuid.uuid4(), "p-1", draft, OrderState.CREATED, CREATED, price_fen=9_000, catalogue_version=1
    )


def _published(order: Order) -> EventEnvelope:
    """orders' real OrderCreated envelope, as its relay puts it on Kafka with the caller's trace."""
    event = order_events.order_created(order)
    return dataclasses.replace(event, traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01")


def _record(event: EventEnvelope) -> KafkaRecord:
    return KafkaRecord(order_events.TOPIC, event.key, event.data, event.kafka_headers())


@pytest.fixture
def uow() -> FakeCreditUnitOfWork:
    return FakeCreditUnitOfWork()


def _consumer(uow: FakeCreditUnitOfWork) -> IdempotentConsumer[FakeCreditUnitOfWork]:
    async def healthy() -> bool:
        return True

    return IdempotentConsumer("credit", lambda: uow, EFFECTS, FakeDeadLetters(), healthy)


async def test_a_booking_of_a_named_worker_becomes_a_ledger_entry_with_the_callers_trace(
    uow: FakeCreditUnitOfWork,
) -> None:
    order = _order("w-42")
    event = _published(order)

    assert await _consumer(uow).handle_batch([_record(event)]) == ["applied"]

    [entry] = uow.ledger.entries
    assert entry.worker_id == "w-42"
    assert entry.event_id == event.id
    assert entry.event_type == "jiazheng.orders.events.v1.OrderCreated"
    assert entry.score_delta == 0
    assert entry.reason == f"booked for order {order.order_id}"
    assert entry.rule_version == RULE_VERSION
    assert entry.trace_id == TRACE_ID
    assert entry.occurred_at == CREATED
    assert uow.commits == 1


async def test_a_booking_without_a_named_worker_moves_no_record(uow: FakeCreditUnitOfWork) -> None:
    assert await _consumer(uow).handle_batch([_record(_published(_order(None)))]) == ["applied"]

    assert uow.ledger.entries == []


async def test_a_poll_of_bookings_is_one_unit_of_work_and_redelivery_adds_nothing(
    uow: FakeCreditUnitOfWork,
) -> None:
    records = [_record(_published(_order(f"w-{i}"))) for i in range(5)]
    consumer = _consumer(uow)

    assert await consumer.handle_batch(records) == ["applied"] * 5
    assert await consumer.handle_batch(records[1:3]) == ["duplicate"] * 2

    assert [e.worker_id for e in uow.ledger.entries] == [f"w-{i}" for i in range(5)]
    assert uow.commits == 2
