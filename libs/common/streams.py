"""faust-streaming glue: an app per consumer group and agents that feed an IdempotentConsumer.

faust is used at-least-once (its exactly-once mode is not relied upon): the offset is
committed after the consumer's transaction, so a crash redelivers, and the inbox drops the
duplicate.
"""

from __future__ import annotations

from typing import Any

import faust

from libs.common.inbox import IdempotentConsumer
from libs.common.settings import ServiceSettings


def faust_app(settings: ServiceSettings, group: str) -> faust.App:
    return faust.App(
        f"jiazheng-{group}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        web_enabled=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
    )


def bind_consumer(app: faust.App, topics: list[str], consumer: IdempotentConsumer) -> None:
    """Run ``consumer`` on every record of ``topics`` through one faust agent."""
    channel = app.topic(
        *topics, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    async def agent(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await consumer.handle_record(
                event.message.topic, event.key, event.value or b"", event.headers or {}
            )

    app.agent(channel, name=f"{consumer.name}-agent")(agent)


async def run_faust(app: faust.App) -> None:
    """Run the faust app inside the service's event loop until it stops or crashes."""
    await app.start()
    await app.wait_until_stopped()
