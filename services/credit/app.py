"""Composition root of the credit service: ledger store, queries, API, and the ingest of events."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from libs.common.db import create_pool
from libs.common.grpc_server import GrpcServer
from libs.common.ingest import idempotent_consumer, kafka_consumer, run_ingest
from libs.common.kafka import dlq_topic, ensure_topics, events_topic, idempotent_producer
from libs.common.runtime import Components, run_service
from libs.common.settings import ServiceSettings
from services.credit.api import POLICY, SERVICE, CreditServicer
from services.credit.handlers import EFFECTS
from services.credit.queries import PgLedgerReads
from services.credit.store import PgCreditUnitOfWork

MIGRATIONS = Path(__file__).with_name("migrations")
CONSUMER = "credit"
SOURCES = [events_topic("orders")]


class CreditSettings(ServiceSettings):
    service_name: str = "credit"


async def build(settings: CreditSettings) -> Components:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    await ensure_topics(settings, [*SOURCES, dlq_topic(CONSUMER)])
    server = GrpcServer.from_settings(settings, POLICY)
    server.add(CreditServicer(PgLedgerReads(pool)), SERVICE)
    dlq = idempotent_producer(settings)
    await dlq.start()
    uow = partial(PgCreditUnitOfWork, pool, acquire_timeout_s=settings.db_acquire_timeout_s)
    consumer = idempotent_consumer(CONSUMER, pool, uow, EFFECTS, dlq, settings)
    ingest = run_ingest(kafka_consumer(settings, CONSUMER, SOURCES), consumer, settings)
    return Components(server=server, background=[ingest], closers=[pool.close, dlq.stop])


def main() -> None:
    run_service(CreditSettings(), MIGRATIONS, build)
