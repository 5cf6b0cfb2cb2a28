"""Reading Kafka directly, to see what the services published and what a group has consumed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.message import Message

from jiazheng.orders.events.v1 import events_pb2 as order_events
from libs.common.events import envelope_from_kafka, event_type_of, new_event
from libs.common.kafka import events_topic
from tests.integration.harness import eventually

ORDERS_TOPIC = events_topic("orders")


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
    if not partitions:  # no such topic (yet)
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def start_group_at_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit ``group``'s offsets at the end of ``topic``: a new group then consumes only what is
    published from now on, however much earlier tests left there (poison records included)."""
    ends = await end_offsets(bootstrap, topic)
    if not ends:
        return  # no such topic yet: nothing to skip
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[Record]:
    """Everything currently in ``topic``, from the beginning, without joining a group."""
    ends = await end_offsets(bootstrap, topic)
    partitions = list(ends)
    if not partitions:
        return []
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


async def events_about(bootstrap: str, topic: str, subject: str, message: type[Message]) -> list[Any]:
    """The events of type ``message`` keyed ``subject`` on ``topic``, in order, each once (the
    relays deliver at least once: duplicates share the event id)."""
    records = sorted(
        (r for r in await read_topic(bootstrap, topic) if r.key == subject.encode()), key=lambda r: r.offset
    )
    found: dict[str, Any] = {}
    for record in records:
        envelope = envelope_from_kafka(record.headers, record.value)
        if envelope.type == event_type_of(message()) and envelope.id not in found:
            found[envelope.id] = envelope.parse(message)
    return list(found.values())


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


async def produce_order_created(bootstrap: str, workers: list[str]) -> None:
    """One OrderCreated on the orders topic for each of ``workers``, as orders' relay sends it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for worker in workers:
            order_id = str(uuid.uuid4())
            created = order_events.OrderCreated(order_id=order_id, platform_id="p", worker_id=worker)
            created.create_time.GetCurrentTime()
            event = new_event(created, source="/test", subject=f"orders/{order_id}")
            await producer.send(ORDERS_TOPIC, value=event.data, key=event.key, headers=event.kafka_headers())
        await producer.flush()
    finally:
        await producer.stop()
