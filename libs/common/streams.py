"""faust-streaming glue: an app per consumer group and agents that feed an IdempotentConsumer.

faust is used at-least-once (its exactly-once mode is not relied upon): the offset is
committed after the consumer's transaction, so a crash redelivers, and the inbox drops the
duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any, cast

import faust

from libs.common.inbox import IdempotentConsumer, KafkaRecord
from libs.common.settings import ServiceSettings
from libs.common.telemetry import CONSUMER_LAG

log = logging.getLogger(__name__)
EXIT_UNACKNOWLEDGED = 75


def faust_app(settings: ServiceSettings, group: str) -> faust.App:
    return faust.App(
        f"{settings.consumer_group_prefix}-{group}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        web_enabled=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        # A member that died without leaving holds its partitions this long (faust's default is 60 s).
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
    )


def bind_consumer(
    app: faust.App, topics: list[str], consumer: IdempotentConsumer, settings: ServiceSettings
) -> None:
    """Run ``consumer`` on the records of ``topics`` through one faust agent, a poll at a time.

    faust acknowledges a batch once the agent moves past it, even when the agent raised. So a
    failure the consumer could not absorb itself (the database or the dead-letter topic down)
    ends the process at once, before anything is committed: it restarts and Kafka redelivers.
    """
    channel = app.topic(
        *topics, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    async def agent(stream: faust.StreamT[Any]) -> None:
        batches = cast(faust.Stream[Any], stream).take_events(
            settings.consumer_batch_size, within=settings.consumer_batch_wait_s
        )
        async for events in batches:
            records = [
                KafkaRecord(e.message.topic, e.key, e.value or b"", list((e.headers or {}).items()))
                for e in events
            ]
            await _apply_before_acknowledging(consumer, records)
            _report_lag(app, consumer.name, events)

    app.agent(channel, name=f"{consumer.name}-agent")(agent)


async def _apply_before_acknowledging(consumer: IdempotentConsumer, records: list[KafkaRecord]) -> None:
    """Apply a batch completely, or end the process before faust acknowledges any of it.

    faust acknowledges the batch when the agent leaves it, including when it stops the agent by
    cancelling it mid-batch: the batch's transaction is therefore finished first.
    """
    work = asyncio.ensure_future(consumer.handle_batch(records))
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        try:
            await asyncio.shield(work)
        except BaseException:  # noqa: BLE001 - cancelled again, or the batch failed: not applied
            _exit_unacknowledged()
        raise
    except Exception:  # noqa: BLE001 - whatever the consumer could not absorb
        _exit_unacknowledged()


def _exit_unacknowledged() -> None:
    log.critical("consumer failed; exiting without acknowledging", exc_info=True)
    os._exit(EXIT_UNACKNOWLEDGED)


def _report_lag(app: faust.App, consumer: str, events: Sequence[faust.EventT[Any]]) -> None:
    last_offsets = {e.message.tp: e.message.offset for e in events}
    for tp, offset in last_offsets.items():
        end = app.consumer.highwater(tp)
        if end is not None and end >= 0:
            CONSUMER_LAG.labels(consumer, tp.topic, str(tp.partition)).set(max(end - offset - 1, 0))


async def run_faust(app: faust.App) -> None:
    """Run the faust app inside the service's event loop until it stops or crashes."""
    await app.start()
    await app.wait_until_stopped()
