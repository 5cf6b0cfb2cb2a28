"""Records faust acknowledged without delivering them reach the agent anyway, in order, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition
from faust.exceptions import PartitionsMismatch

from services.regulator import skipped
from services.regulator.skipped import DeliveredRecord, SkippedRecords

TOPIC = "jiazheng.workers.events.v1"


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: Any = ()


class FakePartitions:
    """A partition log of records ``first``, ``first + 1``... (values name their offsets)."""

    def __init__(self, first: int = 0, last: int = 100) -> None:
        self.first = first
        self.log = {o: FakeRecord(TOPIC, 1, o, f"r{o}".encode()) for o in range(first, last + 1)}
        self.reads: list[tuple[int, int]] = []

    async def first_offset(self, tp: TopicPartition) -> int:
        return self.first

    async def read(self, tp: TopicPartition, start: int, end: int) -> AsyncIterator[DeliveredRecord]:
        self.reads.append((start, end))
        for offset in range(start, end):
            yield self.log[offset]


class Agent:
    def __init__(self) -> None:
        self.handled: list[bytes | None] = []

    async def handle(self, value: bytes | None, headers: Any) -> None:
        self.handled.append(value)


def _values(*offsets: int) -> list[bytes | None]:
    return [f"r{o}".encode() for o in offsets]


async def _deliver(records: SkippedRecords, log: FakePartitions, agent: Agent, *offsets: int) -> None:
    for offset in offsets:
        await records.deliver(log.log[offset], agent.handle)


async def test_records_delivered_in_order_are_handled_and_nothing_is_read_again() -> None:
    log, agent = FakePartitions(first=5), Agent()
    records = SkippedRecords("agent", {}, log)

    await _deliver(records, log, agent, 5, 6, 7)

    assert agent.handled == _values(5, 6, 7)
    assert log.reads == []


async def test_records_skipped_between_two_delivered_are_read_and_handled_first() -> None:
    log, agent = FakePartitions(), Agent()
    expected: dict[str, int] = {}
    records = SkippedRecords("agent", expected, log)

    await _deliver(records, log, agent, 0, 1, 5, 6)

    assert agent.handled == _values(0, 1, 2, 3, 4, 5, 6)
    assert log.reads == [(2, 5)]
    assert expected == {f"{TOPIC}/1": 7}


async def test_each_record_read_again_moves_the_expected_offset_as_it_is_handled() -> None:
    """A long run read again shows progress record by record (the stall check watches it), and a
    crash in its middle resumes after the last one handled."""
    log, expected = FakePartitions(), {f"{TOPIC}/1": 2}
    records = SkippedRecords("agent", expected, log)
    seen: list[int | None] = []

    async def handle(value: bytes | None, headers: Any) -> None:
        seen.append(expected.get(f"{TOPIC}/1"))

    await records.deliver(log.log[6], handle)

    assert seen == [2, 3, 4, 5, 6]
    assert expected == {f"{TOPIC}/1": 7}


async def test_records_skipped_before_the_first_one_delivered_are_read_from_the_partition_start() -> None:
    log, agent = FakePartitions(first=10), Agent()
    records = SkippedRecords("agent", {}, log)

    await _deliver(records, log, agent, 13)

    assert agent.handled == _values(10, 11, 12, 13)


async def test_a_record_delivered_again_after_a_restart_is_handled_and_moves_nothing_back() -> None:
    """Redelivery from the committed offset: the handler's own idempotence (by event id) applies."""
    log, agent = FakePartitions(), Agent()
    expected = {f"{TOPIC}/1": 9}  # recovered from the table's changelog
    records = SkippedRecords("agent", expected, log)

    await _deliver(records, log, agent, 7, 8, 9)

    assert agent.handled == _values(7, 8, 9)
    assert log.reads == []
    assert expected == {f"{TOPIC}/1": 10}


class FakeGroupConsumer:
    """faust's consumer as the rewind check sees it: committed offsets it can be told, and seeks."""

    def __init__(self) -> None:
        self.committed_offsets: dict[TopicPartition, int] = {}
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.marked: list[tuple[TopicPartition, int, int]] = []
        self.commits: list[tuple[TopicPartition, int]] = []
        self.pending_checks = 0

    def assigned(self) -> list[TopicPartition]:
        return list(self.committed_offsets)

    def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets.get(tp)

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def mark_handled(self, tp: TopicPartition, start: int, end: int) -> None:
        self.marked.append((tp, start, end))

    async def commit(self, tp: TopicPartition, offset: int) -> None:
        self.commits.append((tp, offset))
        self.committed_offsets[tp] = offset

    def changelogs_pending(self) -> bool:
        """Pending for the next ``pending_checks`` questions (the metadata arrives meanwhile)."""
        if self.pending_checks:
            self.pending_checks -= 1
            return True
        return False


async def test_the_last_records_committed_but_never_delivered_are_sought_back_to() -> None:
    log, agent, consumer = FakePartitions(), Agent(), FakeGroupConsumer()
    records = SkippedRecords("test", {}, log, consumer)
    await _deliver(records, log, agent, 0, 1, 2)
    tp = TopicPartition(TOPIC, 1)
    consumer.committed_offsets[tp] = 7  # faust committed 3..6 as a gap: the agent never saw them
    await records.check_commits()
    assert consumer.seeks == []  # once may be a delivery under way
    await records.check_commits()
    assert consumer.seeks == [(tp, 3)]
    await _deliver(records, log, agent, 3, 4, 5, 6)  # what the seek brings
    await records.check_commits()
    await records.check_commits()
    assert consumer.seeks == [(tp, 3)]
    assert agent.handled == _values(0, 1, 2, 3, 4, 5, 6)


async def test_committed_offsets_not_past_the_expected_one_or_progress_between_checks_seek_nothing() -> None:
    log, agent, consumer = FakePartitions(), Agent(), FakeGroupConsumer()
    records = SkippedRecords("test", {}, log, consumer)
    tp = TopicPartition(TOPIC, 1)
    consumer.committed_offsets[tp] = 2
    await records.check_commits()  # nothing delivered yet: nothing to compare
    await _deliver(records, log, agent, 0, 1, 2)
    for committed in (3, 2, 5):  # caught up, behind, then past while the agent moves on
        consumer.committed_offsets[tp] = committed
        await records.check_commits()
        if committed == 5:
            await _deliver(records, log, agent, 3)
    await records.check_commits()
    assert consumer.seeks == []
    assert consumer.commits == []


async def test_a_committed_offset_stalled_behind_handled_records_is_moved_to_the_expected_one() -> None:
    log, agent, consumer = FakePartitions(), Agent(), FakeGroupConsumer()
    records = SkippedRecords("test", {}, log, consumer)
    tp = TopicPartition(TOPIC, 1)
    await _deliver(records, log, agent, 0, 1, 2, 3)
    consumer.committed_offsets[tp] = 1  # faust's commits stopped at a hole it left itself
    await records.check_commits()
    assert consumer.commits == []  # once may be faust on its way
    await _deliver(records, log, agent, 4)
    await records.check_commits()
    assert consumer.commits == [(tp, 5)]  # everything before the expected offset was handled
    await records.check_commits()
    await records.check_commits()
    assert consumer.commits == [(tp, 5)]
    assert consumer.seeks == []


async def test_records_read_again_are_marked_done_for_the_group_so_its_commits_move_on() -> None:
    log, agent, consumer = FakePartitions(), Agent(), FakeGroupConsumer()
    records = SkippedRecords("test", {}, log, consumer)
    await _deliver(records, log, agent, 0, 1, 5)
    assert consumer.marked == [(TopicPartition(TOPIC, 1), 2, 5)]
    assert agent.handled == _values(0, 1, 2, 3, 4, 5)


class TableNotReady(Agent):
    """An agent whose table write fails while the consumer's metadata lacks the changelogs."""

    def __init__(self, consumer: FakeGroupConsumer) -> None:
        super().__init__()
        self.consumer = consumer

    async def handle(self, value: bytes | None, headers: Any) -> None:
        if self.consumer.pending_checks:
            raise PartitionsMismatch("changelog topic has 0 partitions")
        await super().handle(value, headers)


async def test_a_record_whose_table_has_no_changelog_in_the_metadata_yet_is_handled_once_it_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(skipped, "CHANGELOG_WAIT_S", 0.0)
    log, consumer = FakePartitions(), FakeGroupConsumer()
    agent = TableNotReady(consumer)
    records = SkippedRecords("test", {}, log, consumer)
    consumer.pending_checks = 3
    await _deliver(records, log, agent, 0, 1)
    assert agent.handled == _values(0, 1)
    assert consumer.pending_checks == 0


async def test_a_real_partition_mismatch_still_crashes_the_agent() -> None:
    log, consumer = FakePartitions(), FakeGroupConsumer()
    records = SkippedRecords("test", {}, log, consumer)

    async def mismatched(value: bytes | None, headers: Any) -> None:
        raise PartitionsMismatch("changelog topic has 2 partitions")

    with pytest.raises(PartitionsMismatch):
        await records.deliver(log.log[0], mismatched)


async def test_a_batch_writing_agent_tells_the_group_of_records_read_again_only_after_its_commit() -> None:
    log, agent, consumer = FakePartitions(), Agent(), FakeGroupConsumer()
    records = SkippedRecords("test", {}, log, consumer)
    marked_at_commit: list[list[tuple[TopicPartition, int, int]]] = []

    async def commit() -> None:
        marked_at_commit.append(list(consumer.marked))

    await records.deliver_batch([log.log[0], log.log[1], log.log[5]], agent.handle, commit)

    assert agent.handled == _values(0, 1, 2, 3, 4, 5)
    assert marked_at_commit == [[]]
    assert consumer.marked == [(TopicPartition(TOPIC, 1), 2, 5)]


async def test_the_commit_checks_read_the_committed_expected_offsets_not_those_of_the_open_batch() -> None:
    """Committing the open batch's offsets for faust would let a crash lose that batch's records."""
    log, agent, consumer = FakePartitions(), Agent(), FakeGroupConsumer()
    moved: dict[str, int] = {}
    committed = {f"{TOPIC}/1": 2}
    records = SkippedRecords("test", moved, log, consumer, committed)
    tp = TopicPartition(TOPIC, 1)
    await _deliver(records, log, agent, 0, 1, 2, 3, 4)  # moved to 5; committed still says 2
    consumer.committed_offsets[tp] = 2

    for _ in range(3):
        await records.check_commits()

    assert moved == {f"{TOPIC}/1": 5}
    assert consumer.commits == []
    assert consumer.seeks == []


async def test_records_read_again_in_a_batch_that_failed_to_commit_are_never_told_to_the_group() -> None:
    log, agent, consumer = FakePartitions(), Agent(), FakeGroupConsumer()
    records = SkippedRecords("test", {}, log, consumer)

    async def failing() -> None:
        raise ConnectionError("the broker went away")

    with pytest.raises(ConnectionError):
        await records.deliver_batch([log.log[0], log.log[4]], agent.handle, failing)

    async def committed() -> None:
        pass

    await records.deliver_batch([log.log[5]], agent.handle, committed)
    assert consumer.marked == []
