"""Baseline server: the cheapest grpc.aio CreateOrder that does the service's transaction.

The real ``OrderService.CreateOrder`` contract (same request, same response), serving the
service's transaction: the current catalogue read (``PgCatalogueRepository.current``), the order
priced (``domain.create_order``), its contact and address sealed and the order inserted
(``PgOrderRepository.add_once`` with a ``Keyring``), and its OrderCreated outbox row
(``outbox.add_event``, insert with ``NOTIFY``), on a pool made like the service's
(``libs.common.db.create_pool``, as large as ``JZ_DB_POOL_MAX``). Only CreateOrder is served,
registered as the service registers its methods. No interceptor (no auth, validation, tracing,
metrics), no logging, no relay: the floor for one Python gRPC process doing this work, which the
CreateOrder target is stated against. ``python -m bench.bare_orders_server``, configured by
``JZ_DATABASE_URL``, ``JZ_GRPC_PORT`` and the ``JZ_PII_*`` keys like a service; runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc

from bench.bare_service import serve
from jiazheng.orders.v1 import orders_pb2
from libs.common.db import create_pool
from libs.common.outbox import add_event
from libs.common.pii import Keyring
from libs.common.settings import ServiceSettings
from services.orders import domain, events
from services.orders.api import ORDER_SERVICE, draft_from_proto, order_to_proto
from services.orders.store import PgCatalogueRepository, PgOrderRepository

PLATFORM = "demo-platform"


async def create_order(
    conn: asyncpg.Connection, keyring: Keyring, draft: domain.OrderDraft, request_id: uuid.UUID
) -> domain.Order:
    """The service's CreateOrder transaction on ``conn`` and nothing else; the order (the first one
    on a retried ``request_id``)."""
    async with conn.transaction():
        catalogue = await PgCatalogueRepository(conn).current()
        order = domain.create_order(draft, PLATFORM, datetime.now(UTC), catalogue)
        earlier = await PgOrderRepository(conn, keyring).add_once(order, request_id)
        if earlier is not None:
            return earlier.order
        await add_event(conn, events.TOPIC, events.order_created(order))
    return order


def register(server: grpc.aio.Server, pool: asyncpg.Pool) -> None:
    """CreateOrder alone on ``server``, with generic and registered handlers as ``GrpcServer.add`` does."""
    keyring = Keyring.from_settings(ServiceSettings())

    async def create(
        request: orders_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> orders_pb2.CreateOrderResponse:
        async with pool.acquire() as conn:
            order = await create_order(
                conn, keyring, draft_from_proto(request.order), uuid.UUID(request.request_id)
            )
        return orders_pb2.CreateOrderResponse(order=order_to_proto(order))

    handlers = {
        "CreateOrder": grpc.unary_unary_rpc_method_handler(
            create,
            request_deserializer=orders_pb2.CreateOrderRequest.FromString,
            response_serializer=orders_pb2.CreateOrderResponse.SerializeToString,
        )
    }
    name = ORDER_SERVICE.full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)  # type: ignore[attr-defined]


async def _pool(dsn: str) -> asyncpg.Pool:
    return await create_pool(dsn, 2, ServiceSettings().db_pool_max)


if __name__ == "__main__":
    asyncio.run(serve(register, _pool))
