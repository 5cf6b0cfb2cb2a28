"""Reading Kafka directly, to see what the services published and what a group has consumed."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.harness import eventually


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    """Every partition of ``topic`` with the offset just after its last record."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[Record]:
    """Everything currently in ``topic``, from the beginning, without joining a group."""
    ends = await end_offsets(bootstrap, topic)
    partitions = list(ends)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Record] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, messages in batch.items():
                records += [
                    Record(tp.partition, m.offset, m.key, m.value or b"", dict(m.headers)) for m in messages
                ]
        return records
    finally:
        await consumer.stop()


async def wait_until_consumed(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    """Wait until ``group`` has committed past ``offset``: it processed that record and all before it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    tp = TopicPartition(topic, partition)

    async def committed_past() -> bool:
        offsets = await admin.list_consumer_group_offsets(group)
        return tp in offsets and offsets[tp].offset > offset

    try:
        await eventually(committed_past, within=90)
    finally:
        await admin.close()
