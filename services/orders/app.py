"""Composition root of the orders service: wires store, API and outbox relay."""

from __future__ import annotations

from pathlib import Path

from jiazheng.orders.v1 import orders_pb2_grpc
from libs.common.db import create_pool
from libs.common.grpc_server import GrpcServer
from libs.common.kafka import ensure_topics, idempotent_producer
from libs.common.outbox import OutboxRelay
from libs.common.runtime import Components, run_service
from libs.common.settings import ServiceSettings
from services.orders import events
from services.orders.api import POLICY, SERVICE_NAME, OrderServicer, uow_factory_for

MIGRATIONS = Path(__file__).with_name("migrations")


async def build(settings: ServiceSettings) -> Components:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    await ensure_topics(settings, [events.TOPIC])
    server = GrpcServer.from_settings(settings, POLICY)
    server.add(
        orders_pb2_grpc.add_OrderServiceServicer_to_server, OrderServicer(uow_factory_for(pool)), SERVICE_NAME
    )
    components = Components(server=server, closers=[pool.close])
    if settings.relay_enabled:
        components.background.append(OutboxRelay(pool, idempotent_producer(settings), settings).run())
    return components


def main() -> None:
    run_service(ServiceSettings(service_name="orders"), MIGRATIONS, build)
