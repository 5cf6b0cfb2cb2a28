"""Orders use cases: each one unit of work, state and events committed together."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from libs.common.db import UnitOfWork
from libs.common.errors import InvalidArgument, NotFound
from libs.common.outbox import add_event
from services.orders import domain, events
from services.orders.store import OrderRepository

UowFactory = Callable[[], UnitOfWork]


async def create_order(
    uow_factory: UowFactory, platform_id: str, request_id: uuid.UUID, draft: domain.OrderDraft
) -> domain.Order:
    order = domain.create_order(draft, platform_id, datetime.now(UTC))
    async with uow_factory() as uow:
        earlier = await OrderRepository(uow.conn).add_once(order, request_id)
        if earlier is not None:
            if earlier.request_fingerprint != draft.fingerprint():
                raise InvalidArgument("request_id", "already used for a different order")
            return earlier.order
        await add_event(uow.conn, events.TOPIC, events.order_created(order))
        await uow.commit()
    return order


async def get_order(uow_factory: UowFactory, platform_id: str, order_id: uuid.UUID) -> domain.Order:
    async with uow_factory() as uow:
        order = await OrderRepository(uow.conn).get(platform_id, order_id)
    if order is None:
        raise NotFound(f"orders/{order_id}")
    return order
