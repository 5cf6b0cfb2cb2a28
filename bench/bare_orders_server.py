"""Diagnostic server: the cheapest grpc.aio CreateOrder that does the service's transaction.

The real ``OrderService.CreateOrder`` contract (same request, same response), serving the
baseline's transaction: ``OrderRepository.add_once`` + ``outbox.add_event`` (insert, insert,
``NOTIFY``) on an asyncpg pool as large as the service's. No interceptor (no auth, validation,
tracing, metrics), no request-id lookup, no logging, no relay. It tells how much of the
service's cost is the grpc.aio framework itself. ``python -m bench.bare_orders_server``, configured
by ``JZ_DATABASE_URL`` and ``JZ_GRPC_PORT`` like a service; runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from libs.common.db import create_pool
from libs.common.outbox import add_event
from libs.common.settings import ServiceSettings
from services.orders import domain, events
from services.orders.api import draft_from_proto, order_to_proto
from services.orders.store import OrderRepository

PLATFORM = "demo-platform"


class BareOrders(orders_pb2_grpc.OrderServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def CreateOrder(
        self, request: orders_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orders_pb2.CreateOrderResponse:
        order = domain.create_order(draft_from_proto(request.order), PLATFORM, datetime.now(UTC))
        async with self._pool.acquire() as conn, conn.transaction():
            await OrderRepository(conn).add_once(order, uuid.UUID(request.request_id))
            await add_event(conn, events.TOPIC, events.order_created(order))
        return orders_pb2.CreateOrderResponse(order=order_to_proto(order))

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orders_pb2.GetOrderResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the benchmark")
        raise AssertionError("unreachable")


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings = ServiceSettings()
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    server = grpc.aio.server()
    orders_pb2_grpc.add_OrderServiceServicer_to_server(BareOrders(pool), server)
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{os.environ['JZ_GRPC_PORT']}")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        await stop.wait()
    finally:
        await server.stop(1)
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
