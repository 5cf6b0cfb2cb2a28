"""Composition root of the orders service: wires store, queries, API and outbox relay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from libs.common.db import create_pool
from libs.common.grpc_server import GrpcServer
from libs.common.kafka import ensure_topics, idempotent_producer
from libs.common.outbox import OutboxRelay
from libs.common.runtime import Components, run_service
from libs.common.settings import ServiceSettings
from services.orders import events
from services.orders.api import POLICY, SERVICE, OrderServicer
from services.orders.domain import BookingWindow
from services.orders.queries import PgOrderReads
from services.orders.store import PgOrdersUnitOfWork

MIGRATIONS = Path(__file__).with_name("migrations")


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
    # The booking window (our default): how far in the past and how far ahead a start may be.
    booking_start_tolerance_s: float = Field(default=3600, ge=0)
    booking_max_advance_days: int = Field(default=366, ge=1)

    def booking_window(self) -> BookingWindow:
        return BookingWindow(
            start_tolerance=timedelta(seconds=self.booking_start_tolerance_s),
            max_advance=timedelta(days=self.booking_max_advance_days),
        )


async def build(settings: OrdersSettings) -> Components:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    await ensure_topics(settings, [events.TOPIC])
    server = GrpcServer.from_settings(settings, POLICY)
    servicer = OrderServicer(
        lambda: PgOrdersUnitOfWork(pool, acquire_timeout_s=settings.db_acquire_timeout_s),
        PgOrderReads(pool),
        settings.booking_window(),
    )
    server.add(servicer, SERVICE)
    components = Components(server=server, closers=[pool.close])
    if settings.relay_enabled:
        components.background.append(OutboxRelay(pool, idempotent_producer(settings), settings).run())
    return components


def main() -> None:
    run_service(OrdersSettings(), MIGRATIONS, build)
