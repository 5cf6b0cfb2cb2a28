"""Orders use cases: each runs in one unit of work, state and events committed together."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from libs.common.errors import InvalidArgument
from libs.common.uow import UnitOfWork
from services.orders import domain, events

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredOrder:
    """An order as stored, with the fingerprint of the request that created it."""

    order: domain.Order
    request_fingerprint: str


class OrderRepository(Protocol):
    async def add_once(self, order: domain.Order, request_id: uuid.UUID) -> StoredOrder | None:
        """Store ``order`` unless its platform already used ``request_id``; then what that created."""
        ...

    async def find_by_request(self, platform_id: str, request_id: uuid.UUID) -> StoredOrder | None: ...


class OrdersUnitOfWork(UnitOfWork, Protocol):
    @property
    def orders(self) -> OrderRepository: ...


async def create_order(
    uow: OrdersUnitOfWork,
    platform_id: str,
    request_id: uuid.UUID,
    draft: domain.OrderDraft,
    window: domain.BookingWindow,
) -> domain.Order:
    async with uow:
        try:
            order = domain.create_order(draft, platform_id, uow.clock.now(), window)
        except InvalidArgument:
            # A retry gets the first answer even when the booking rules would now refuse the draft.
            earlier = await uow.orders.find_by_request(platform_id, request_id)
            if earlier is None:
                raise
            return _same_request(earlier, draft)
        earlier = await uow.orders.add_once(order, request_id)
        if earlier is not None:
            return _same_request(earlier, draft)
        await uow.add_event(events.TOPIC, events.order_created(order))
        await uow.commit()
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "order created", extra={"fields": {"order_id": str(order.order_id), "platform_id": platform_id}}
        )
    return order


def _same_request(earlier: StoredOrder, draft: domain.OrderDraft) -> domain.Order:
    if earlier.request_fingerprint != draft.fingerprint():
        raise InvalidArgument("request_id", "already used for a different order")
    return earlier.order
