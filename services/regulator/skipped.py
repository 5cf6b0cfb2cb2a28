"""Records faust acknowledged without handing them to the agent, read again and handled.

faust-streaming 0.15 can acknowledge records its agent never received. When a worker joins its
group, a record fetched while the tables recover is delivered only after recovery has sought the
partition back to its committed offset; faust then takes the offsets between the committed one and
that record's as a gap (as it would for compacted records), commits past them, and drops them when
they are fetched again. The regulator's kill/restart test lost such runs of records before this.

So each agent keeps, per source partition, the offset of the next record it expects, in a table
(recovered with the others after a restart). A record past that offset means records were skipped:
they are read straight from Kafka, with a consumer of their own, and handled first, in order;
faust is then told they are done (as a gap of its own), or its committed offset would stay
before them for good when it had not counted them as a gap itself.

When the skipped records are the last of their partition, no later record comes to reveal them.
So a timer also compares, every few seconds, the offset faust committed for each partition with
the one the agent expects: faust commits only what the agent acknowledged, after handling it, so a
committed offset past the expected one means records were skipped. Seen twice in a row with no
progress (not in the middle of a delivery, not while recovering), faust's consumer is sought back
to the expected offset, and those records reach the agent again.

The same timer repairs the opposite: faust's committed offset staying behind the expected one. Its
commits advance only over a consecutive run of acknowledged offsets, and records it never delivered
(dropped at a seek or a rebalance, or read again here) can leave a hole no gap covers; its group's
lag then never drains and a restart re-reads from there. Every offset before the expected one has
been handled, so a committed offset seen behind it, unchanged, at two checks in a row, is moved to
the expected one (a commit of our own, between faust's).

Handling is idempotent (the projection's table of published ids, the indicators' table of counted
ids), so a record that reaches the agent twice changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.exceptions import PartitionsMismatch
from faust.types import TP as FaustTP
from mode.utils.futures import notify
from prometheus_client import Counter

from libs.common.kafka import client_options
from services.regulator.stall import BrokerOffsets, HandledOffsets, ProgressCheck, StallWatch, exit_stalled

if TYPE_CHECKING:  # the composition root imports this module
    from services.regulator.app import RegulatorSettings

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
STALLED = Counter(
    "jz_regulator_stalled_commits_total",
    "Times a partition's committed offset stayed behind records the agent had handled and was moved on",
    ["agent"],
)
REWIND_CHECK_S = 5.0
CHANGELOG_WAIT_S = 1.0

Handle = Callable[[bytes | None, Any], Awaitable[None]]
Watched = tuple[Collection[str], BrokerOffsets]
"""An agent's source topics, and where their partitions' offsets are asked for."""


class ExpectedOffsets(HandledOffsets, Protocol):
    """An agent's expected offsets as ``deliver`` moves them."""

    def __setitem__(self, key: str, value: int, /) -> None: ...


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

    async def mark_handled(self, tp: TopicPartition, start: int, end: int) -> None: ...

    async def commit(self, tp: TopicPartition, offset: int) -> None: ...

    def changelogs_pending(self) -> bool: ...


class SkippedRecords:
    """Hands an agent every record of its partitions in order, skipped ones included."""

    def __init__(
        self,
        agent: str,
        expected: ExpectedOffsets,
        reader: PartitionReader,
        consumer: GroupConsumer | None = None,
        durable: HandledOffsets | None = None,
    ) -> None:
        self.agent = agent
        self.expected = expected  # "<topic>/<partition>" -> the next offset the agent expects
        # What the checks compare with faust's commits: for an agent that writes in batches, the
        # expected offsets its last committed batch wrote (a commit must never pass uncommitted work).
        self.durable = expected if durable is None else durable
        self.reader = reader
        self.consumer = consumer  # None: no group to tell or check (a reader on its own)
        self._gaps: list[tuple[TopicPartition, int, int]] = []  # read again, not yet told to faust
        self._suspects: dict[str, int] = {}  # key -> expected offset when committed was past it
        self._stalled: dict[str, int] = {}  # key -> committed offset when it was behind the expected one

    async def check_commits(self) -> None:
        """Compare each partition's committed offset with the expected one: seek back to records
        committed without being delivered, or commit what was handled when faust's commits stall."""
        consumer = self.consumer
        if consumer is None:
            return
        for tp in consumer.assigned():
            key = f"{tp.topic}/{tp.partition}"
            expected, committed = self.durable.get(key), consumer.committed(tp)
            if expected is None or committed is None or committed == expected:
                self._suspects.pop(key, None)
                self._stalled.pop(key, None)
            elif committed > expected:
                self._stalled.pop(key, None)
                await self._rewind_if_still_past(consumer, tp, key, expected)
            else:
                self._suspects.pop(key, None)
                await self._commit_if_stalled(consumer, tp, key, committed, expected)

    async def _rewind_if_still_past(
        self, consumer: GroupConsumer, tp: TopicPartition, key: str, expected: int
    ) -> None:
        if self._suspects.get(key) != expected:  # once may be a delivery under way
            self._suspects[key] = expected
            return
        del self._suspects[key]
        log.warning(
            "records committed but never delivered; seeking back to them",
            extra={"fields": {"agent": self.agent, "partition": key, "from_offset": expected}},
        )
        REWOUND.labels(self.agent).inc()
        await consumer.seek(tp, expected)

    async def _commit_if_stalled(
        self, consumer: GroupConsumer, tp: TopicPartition, key: str, committed: int, expected: int
    ) -> None:
        if self._stalled.get(key) != committed:  # faust may still be on its way there
            self._stalled[key] = committed
            return
        del self._stalled[key]
        log.warning(
            "committed offset stalled behind handled records; committing them",
            extra={
                "fields": {
                    "agent": self.agent,
                    "partition": key,
                    "from_offset": committed,
                    "to_offset": expected,
                }
            },
        )
        STALLED.labels(self.agent).inc()
        await consumer.commit(tp, expected)

    async def deliver(self, record: DeliveredRecord, handle: Handle) -> None:
        """Handle ``record`` (and any skipped before it). A table written before the broker's
        metadata shows its changelog topic (a fresh group's topics were just created) makes faust
        raise PartitionsMismatch, which would crash the agent: the record is handled again once the
        changelogs are known (handling is idempotent)."""
        waited = 0.0
        while True:
            try:
                await self._deliver(record, handle)
                return await self._mark_gaps()
            except PartitionsMismatch:
                if self.consumer is None or not self.consumer.changelogs_pending():
                    raise
                if waited % 10 == 0:
                    log.warning(
                        "changelog topics not in the metadata yet; waiting to handle the record",
                        extra={"fields": {"agent": self.agent, "waited_s": waited}},
                    )
                await asyncio.sleep(CHANGELOG_WAIT_S)
                waited += CHANGELOG_WAIT_S

    async def _deliver(self, record: DeliveredRecord, handle: Handle) -> None:
        tp = TopicPartition(record.topic, record.partition)
        key = f"{record.topic}/{record.partition}"
        expected = self.expected.get(key)
        if expected is None:
            expected = await self.reader.first_offset(tp)
        if record.offset > expected:
            await self._handle_skipped(tp, key, expected, record.offset, handle)
        await handle(record.value, record.headers)
        if record.offset >= expected:
            self.expected[key] = record.offset + 1

    async def _handle_skipped(
        self, tp: TopicPartition, key: str, start: int, end: int, handle: Handle
    ) -> None:
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
            self.expected[key] = skipped.offset + 1  # progress, for the commit and stall checks
        self._gaps.append((tp, start, end))

    async def deliver_batch(
        self, records: Iterable[DeliveredRecord], handle: Handle, commit: Callable[[], Awaitable[None]]
    ) -> None:
        """Handle ``records`` (and any skipped before them) for an agent that writes in batches,
        then ``commit`` the batch. faust hears of the records read again only after the commit:
        told before, it could commit past them while their effects were still uncommitted."""
        try:
            for record in records:
                await self._deliver(record, handle)
            await commit()
        except BaseException:
            self._gaps.clear()  # nothing of the batch counts: its records will be read again
            raise
        await self._mark_gaps()

    async def _mark_gaps(self) -> None:
        """Tell faust of the records read again: it never saw them, and unless told it commits no
        further."""
        gaps, self._gaps = self._gaps, []
        if self.consumer is not None:
            for tp, start, end in gaps:
                await self.consumer.mark_handled(tp, start, end)


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

    def recovering(self) -> bool:
        return bool(getattr(self.app, "in_recovery", False))

    def committed(self, tp: TopicPartition) -> int | None:
        # faust's own record of what it committed (no public accessor): no call to the broker.
        committed: Mapping[Any, int] = self.app.consumer._committed_offset  # type: ignore[attr-defined]
        return committed.get(FaustTP(tp.topic, tp.partition))

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        await self.app.consumer.seek(FaustTP(tp.topic, tp.partition), offset)

    async def mark_handled(self, tp: TopicPartition, start: int, end: int) -> None:
        """Count ``start``..``end - 1`` as done, as faust counts the gaps it finds itself: without
        this its committed offset stays before them for good (their offsets are never acked)."""
        await self.app.consumer._add_gap(FaustTP(tp.topic, tp.partition), start, end - 1)  # type: ignore[attr-defined]

    def describe(self) -> dict[str, Any]:
        """What faust's consumer says of its flow, for the log line of a stall."""
        consumer = self.app.consumer
        return {
            "flow_active": consumer.flow_active,  # type: ignore[attr-defined]
            "paused": sorted(str(tp) for tp in consumer._paused_partitions),  # type: ignore[attr-defined]
            "buffered": sorted(str(tp) for tp in consumer._buffered_partitions),  # type: ignore[attr-defined]
            "assigned": len(consumer.assignment()),
            "generation": self.app.consumer_generation_id,
            "rebalancing": self.app.rebalancing,
        }

    def changelogs_pending(self) -> bool:
        """Whether a table's changelog topic is missing from the consumer's metadata (no partitions)."""
        consumer = self.app.consumer
        return any(
            not consumer.topic_partitions(table.changelog_topic.get_topic_name())
            for table in self.app.tables.values()
        )

    async def commit(self, tp: TopicPartition, offset: int) -> None:
        """Commit ``offset`` as faust commits (its changelogs flushed first), holding faust's own
        commit turn so that no commit of its computed before ours lands after it."""
        consumer = self.app.consumer
        if await consumer.maybe_wait_for_commit_to_finish():  # type: ignore[attr-defined]
            return  # faust just committed: the next check looks again
        faust_tp = FaustTP(tp.topic, tp.partition)
        if (self.committed(tp) or 0) >= offset:
            return
        consumer._commit_fut = asyncio.Future()  # type: ignore[attr-defined]
        try:
            await consumer._commit_offsets({faust_tp: offset})  # type: ignore[attr-defined]
        finally:
            fut, consumer._commit_fut = consumer._commit_fut, None  # type: ignore[attr-defined]
            notify(fut)


def skipped_records(
    app: faust.App,
    agent: str,
    expected: ExpectedOffsets,
    settings: RegulatorSettings,
    watched: Watched,
    durable: HandledOffsets | None = None,
) -> SkippedRecords:
    """The agent's record of ``expected`` offsets (a faust table, or the batched view of one with
    its ``durable`` part), read again with the service's own Kafka login, and checked by a timer
    against the committed offsets and for a stall (stall.py) on the agent's ``watched`` topics."""

    async def earliest(tp: TopicPartition) -> int:
        return int((await app.consumer.earliest_offsets(tp))[tp])

    reader = KafkaPartitionReader(client_options(settings), earliest)
    consumer = FaustGroupConsumer(app)
    records = SkippedRecords(agent, expected, reader, consumer, durable)
    topics, offsets = watched
    progress = ProgressCheck(
        agent,
        frozenset(topics),
        settings.topic_partitions,
        records.durable,
        consumer,
        offsets,
        StallWatch(settings.stall_s),
        exit_stalled,
        time.monotonic,
        settings.recovery_stall_s,
    )

    async def commit_check() -> None:
        await records.check_commits()
        await progress.check()

    app.timer(interval=REWIND_CHECK_S, name=f"{agent}-commit-check")(commit_check)
    return records
