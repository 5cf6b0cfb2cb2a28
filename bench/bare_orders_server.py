"""Baseline server: the cheapest grpc.aio CreateOrder that does the service's transaction.

The real ``OrderService.CreateOrder`` contract (same request, same response), serving the
service's transaction: ``PgOrderRepository.add_once`` + ``outbox.add_event`` (insert, insert
with ``NOTIFY``) on a pool made like the service's (``libs.common.db.create_pool``, as large as
``JZ_DB_POOL_MAX``). No interceptor (no auth, validation, tracing, metrics), no logging, no
relay: the floor for one Python gRPC process doing this work, which the CreateOrder target is
stated against. ``python -m bench.bare_orders_server``, configured by ``JZ_DATABASE_URL`` and
``JZ_GRPC_PORT`` like a service; runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc

from bench.bare_service import serve
from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from libs.common.db import create_pool
from libs.common.outbox import add_event
from libs.common.settings import ServiceSettings
from services.orders import domain, events
from services.orders.api import draft_from_proto, order_to_proto
from services.orders.store import PgOrderRepository

PLATFORM = "demo-platform"


class BareOrders(orders_pb2_grpc.OrderServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def CreateOrder(
        self, request: orders_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orders_pb2.CreateOrderResponse:
        order = domain.create_order(draft_from_proto(request.order), PLATFORM, datetime.now(UTC))
        async with self._pool.acquire() as conn, conn.transaction():
            await PgOrderRepository(conn).add_once(order, uuid.UUID(request.request_id))
            await add_event(conn, events.TOPIC, events.order_created(order))
        return orders_pb2.CreateOrderResponse(order=order_to_proto(order))

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orders_pb2.GetOrderResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the benchmark")
        raise AssertionError("unreachable")


async def _pool(dsn: str) -> asyncpg.Pool:
    return await create_pool(dsn, 2, ServiceSettings().db_pool_max)


if __name__ == "__main__":
    asyncio.run(
        serve(
            lambda server, pool: orders_pb2_grpc.add_OrderServiceServicer_to_server(BareOrders(pool), server),
            _pool,
        )
    )
