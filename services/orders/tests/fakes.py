"""In-memory orders storage for unit tests of the use cases and queries."""

from __future__ import annotations

import uuid

from libs.common.testing import FakeUnitOfWork, FixedClock
from services.orders.domain import Order
from services.orders.service_layer import StoredOrder


class FakeOrderRepository:
    def __init__(self) -> None:
        self.by_request: dict[tuple[str, uuid.UUID], StoredOrder] = {}

    async def add_once(self, order: Order, request_id: uuid.UUID) -> StoredOrder | None:
        key = (order.platform_id, request_id)
        if key in self.by_request:
            return self.by_request[key]
        self.by_request[key] = StoredOrder(order, order.draft.fingerprint())
        return None

    async def find_by_request(self, platform_id: str, request_id: uuid.UUID) -> StoredOrder | None:
        return self.by_request.get((platform_id, request_id))

    async def get(self, platform_id: str, order_id: uuid.UUID) -> Order | None:
        return next(
            (
                s.order
                for s in self.by_request.values()
                if s.order.order_id == order_id and s.order.platform_id == platform_id
            ),
            None,
        )


class FakeOrdersUnitOfWork(FakeUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.orders = FakeOrderRepository()

    def _stores(self) -> list[object]:
        return [*super()._stores(), self.orders]
