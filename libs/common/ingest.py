"""The ingest loop: a plain aiokafka consumer feeding an IdempotentConsumer one poll at a time.

Offsets are committed only after the poll's unit of work committed, and only up to the
records it settled, so a crash, a cancellation or a rebalance at any point redelivers at most
what was not yet acknowledged, and the inbox absorbs what had already been applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from libs.common.db import database_answers
from libs.common.inbox import Effect, IdempotentConsumer, KafkaDeadLetters, U
from libs.common.kafka import client_options
from libs.common.settings import ServiceSettings
from libs.common.telemetry import CONSUMER_LAG

log = logging.getLogger(__name__)

# getmany returns as soon as records are fetched; this only bounds an idle wait.
_IDLE_POLL_MS = 1000
Poll = Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]


def idempotent_consumer(
    name: str,
    pool: asyncpg.Pool,
    uow_factory: Callable[[], U],
    effects: Mapping[str, Effect[U]],
    dlq_producer: AIOKafkaProducer,
    settings: ServiceSettings,
) -> IdempotentConsumer[U]:
    """An IdempotentConsumer on PostgreSQL and Kafka: an outage is the database not answering on
    ``pool``, dead letters go to the consumer's DLQ topic through ``dlq_producer``."""
    return IdempotentConsumer(
        name,
        uow_factory,
        effects,
        KafkaDeadLetters(dlq_producer, name, settings.dlq_send_timeout_s),
        lambda: database_answers(pool),
        settings.consumer_max_attempts,
        settings.consumer_retry_backoff_s,
        settings.consumer_max_backoff_s,
    )


def kafka_consumer(settings: ServiceSettings, group: str, topics: Sequence[str]) -> AIOKafkaConsumer:
    """A group member that never commits on its own; ``<prefix>-<group>`` is its group id."""
    return AIOKafkaConsumer(
        *topics,
        **client_options(settings),
        group_id=f"{settings.consumer_group_prefix}-{group}",
        client_id=f"jiazheng-{settings.service_name}-{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.consumer_batch_size,
        # A member that died without leaving holds its partitions this long.
        session_timeout_ms=15_000,
        heartbeat_interval_ms=3_000,
    )


async def run_ingest(
    kafka: AIOKafkaConsumer, consumer: IdempotentConsumer[Any], settings: ServiceSettings
) -> None:
    """Consume until cancelled; each poll is applied, then its offsets committed.

    A poll's offset commit runs while the next poll is applied (one commit in flight, in order):
    it only ever follows the unit of work of the records it acknowledges.
    """
    await kafka.start()
    committing: asyncio.Task[None] | None = None
    try:
        while True:
            poll = await kafka.getmany(timeout_ms=_IDLE_POLL_MS, max_records=settings.consumer_batch_size)
            if not poll:
                continue
            await consumer.handle_batch([m for messages in poll.values() for m in messages])
            _report_lag(kafka, consumer.name, poll)
            if committing is not None:
                await committing
            committing = asyncio.create_task(_commit(kafka, poll))
    finally:
        if committing is not None:
            await asyncio.wait([committing])
        await kafka.stop()


async def _commit(kafka: AIOKafkaConsumer, poll: Poll) -> None:
    """Acknowledge exactly what the poll held. A failed commit is not an error: what it covered
    is redelivered (to this member or, after a rebalance, to another) and found in the inbox."""
    offsets = {tp: messages[-1].offset + 1 for tp, messages in poll.items()}
    try:
        await kafka.commit(offsets)
    except (CommitFailedError, KafkaError) as exc:
        log.warning(
            "offset commit failed; records will be redelivered", extra={"fields": {"error": repr(exc)}}
        )


def _report_lag(kafka: AIOKafkaConsumer, consumer: str, poll: Poll) -> None:
    assigned = kafka.assignment()  # a rebalance may have taken a partition since the poll
    for tp, messages in poll.items():
        end = kafka.highwater(tp) if tp in assigned else None
        if end is not None and end >= 0:
            CONSUMER_LAG.labels(consumer, tp.topic, str(tp.partition)).set(
                max(end - messages[-1].offset - 1, 0)
            )
