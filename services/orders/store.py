"""Orders persistence on asyncpg: the repository and the service's unit of work."""

from __future__ import annotations

import uuid

import asyncpg

from libs.common.db import PgUnitOfWork
from services.orders.domain import Order, OrderDraft, OrderState, ServiceType
from services.orders.service_layer import StoredOrder


def stored_order(row: asyncpg.Record) -> StoredOrder:
    draft = OrderDraft(
        service_type=ServiceType(row["service_type"]),
        district_code=row["district_code"],
        consumer_ref=row["consumer_ref"],
        worker_id=row["worker_id"],
        scheduled_start=row["scheduled_start"],
        duration_hours=row["duration_hours"],
    )
    order = Order(
        order_id=row["order_id"],
        platform_id=row["platform_id"],
        draft=draft,
        state=OrderState(row["state"]),
        created_at=row["created_at"],
    )
    return StoredOrder(order, row["request_fingerprint"])


class PgOrderRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add_once(self, order: Order, request_id: uuid.UUID) -> StoredOrder | None:
        d = order.draft
        inserted = await self._conn.fetchval(
            "INSERT INTO orders (order_id, platform_id, request_id, request_fingerprint, service_type,"
            " district_code, consumer_ref, worker_id, scheduled_start, duration_hours, state, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT (platform_id, request_id) DO NOTHING RETURNING true",
            order.order_id,
            order.platform_id,
            request_id,
            d.fingerprint(),
            d.service_type,
            d.district_code,
            d.consumer_ref,
            d.worker_id,
            d.scheduled_start,
            d.duration_hours,
            order.state,
            order.created_at,
        )
        if inserted:
            return None
        return await self.find_by_request(order.platform_id, request_id)

    async def find_by_request(self, platform_id: str, request_id: uuid.UUID) -> StoredOrder | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM orders WHERE platform_id = $1 AND request_id = $2", platform_id, request_id
        )
        return stored_order(row) if row else None


class PgOrdersUnitOfWork(PgUnitOfWork):
    orders: PgOrderRepository

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.orders = PgOrderRepository(conn)
