"""Composition root of the workers service: store, queries, APIs, outbox relay, timers, and the ingest
of the card-status inputs credit and insurance publish."""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import partial
from pathlib import Path

from libs.common.db import create_pool, database_answers
from libs.common.grpc_server import GrpcServer
from libs.common.ingest import idempotent_consumer, kafka_consumer, run_ingest
from libs.common.kafka import dlq_topic, ensure_topics, events_topic, idempotent_producer
from libs.common.outbox import OutboxRelay
from libs.common.pii import Keyring
from libs.common.runtime import Components, run_service
from libs.common.timers import DueTimer, TimerWorker
from services.workers import events, service_layer
from services.workers.api import CARD_SERVICE, POLICY, WORKER_SERVICE, CardServicer, WorkerServicer
from services.workers.handlers import EFFECTS
from services.workers.queries import PgCardHolders, PgWorkerReads
from services.workers.settings import WorkersSettings
from services.workers.store import PgWorkersUnitOfWork

MIGRATIONS = Path(__file__).with_name("migrations")
CONSUMER = "workers"
# Card-status inputs: credit levels and suspensions, insurance coverage, complaints' suspension requests.
SOURCES = [events_topic("credit"), events_topic("insurance"), events_topic("complaints")]


async def card_status_due(uow: PgWorkersUnitOfWork, timer: DueTimer) -> None:
    """A health check or insurance cover lapsed: the colour changes with no call."""
    await service_layer.refresh_status(uow, uuid.UUID(timer.key))


async def build(settings: WorkersSettings) -> Components:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    await ensure_topics(settings, [events.TOPIC, *SOURCES, dlq_topic(CONSUMER)])
    keyring = Keyring.from_settings(settings)
    uow = partial(PgWorkersUnitOfWork, pool, keyring, settings.clock(), settings.db_acquire_timeout_s)
    server = GrpcServer.from_settings(settings, POLICY)
    servicer = WorkerServicer(
        uow, PgWorkerReads(pool), settings.health_check_validity_months, settings.pay_band_table()
    )
    server.add(servicer, WORKER_SERVICE)
    signer = service_layer.CardSigner(settings.card_keyring(), timedelta(days=settings.card_validity_days))
    cards = CardServicer(uow, PgCardHolders(pool), signer, settings.card_verify_base_url, settings.clock())
    server.add(cards, CARD_SERVICE)
    timers = TimerWorker(
        uow, {service_layer.CARD_STATUS_TIMER: card_status_due}, settings, lambda: database_answers(pool)
    )
    dlq = idempotent_producer(settings)
    await dlq.start()
    consumer = idempotent_consumer(CONSUMER, pool, uow, EFFECTS, dlq, settings)
    ingest = run_ingest(kafka_consumer(settings, CONSUMER, SOURCES), consumer, settings)
    components = Components(server=server, background=[timers.run(), ingest], closers=[pool.close, dlq.stop])
    if settings.relay_enabled:
        components.background.append(OutboxRelay(pool, idempotent_producer(settings), settings).run())
    return components


def main() -> None:
    run_service(WorkersSettings(), MIGRATIONS, build)
