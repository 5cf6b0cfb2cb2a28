"""Records faust acknowledged without handing them to the agent, read again and handled.

faust-streaming 0.15 can acknowledge records its agent never received. When a worker joins its
group, a record fetched while the tables recover is delivered only after recovery has sought the
partition back to its committed offset; faust then takes the offsets between the committed one and
that record's as a gap (as it would for compacted records), commits past them, and drops them when
they are fetched again. The regulator's kill/restart test lost such runs of records before this.

So each agent keeps, per source partition, the offset of the next record it expects, in a table
(recovered with the others after a restart). A record past that offset means records were skipped:
they are read straight from Kafka, with a consumer of their own, and handled first, in order.
Handling is idempotent (the projection's table of published ids, the indicators' table of counted
ids), so a record that reaches the agent twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter

from libs.common.kafka import client_options
from libs.common.settings import ServiceSettings

log = logging.getLogger(__name__)

SKIPPED = Counter(
    "jz_regulator_skipped_records_total",
    "Records faust acknowledged without delivering them, read again by the agent",
    ["agent"],
)

Handle = Callable[[bytes | None, Any], Awaitable[None]]


class DeliveredRecord(Protocol):
    """What the agent sees of a record: faust's Message and aiokafka's ConsumerRecord both fit."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Any: ...


class PartitionReader(Protocol):
    async def first_offset(self, tp: TopicPartition) -> int: ...

    def read(self, tp: TopicPartition, start: int, end: int) -> AsyncIterator[DeliveredRecord]: ...


class SkippedRecords:
    """Hands an agent every record of its partitions in order, skipped ones included."""

    def __init__(self, agent: str, expected: MutableMapping[str, int], reader: PartitionReader) -> None:
        self.agent = agent
        self.expected = expected  # "<topic>/<partition>" -> the next offset the agent expects
        self.reader = reader

    async def deliver(self, record: DeliveredRecord, handle: Handle) -> None:
        tp = TopicPartition(record.topic, record.partition)
        key = f"{record.topic}/{record.partition}"
        expected = self.expected.get(key)
        if expected is None:
            expected = await self.reader.first_offset(tp)
        if record.offset > expected:
            await self._handle_skipped(tp, expected, record.offset, handle)
        await handle(record.value, record.headers)
        if record.offset >= expected:
            self.expected[key] = record.offset + 1

    async def _handle_skipped(self, tp: TopicPartition, start: int, end: int, handle: Handle) -> None:
        log.warning(
            "records skipped by the consumer; reading them again",
            extra={
                "fields": {
                    "agent": self.agent,
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "from_offset": start,
                    "to_offset": end,
                }
            },
        )
        async for skipped in self.reader.read(tp, start, end):
            SKIPPED.labels(self.agent).inc()
            await handle(skipped.value, skipped.headers)


class KafkaPartitionReader:
    """Reads offset ranges with a consumer of its own: no group, nothing committed; started for
    one range and stopped after it (skipped records are rare)."""

    def __init__(self, options: dict[str, Any], earliest: Callable[[TopicPartition], Awaitable[int]]) -> None:
        self.options = options
        self.earliest = earliest

    async def first_offset(self, tp: TopicPartition) -> int:
        return await self.earliest(tp)

    async def read(self, tp: TopicPartition, start: int, end: int) -> AsyncIterator[DeliveredRecord]:
        consumer = AIOKafkaConsumer(**self.options, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    if record.offset < end:
                        yield record
        finally:
            await consumer.stop()


def skipped_records(app: faust.App, agent: str, table: str, settings: ServiceSettings) -> SkippedRecords:
    """The agent's record of expected offsets as the faust table ``table``, read again with the
    service's own Kafka login."""

    async def earliest(tp: TopicPartition) -> int:
        return int((await app.consumer.earliest_offsets(tp))[tp])

    expected = app.Table(table, partitions=settings.topic_partitions)
    return SkippedRecords(agent, expected, KafkaPartitionReader(client_options(settings), earliest))
