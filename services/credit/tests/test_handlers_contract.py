"""Credit consumes what orders publishes: the event type and payload agree on both sides."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.credit.handlers import EFFECTS
from services.orders.domain import Order, OrderDraft, OrderState, ServiceType
from services.orders.events import order_created


def test_credit_handles_the_event_type_orders_publishes() -> None:
    order = Order(
        order_id=uuid.uuid4(),
        platform_id="p",
        draft=OrderDraft(
            service_type=ServiceType.CLEANING,
            district_code="110105",
            consumer_ref="c",
            worker_id="w-1",
            scheduled_start=datetime(2024, 6, 3, tzinfo=UTC),
            duration_hours=2,
        ),
        state=OrderState.CREATED,
        created_at=datetime(2024, 6, 1, tzinfo=UTC),
    )

    env = order_created(order)

    assert env.type in EFFECTS
