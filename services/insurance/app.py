"""Composition root of the insurance service: the product catalogue (checked at start: a
malformed products file stops the service), the store, PolicyService, the durable timers of
policies (a worker's cover starting or ending on a later day, a policy expiring) and the outbox
relay; ClaimService and the ingest of orders' events (insurance's copy of orders and their
coverage) and complaints' (automatic claims from compensation), with its dead-letter topic."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from libs.common.db import create_pool, database_answers
from libs.common.grpc_server import GrpcServer
from libs.common.ingest import idempotent_consumer, kafka_consumer, run_ingest
from libs.common.kafka import dlq_topic, ensure_topics, events_topic, idempotent_producer
from libs.common.outbox import OutboxRelay
from libs.common.pii import Keyring
from libs.common.runtime import Components, run_service
from libs.common.settings import ServiceSettings
from libs.common.timers import TimerWorker
from services.insurance import events
from services.insurance.api import CLAIM_SERVICE, POLICY, POLICY_SERVICE, ClaimServicer, PolicyServicer
from services.insurance.domain.products import DEFAULT_PRODUCTS, load_catalogue
from services.insurance.handlers import effects
from services.insurance.service_layer import policies
from services.insurance.service_layer.claim_ports import ClaimRules
from services.insurance.store import PgInsuranceUnitOfWork

MIGRATIONS = Path(__file__).with_name("migrations")
CONSUMER = "insurance"
# Orders' events (the copy of orders, their coverage) and complaints' (compensation to claim).
SOURCES = [events_topic("orders"), events_topic("complaints")]


class InsuranceSettings(ServiceSettings):
    service_name: str = "insurance"
    # The products and premium tables (JZ_PRODUCTS_FILE; a ConfigMap in Kubernetes).
    products_file: Path = DEFAULT_PRODUCTS


async def build(settings: InsuranceSettings) -> Components:
    catalogue = load_catalogue(settings.products_file)
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    await ensure_topics(settings, [events.TOPIC, *SOURCES, dlq_topic(CONSUMER)])
    clock = settings.clock()
    uow = partial(
        PgInsuranceUnitOfWork, pool, Keyring.from_settings(settings), clock, settings.db_acquire_timeout_s
    )
    server = GrpcServer.from_settings(settings, POLICY)
    server.add(PolicyServicer(uow, catalogue, clock), POLICY_SERVICE)
    rules = ClaimRules(catalogue)
    server.add(ClaimServicer(uow, rules), CLAIM_SERVICE)
    handlers = {
        policies.EXPIRY_TIMER: policies.policy_expiry_due,
        policies.COVERAGE_TIMER: policies.coverage_change_due,
    }
    timers = TimerWorker(uow, handlers, settings, lambda: database_answers(pool))
    dlq = idempotent_producer(settings)
    await dlq.start()
    consumer = idempotent_consumer(CONSUMER, pool, uow, effects(rules), dlq, settings)
    ingest = run_ingest(kafka_consumer(settings, CONSUMER, SOURCES), consumer, settings)
    components = Components(server=server, background=[timers.run(), ingest], closers=[pool.close, dlq.stop])
    if settings.relay_enabled:
        components.background.append(OutboxRelay(pool, idempotent_producer(settings), settings).run())
    return components


def main() -> None:
    run_service(InsuranceSettings(), MIGRATIONS, build)
