"""Use cases: creating orders, and the service catalogue operators change."""

from __future__ import annotations

import logging
import uuid

from libs.common.errors import Aborted, InvalidArgument, NotFound
from services.orders import domain, events
from services.orders.service_layer.ports import OrdersUnitOfWork, StoredOrder

log = logging.getLogger(__name__)


async def create_order(
    uow: OrdersUnitOfWork,
    platform_id: str,
    request_id: uuid.UUID,
    draft: domain.OrderDraft,
    window: domain.BookingWindow,
) -> domain.Order:
    async with uow:
        try:
            domain.check_particulars(draft)
            order = domain.create_order(
                draft, platform_id, uow.clock.now(), await uow.catalogue.current(), window
            )
        except InvalidArgument:
            # A retry gets the first answer even when the booking rules would now refuse the draft.
            earlier = await uow.orders.find_by_request(platform_id, request_id)
            if earlier is None:
                raise
            return _same_request(uow, earlier, draft)
        earlier = await uow.orders.add_once(order, request_id)
        if earlier is not None:
            return _same_request(uow, earlier, draft)
        await uow.add_event(events.TOPIC, events.order_created(order))
        await uow.commit()
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "order created", extra={"fields": {"order_id": str(order.order_id), "platform_id": platform_id}}
        )
    return order


def _same_request(uow: OrdersUnitOfWork, earlier: StoredOrder, draft: domain.OrderDraft) -> domain.Order:
    if earlier.request_fingerprint != uow.orders.fingerprint(draft):
        raise InvalidArgument("request_id", "already used for a different order")
    return earlier.order


async def locked_order(uow: OrdersUnitOfWork, order_id: uuid.UUID, platform_id: str | None) -> domain.Order:
    """The order, its row locked; NOT_FOUND when it does not exist or belongs to another platform
    (``platform_id`` None: a caller that may act on any platform's order, e.g. a timer)."""
    order = await uow.orders.get_for_update(order_id)
    if order is None or (platform_id is not None and order.platform_id != platform_id):
        raise NotFound(f"orders/{order_id}")
    return order


async def current_catalogue(uow: OrdersUnitOfWork) -> domain.Catalogue:
    async with uow:
        return await uow.catalogue.current()


async def update_catalogue_entry(
    uow: OrdersUnitOfWork, entry: domain.CatalogueEntry, expected_version: int | None
) -> domain.Catalogue:
    """The next catalogue version with ``entry``; ABORTED when someone changed it first."""
    async with uow:
        current = await uow.catalogue.current()
        if expected_version is not None and expected_version != current.version:
            raise Aborted(f"the catalogue is at version {current.version}, not {expected_version}")
        changed = domain.change_entry(current, entry)
        if not await uow.catalogue.add(changed, uow.clock.now()):
            raise Aborted("the catalogue changed at the same time; read it again and retry")
        await uow.add_event(events.TOPIC, events.catalogue_changed(changed, entry, uow.clock.now()))
        await uow.commit()
    return changed
