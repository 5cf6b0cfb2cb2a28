"""Orders use cases through the fake unit of work: what is stored, what is published, what is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from jiazheng.orders.events.v1 import events_pb2
from libs.common.errors import InvalidArgument, NotFound
from libs.common.testing import FixedClock
from services.orders import queries, service_layer
from services.orders.domain import BookingWindow, OrderDraft, OrderState, ServiceType
from services.orders.events import TOPIC
from services.orders.tests.fakes import FakeOrdersUnitOfWork

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
WINDOW = BookingWindow()


def _draft(start: datetime = NOW + timedelta(hours=3), worker_id: str = "w-1") -> OrderDraft:
    return OrderDraft(
        service_type=ServiceType.ELDERLY_CARE,
        district_code="110105",
        consumer_ref="c-1",
        worker_id=worker_id,
        scheduled_start=start,
        duration_hours=4,
    )


@pytest.fixture
def uow() -> FakeOrdersUnitOfWork:
    return FakeOrdersUnitOfWork(FixedClock(NOW))


async def test_create_stores_the_order_and_publishes_order_created_in_one_commit(
    uow: FakeOrdersUnitOfWork,
) -> None:
    order = await service_layer.create_order(uow, "p-1", uuid.uuid4(), _draft(), WINDOW)

    assert order.state is OrderState.CREATED
    assert order.created_at == NOW
    assert uow.commits == 1
    [published] = uow.published
    assert published.topic == TOPIC
    assert published.event.subject == f"orders/{order.order_id}"
    assert published.event.parse(events_pb2.OrderCreated).order_id == str(order.order_id)
    assert await queries.get_order(uow.orders, "p-1", order.order_id) == order


async def test_a_retry_returns_the_first_order_and_publishes_nothing_more(uow: FakeOrdersUnitOfWork) -> None:
    request_id = uuid.uuid4()
    first = await service_layer.create_order(uow, "p-1", request_id, _draft(), WINDOW)

    again = await service_layer.create_order(uow, "p-1", request_id, _draft(), WINDOW)

    assert again == first
    assert len(uow.published) == 1
    assert uow.commits == 1


async def test_the_same_request_id_for_a_different_order_is_refused(uow: FakeOrdersUnitOfWork) -> None:
    request_id = uuid.uuid4()
    await service_layer.create_order(uow, "p-1", request_id, _draft(), WINDOW)

    with pytest.raises(InvalidArgument) as err:
        await service_layer.create_order(uow, "p-1", request_id, _draft(worker_id="w-2"), WINDOW)

    assert err.value.field == "request_id"
    assert len(uow.published) == 1


async def test_request_ids_are_per_platform(uow: FakeOrdersUnitOfWork) -> None:
    request_id = uuid.uuid4()
    mine = await service_layer.create_order(uow, "p-1", request_id, _draft(), WINDOW)

    theirs = await service_layer.create_order(uow, "p-2", request_id, _draft(worker_id="w-2"), WINDOW)

    assert theirs.order_id != mine.order_id
    assert len(uow.published) == 2


async def test_a_retry_after_the_booking_window_closed_still_gets_the_first_answer(
    uow: FakeOrdersUnitOfWork,
) -> None:
    request_id = uuid.uuid4()
    first = await service_layer.create_order(uow, "p-1", request_id, _draft(), WINDOW)
    uow.clock.advance(timedelta(hours=5))  # the start is now more than an hour in the past

    again = await service_layer.create_order(uow, "p-1", request_id, _draft(), WINDOW)

    assert again == first
    assert len(uow.published) == 1
    with pytest.raises(InvalidArgument) as err:  # a new request is held to the rule
        await service_layer.create_order(uow, "p-1", uuid.uuid4(), _draft(), WINDOW)
    assert err.value.field == "order.scheduled_start_time"


async def test_a_refused_draft_stores_and_publishes_nothing(uow: FakeOrdersUnitOfWork) -> None:
    request_id = uuid.uuid4()
    with pytest.raises(InvalidArgument):
        await service_layer.create_order(
            uow, "p-1", request_id, _draft(start=NOW - timedelta(days=1)), WINDOW
        )

    assert uow.orders.by_request == {}
    assert uow.published == []
    assert uow.commits == 0


async def test_the_booking_window_is_the_one_given(uow: FakeOrdersUnitOfWork) -> None:
    narrow = BookingWindow(start_tolerance=timedelta(0), max_advance=timedelta(days=7))

    with pytest.raises(InvalidArgument):
        await service_layer.create_order(
            uow, "p-1", uuid.uuid4(), _draft(start=NOW + timedelta(days=8)), narrow
        )
    order = await service_layer.create_order(
        uow, "p-1", uuid.uuid4(), _draft(start=NOW + timedelta(days=7)), narrow
    )

    assert order.draft.scheduled_start == NOW + timedelta(days=7)


async def test_get_order_hides_another_platforms_order(uow: FakeOrdersUnitOfWork) -> None:
    order = await service_layer.create_order(uow, "p-1", uuid.uuid4(), _draft(), WINDOW)

    with pytest.raises(NotFound):
        await queries.get_order(uow.orders, "p-2", order.order_id)
    with pytest.raises(NotFound):
        await queries.get_order(uow.orders, "p-1", uuid.uuid4())
