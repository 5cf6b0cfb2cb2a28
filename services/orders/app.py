"""Composition root of the orders service: store, eligibility index, APIs, offer timers, the ingest
of workers' and credit's events, and the outbox relay."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field

from libs.common.card_token import keys_from_jwks
from libs.common.db import create_pool, database_answers
from libs.common.grpc_server import GrpcServer
from libs.common.ingest import idempotent_consumer, kafka_consumer, run_ingest
from libs.common.kafka import dlq_topic, ensure_topics, events_topic, idempotent_producer
from libs.common.outbox import OutboxRelay
from libs.common.pii import Keyring
from libs.common.runtime import Components, run_service
from libs.common.settings import ServiceSettings
from libs.common.timers import DueTimer, TimerWorker
from services.orders import events, service_layer
from services.orders.api import CATALOGUE_SERVICE, ORDER_SERVICE, POLICY, CatalogueServicer, OrderServicer
from services.orders.contract_document import find_cjk_font
from services.orders.domain import BookingWindow
from services.orders.eligibility import EligibilityIndex
from services.orders.eligibility_store import PgEligibilityFeed
from services.orders.handlers import EFFECTS
from services.orders.queries import PgOrderReads
from services.orders.store import PgOrdersUnitOfWork

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
CONSUMER = "orders"
# Eligibility inputs: what workers and credit publish.
SOURCES = [events_topic("workers"), events_topic("credit")]


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
    # The booking window (our default): how far in the past and how far ahead a start may be.
    booking_start_tolerance_s: float = Field(default=3600, ge=0)
    booking_max_advance_days: int = Field(default=366, ge=1)
    # How long an offer waits for the worker's answer before it goes to the next candidate.
    offer_timeout_s: float = Field(default=900, gt=0)
    # How often the matching index catches up with the eligibility table.
    eligibility_refresh_s: float = Field(default=0.2, gt=0)
    # The matching index keeps millions of objects and replaces a worker's on every event: at
    # Python's 700 the collector walked the whole heap every few thousand events, about a third
    # of the process's CPU while events flowed (docs/performance.md, "Matching").
    gc_young_threshold: int = Field(default=50_000, ge=1)
    # The workers service's published card keys (its JWK Set, GetCardKeys), to verify check-ins
    # offline: JSON here, or a mounted file, which wins.
    card_jwks: str = '{"keys": []}'
    card_jwks_file: Path | None = None
    # A CJK TrueType font for PDF contracts; unset: Debian's fonts-wqy-zenhei where `make deps` or
    # the package put it.
    contract_font_path: Path | None = None

    def booking_window(self) -> BookingWindow:
        return BookingWindow(
            start_tolerance=timedelta(seconds=self.booking_start_tolerance_s),
            max_advance=timedelta(days=self.booking_max_advance_days),
        )

    def card_keys(self) -> dict[str, Ed25519PublicKey]:
        text = self.card_jwks_file.read_text(encoding="utf-8") if self.card_jwks_file else self.card_jwks
        return keys_from_jwks(json.loads(text))


def _font(settings: OrdersSettings) -> Path | None:
    font = settings.contract_font_path or find_cjk_font()
    if font is None:
        log.warning("no CJK font found: PDF contracts are refused until one is installed (make deps)")
    return font


async def build(settings: OrdersSettings) -> Components:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    await ensure_topics(settings, [events.TOPIC, *SOURCES, dlq_topic(CONSUMER)])
    uow = partial(
        PgOrdersUnitOfWork,
        pool,
        Keyring.from_settings(settings),
        settings.clock(),
        settings.db_acquire_timeout_s,
    )
    index = EligibilityIndex(PgEligibilityFeed(pool, settings.clock()))
    await index.catch_up()
    dispatch = service_layer.Dispatch(index, timedelta(seconds=settings.offer_timeout_s))
    card_keys = service_layer.CardKeys(settings.card_keys())
    server = GrpcServer.from_settings(settings, POLICY)
    orders = OrderServicer(
        uow, PgOrderReads(pool), settings.booking_window(), dispatch, card_keys, _font(settings)
    )
    server.add(orders, ORDER_SERVICE)
    server.add(CatalogueServicer(uow), CATALOGUE_SERVICE)

    async def offer_due(unit: PgOrdersUnitOfWork, timer: DueTimer) -> None:
        await service_layer.expire_offer(unit, dispatch, timer)

    timers = TimerWorker(
        uow, {service_layer.OFFER_TIMER: offer_due}, settings, lambda: database_answers(pool)
    )
    dlq = idempotent_producer(settings)
    await dlq.start()
    consumer = idempotent_consumer(CONSUMER, pool, uow, EFFECTS, dlq, settings)
    ingest = run_ingest(kafka_consumer(settings, CONSUMER, SOURCES), consumer, settings)
    background = [timers.run(), ingest, index.run(settings.eligibility_refresh_s)]
    components = Components(server=server, background=background, closers=[pool.close, dlq.stop])
    if settings.relay_enabled:
        components.background.append(OutboxRelay(pool, idempotent_producer(settings), settings).run())
    return components


def main() -> None:
    run_service(OrdersSettings(), MIGRATIONS, build)
