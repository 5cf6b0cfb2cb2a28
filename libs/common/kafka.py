"""Kafka plumbing: topic names, topic creation, an idempotent producer, batched sending."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from libs.common.settings import ServiceSettings

log = logging.getLogger(__name__)


def events_topic(service: str) -> str:
    """The topic on which ``service`` publishes its domain events."""
    return f"jiazheng.{service}.events.v1"


def dlq_topic(consumer: str) -> str:
    """Where ``consumer`` puts what it could not process after bounded retries."""
    return f"jiazheng.{consumer}.dlq.v1"


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """What every Kafka client of a service is given: where the brokers are and how to log in."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol != "PLAINTEXT":
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    if settings.kafka_security_protocol == "SASL_SSL":
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ca_file)
    return options


async def ensure_topics(settings: ServiceSettings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(**client_options(settings))
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
    """acks=all with idempotence: broker-side retries never duplicate or reorder a partition. No
    linger: the relay hands over whole batches (``send_batched``) and dead letters go one at a
    time, so waiting for more records would only delay every hop (by up to the linger)."""
    return AIOKafkaProducer(
        **client_options(settings),
        enable_idempotence=True,
        acks="all",
        linger_ms=0,
        client_id=f"jiazheng-{settings.service_name}",
    )


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes
    value: bytes
    headers: Sequence[tuple[str, bytes]]


# Kafka's default partitioner (murmur2 of the key, as the Java client), pure Python in aiokafka:
# remembered per key, since an aggregate's events share one.
_key_hash = lru_cache(maxsize=65_536)(murmur2)


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions`` (sorted)."""
    key_hash: int = _key_hash(key)
    return partitions[(key_hash & 0x7FFFFFFF) % len(partitions)]


async def send_batched(
    producer: AIOKafkaProducer, records: Iterable[OutgoingRecord]
) -> list[asyncio.Future[object]]:
    """Queue ``records`` in order, one producer batch per partition at a time rather than one
    future per record; each key goes to the partition Kafka's default partitioner would choose.
    Returns the futures of the batches (done when Kafka has acknowledged them)."""
    open_batches: dict[tuple[str, int], BatchBuilder] = {}
    sent: list[asyncio.Future[object]] = []
    partitions: dict[str, list[int]] = {}
    for r in records:
        if r.topic not in partitions:
            partitions[r.topic] = sorted(await producer.partitions_for(r.topic))
        tp = (r.topic, partition_for(r.key, partitions[r.topic]))
        batch = open_batches.get(tp) or producer.create_batch()
        if batch.append(key=r.key, value=r.value, timestamp=None, headers=list(r.headers)) is None:
            sent.append(await producer.send_batch(batch, tp[0], partition=tp[1]))
            batch = producer.create_batch()
            if batch.append(key=r.key, value=r.value, timestamp=None, headers=list(r.headers)) is None:
                raise ValueError(f"a record of {len(r.value)} bytes is larger than a producer batch")
        open_batches[tp] = batch
    for (topic, partition), batch in open_batches.items():
        sent.append(await producer.send_batch(batch, topic, partition=partition))
    return sent
