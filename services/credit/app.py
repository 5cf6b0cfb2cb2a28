"""Composition root of the credit service: ledger store, queries, API, the ingest of the events that
move credit, the re-evaluation and company regrade timers, and the outbox relay of the level changes."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

from pydantic import Field

from libs.common.db import create_pool, database_answers
from libs.common.grpc_server import GrpcServer
from libs.common.ingest import idempotent_consumer, kafka_consumer, run_ingest
from libs.common.kafka import dlq_topic, ensure_topics, events_topic, idempotent_producer
from libs.common.outbox import OutboxRelay
from libs.common.runtime import Components, run_service
from libs.common.settings import ServiceSettings
from libs.common.timers import TimerHandler, TimerWorker
from services.credit import admin_api, companies, company_api, events, scoring
from services.credit.api import POLICY, SERVICE, CreditServicer
from services.credit.handlers import EFFECTS
from services.credit.queries import PgLedgerReads
from services.credit.rebuild import PgLedger, PgRebuildUnitOfWork
from services.credit.store import PgCreditUnitOfWork

MIGRATIONS = Path(__file__).with_name("migrations")
CONSUMER = "credit"
# Everything that moves credit: orders, complaints, the workers' records (and employers, cards,
# consent grants), insurance's claims.
SOURCES = [events_topic(s) for s in ("orders", "complaints", "workers", "insurance")]


class CreditSettings(ServiceSettings):
    service_name: str = "credit"
    # A company whose complaint handling or workers changed (a case, a score, a worker joining or
    # leaving) is regraded this long after the first change, whatever follows: at most once per
    # delay (JZ_COMPANY_REGRADE_DELAY_S).
    company_regrade_delay_s: float = Field(default=companies.REGRADE_DELAY.total_seconds(), gt=0)


async def build(settings: CreditSettings) -> Components:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    await ensure_topics(settings, [events.TOPIC, *SOURCES, dlq_topic(CONSUMER)])
    regrade_delay = timedelta(seconds=settings.company_regrade_delay_s)
    uow = partial(PgCreditUnitOfWork, pool, settings.clock(), settings.db_acquire_timeout_s, regrade_delay)
    server = GrpcServer.from_settings(settings, {**POLICY, **company_api.POLICY, **admin_api.POLICY})
    server.add(CreditServicer(PgLedgerReads(pool), uow), SERVICE)
    server.add(company_api.CompanyCreditServicer(uow), company_api.SERVICE)
    rebuilding = partial(PgRebuildUnitOfWork, pool, settings.clock(), settings.db_acquire_timeout_s)
    server.add(admin_api.CreditAdminServicer(PgLedger(pool), rebuilding, settings.clock()), admin_api.SERVICE)
    dlq = idempotent_producer(settings)
    await dlq.start()
    consumer = idempotent_consumer(CONSUMER, pool, uow, EFFECTS, dlq, settings)
    ingest = run_ingest(kafka_consumer(settings, CONSUMER, SOURCES), consumer, settings)
    handlers: dict[str, TimerHandler[PgCreditUnitOfWork]] = {
        scoring.REEVALUATION_TIMER: scoring.reevaluation_due,
        companies.REGRADE_TIMER: companies.regrade_due,
    }
    timers = TimerWorker(uow, handlers, settings, lambda: database_answers(pool))
    components = Components(server=server, background=[ingest, timers.run()], closers=[pool.close, dlq.stop])
    if settings.relay_enabled:
        components.background.append(OutboxRelay(pool, idempotent_producer(settings), settings).run())
    return components


def main() -> None:
    run_service(CreditSettings(), MIGRATIONS, build)
