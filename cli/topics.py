"""Reading a whole topic from the command line: every partition, no consumer group."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

ASSIGNMENT_TIMEOUT_S = 30


async def every_partition(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Subscribe ``consumer`` (which has no group id: every partition is its own and nothing is
    committed) to ``topic`` and return the partitions once they are assigned."""
    consumer.subscribe([topic])
    async with asyncio.timeout(ASSIGNMENT_TIMEOUT_S):
        while not consumer.assignment():  # noqa: ASYNC110 - aiokafka has no public event for it
            await asyncio.sleep(0.02)
    return sorted(consumer.assignment())
