"""Orders use cases: each one unit of work, state and events committed together."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from libs.common.db import UnitOfWork
from libs.common.errors import InvalidArgument, NotFound
from libs.common.outbox import add_event
from services.orders import domain, events
from services.orders.store import OrderRepository, StoredOrder

log = logging.getLogger(__name__)
UowFactory = Callable[[], UnitOfWork]


async def create_order(
    uow_factory: UowFactory, platform_id: str, request_id: uuid.UUID, draft: domain.OrderDraft
) -> domain.Order:
    async with uow_factory() as uow:
        repo = OrderRepository(uow.conn)
        try:
            order = domain.create_order(draft, platform_id, datetime.now(UTC))
        except InvalidArgument:
            # A retry gets the first answer even when the booking rules would now refuse the draft.
            earlier = await repo.find_by_request(platform_id, request_id)
            if earlier is None:
                raise
            return _same_request(earlier, draft)
        earlier = await repo.add_once(order, request_id)
        if earlier is not None:
            return _same_request(earlier, draft)
        await add_event(uow.conn, events.TOPIC, events.order_created(order))
        await uow.commit()
    log.info("order created", extra={"fields": {"order_id": str(order.order_id), "platform_id": platform_id}})
    return order


def _same_request(earlier: StoredOrder, draft: domain.OrderDraft) -> domain.Order:
    if earlier.request_fingerprint != draft.fingerprint():
        raise InvalidArgument("request_id", "already used for a different order")
    return earlier.order


async def get_order(uow_factory: UowFactory, platform_id: str, order_id: uuid.UUID) -> domain.Order:
    async with uow_factory() as uow:
        order = await OrderRepository(uow.conn).get(platform_id, order_id)
    if order is None:
        raise NotFound(f"orders/{order_id}")
    return order
