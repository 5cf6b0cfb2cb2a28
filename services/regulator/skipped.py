"""Records faust acknowledged without handing them to the agent, read again and handled.

faust-streaming 0.15 can acknowledge records its agent never received. When a worker joins its
group, a record fetched while the tables recover is delivered only after recovery has sought the
partition back to its committed offset; faust then takes the offsets between the committed one and
that record's as a gap (as it would for compacted records), commits past them, and drops them when
they are fetched again. The regulator's kill/restart test lost such runs of records before this.

So each agent keeps, per source partition, the offset of the next record it expects, in a table
(recovered with the others after a restart). A record past that offset means records were skipped:
they are read straight from Kafka, with a consumer of their own, and handled first, in order.

When the skipped records are the last of their partition, no later record comes to reveal them.
So a timer also compares, every few seconds, the offset faust committed for each partition with
the one the agent expects: faust commits only what the agent acknowledged, after handling it, so a
committed offset past the expected one means records were skipped. Seen twice in a row with no
progress (not in the middle of a delivery, not while recovering), faust's consumer is sought back
to the expected offset, and those records reach the agent again.

Handling is idempotent (the projection's table of published ids, the indicators' table of counted
ids), so a record that reaches the agent twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP as FaustTP
from prometheus_client import Counter

from libs.common.kafka import client_options
from libs.common.settings import ServiceSettings

log = logging.getLogger(__name__)

SKIPPED = Counter(
    "jz_regulator_skipped_records_total",
    "Records faust acknowledged without delivering them, read again by the agent",
    ["agent"],
)

REWOUND = Counter(
    "jz_regulator_rewound_partitions_total",
    "Times a partition's consumer was sought back to records faust committed without delivering",
    ["agent"],
)
REWIND_CHECK_S = 5.0

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


class GroupConsumer(Protocol):
    """What the rewind check needs of faust's consumer."""

    def assigned(self) -> Iterable[TopicPartition]: ...

    def committed(self, tp: TopicPartition) -> int | None: ...

    async def seek(self, tp: TopicPartition, offset: int) -> None: ...


class SkippedRecords:
    """Hands an agent every record of its partitions in order, skipped ones included."""

    def __init__(self, agent: str, expected: MutableMapping[str, int], reader: PartitionReader) -> None:
        self.agent = agent
        self.expected = expected  # "<topic>/<partition>" -> the next offset the agent expects
        self.reader = reader
        self._suspects: dict[str, int] = {}  # key -> expected offset when committed was past it

    async def rewind_if_skipped(self, consumer: GroupConsumer) -> None:
        """Seek back each partition whose committed offset has stayed past the expected one since
        the previous check (records faust committed without delivering, none after them)."""
        for tp in consumer.assigned():
            key = f"{tp.topic}/{tp.partition}"
            expected, committed = self.expected.get(key), consumer.committed(tp)
            if expected is None or committed is None or committed <= expected:
                self._suspects.pop(key, None)
            elif self._suspects.get(key) != expected:
                self._suspects[key] = expected
            else:
                del self._suspects[key]
                log.warning(
                    "records committed but never delivered; seeking back to them",
                    extra={"fields": {"agent": self.agent, "partition": key, "from_offset": expected}},
                )
                REWOUND.labels(self.agent).inc()
                await consumer.seek(tp, expected)

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


class FaustGroupConsumer:
    """faust's consumer as the rewind check sees it: the offsets it committed are its own state."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    def assigned(self) -> Iterable[TopicPartition]:
        if self.app.rebalancing or getattr(self.app, "in_recovery", False):  # set by its first recovery
            return []
        return [TopicPartition(tp.topic, tp.partition) for tp in self.app.consumer.assignment()]

    def committed(self, tp: TopicPartition) -> int | None:
        # faust's own record of what it committed (no public accessor): no call to the broker.
        committed: Mapping[Any, int] = self.app.consumer._committed_offset  # type: ignore[attr-defined]
        return committed.get(FaustTP(tp.topic, tp.partition))

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        await self.app.consumer.seek(FaustTP(tp.topic, tp.partition), offset)


def skipped_records(app: faust.App, agent: str, table: str, settings: ServiceSettings) -> SkippedRecords:
    """The agent's record of expected offsets as the faust table ``table``, read again with the
    service's own Kafka login, and checked against the committed offsets by a timer."""

    async def earliest(tp: TopicPartition) -> int:
        return int((await app.consumer.earliest_offsets(tp))[tp])

    expected = app.Table(table, partitions=settings.topic_partitions)
    records = SkippedRecords(agent, expected, KafkaPartitionReader(client_options(settings), earliest))
    consumer = FaustGroupConsumer(app)

    async def rewind_check() -> None:
        await records.rewind_if_skipped(consumer)

    app.timer(interval=REWIND_CHECK_S, name=f"{agent}-rewind-check")(rewind_check)
    return records
