"""Composition root of the credit service: ledger store, query API, faust consumer of order events."""

from __future__ import annotations

from pathlib import Path

from jiazheng.credit.v1 import credit_pb2_grpc
from libs.common.db import create_pool
from libs.common.grpc_server import GrpcServer
from libs.common.inbox import IdempotentConsumer
from libs.common.kafka import dlq_topic, ensure_topics, events_topic, idempotent_producer
from libs.common.runtime import Components, run_service
from libs.common.settings import ServiceSettings
from libs.common.streams import bind_consumer, faust_app, run_faust
from services.credit.api import POLICY, SERVICE_NAME, CreditServicer
from services.credit.handlers import EFFECTS

MIGRATIONS = Path(__file__).with_name("migrations")
CONSUMER = "credit"
SOURCES = [events_topic("orders")]


async def build(settings: ServiceSettings) -> Components:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    await ensure_topics(settings, [*SOURCES, dlq_topic(CONSUMER)])
    server = GrpcServer.from_settings(settings, POLICY)
    server.add(credit_pb2_grpc.add_CreditServiceServicer_to_server, CreditServicer(pool), SERVICE_NAME)
    dlq = idempotent_producer(settings)
    await dlq.start()
    consumer = IdempotentConsumer(
        CONSUMER, pool, dlq, EFFECTS, settings.consumer_max_attempts, settings.consumer_retry_backoff_s
    )
    app = faust_app(settings, CONSUMER)
    bind_consumer(app, SOURCES, consumer, settings)
    return Components(server=server, background=[run_faust(app)], closers=[pool.close, dlq.stop, app.stop])


def main() -> None:
    run_service(ServiceSettings(service_name="credit"), MIGRATIONS, build)
