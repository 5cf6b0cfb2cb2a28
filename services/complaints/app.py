"""Composition root of the complaints service: store, APIs, the deadline timers on China's
working-day calendar, the ingest of orders' and insurance's events, and the outbox relay."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from pathlib import Path

from pydantic import Field

from libs.common.db import create_pool, database_answers
from libs.common.grpc_server import GrpcServer
from libs.common.ingest import idempotent_consumer, kafka_consumer, run_ingest
from libs.common.kafka import dlq_topic, ensure_topics, events_topic, idempotent_producer
from libs.common.outbox import OutboxRelay
from libs.common.pii import Keyring
from libs.common.runtime import Components, run_service
from libs.common.settings import ServiceSettings
from libs.common.timers import DueTimer, TimerWorker
from libs.common.uow import Clock
from services.complaints import domain, events, service_layer
from services.complaints.api import (
    COMPLAINT_SERVICE,
    MEDIATION_SERVICE,
    POLICY,
    ComplaintServicer,
    MediationServicer,
)
from services.complaints.domain.calendar import DEFAULT_OVERRIDES
from services.complaints.handlers import EFFECTS
from services.complaints.store import PgComplaintsUnitOfWork

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
CONSUMER = "complaints"
# Orders' events (the local copy of orders, disputed charges) and insurance's (claims).
SOURCES = [events_topic("orders"), events_topic("insurance")]


class ComplaintsSettings(ServiceSettings):
    service_name: str = "complaints"
    # How long a mediator holds a claimed case before it returns to the queue (our default).
    mediation_lease_minutes: float = Field(default=30, gt=0)
    # The operator's holiday schedule for years the chinese-calendar package lacks.
    holiday_overrides_file: Path = DEFAULT_OVERRIDES


def rules(settings: ComplaintsSettings, clock: Clock) -> service_layer.Rules:
    """The calendar (warning for this year and the next when no official schedule covers them)."""
    calendar = domain.WorkingCalendar(domain.load_overrides(settings.holiday_overrides_file))
    year = clock.now().astimezone(domain.BEIJING).year
    for uncovered in (y for y in (year, year + 1) if not calendar.covers(y)):
        log.warning(
            "no official holiday schedule for this year: Monday to Friday count as working days",
            extra={"fields": {"year": uncovered, "overrides": str(settings.holiday_overrides_file)}},
        )
    return service_layer.Rules(calendar, timedelta(minutes=settings.mediation_lease_minutes))


async def build(settings: ComplaintsSettings) -> Components:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    await ensure_topics(settings, [events.TOPIC, *SOURCES, dlq_topic(CONSUMER)])
    clock = settings.clock()
    uow = partial(
        PgComplaintsUnitOfWork, pool, Keyring.from_settings(settings), clock, settings.db_acquire_timeout_s
    )
    case_rules = rules(settings, clock)
    server = GrpcServer.from_settings(settings, POLICY)
    server.add(ComplaintServicer(uow, case_rules), COMPLAINT_SERVICE)
    server.add(MediationServicer(uow, case_rules), MEDIATION_SERVICE)

    async def deadline_due(unit: PgComplaintsUnitOfWork, timer: DueTimer) -> None:
        await service_layer.deadline_due(unit, case_rules, timer)

    handlers = {
        service_layer.DEADLINE_TIMER: deadline_due,
        service_layer.REFERRAL_TIMER: service_layer.referral_due,
    }
    timers = TimerWorker(uow, handlers, settings, lambda: database_answers(pool))
    dlq = idempotent_producer(settings)
    await dlq.start()
    consumer = idempotent_consumer(CONSUMER, pool, uow, EFFECTS, dlq, settings)
    ingest = run_ingest(kafka_consumer(settings, CONSUMER, SOURCES), consumer, settings)
    components = Components(server=server, background=[timers.run(), ingest], closers=[pool.close, dlq.stop])
    if settings.relay_enabled:
        components.background.append(OutboxRelay(pool, idempotent_producer(settings), settings).run())
    return components


def main() -> None:
    run_service(ComplaintsSettings(), MIGRATIONS, build)
