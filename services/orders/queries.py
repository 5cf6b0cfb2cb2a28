"""Orders read paths: what a platform may see, straight from the database, outside any use case."""

from __future__ import annotations

import uuid
from typing import Protocol

import asyncpg

from libs.common.errors import NotFound
from services.orders.domain import Order
from services.orders.store import stored_order


class OrderReads(Protocol):
    async def find(self, platform_id: str, order_id: uuid.UUID) -> Order | None: ...


async def get_order(reads: OrderReads, platform_id: str, order_id: uuid.UUID) -> Order:
    """One of the platform's orders; another platform's order does not exist for it."""
    order = await reads.find(platform_id, order_id)
    if order is None:
        raise NotFound(f"orders/{order_id}")
    return order


class PgOrderReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def find(self, platform_id: str, order_id: uuid.UUID) -> Order | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM orders WHERE platform_id = $1 AND order_id = $2", platform_id, order_id
        )
        return stored_order(row).order if row else None
