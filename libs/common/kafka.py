"""Kafka plumbing: topic names, topic creation, an idempotent producer."""

from __future__ import annotations

import contextlib
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from libs.common.settings import ServiceSettings

log = logging.getLogger(__name__)


def events_topic(service: str) -> str:
    """The topic on which ``service`` publishes its domain events."""
    return f"jiazheng.{service}.events.v1"


def dlq_topic(consumer: str) -> str:
    """Where ``consumer`` puts what it could not process after bounded retries."""
    return f"jiazheng.{consumer}.dlq.v1"


async def ensure_topics(settings: ServiceSettings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication,
                topic_configs={"retention.ms": str(settings.topic_retention_ms)},
            )
            for name in names
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica won the race
                await admin.create_topics(missing)
            log.info("topics created", extra={"fields": {"topics": [t.name for t in missing]}})
    finally:
        await admin.close()


def idempotent_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """acks=all with idempotence: broker-side retries never duplicate or reorder a partition."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        client_id=f"jiazheng-{settings.service_name}",
    )
