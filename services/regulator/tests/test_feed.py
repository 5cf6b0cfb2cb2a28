"""The feed's cursor (opaque, versioned, refused naming ``cursor`` when malformed or foreign), its
suppression of copies by ce_id within a partition's window, and the reader over a fake log:
resuming spares the same copies as reading on, LATEST sends only what comes after, and a
partition that appears later is read from its start; it is ready once its start is fixed."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from libs.common.errors import InvalidArgument
from libs.common.events import EventEnvelope
from services.regulator.feed import (
    DEDUPE_WINDOW,
    FeedEvent,
    FeedReader,
    Positions,
    RecentIds,
    Start,
    decode_cursor,
    encode_cursor,
)

ORDERS = "jiazheng.regulator.orders.v1"
CASES = "jiazheng.regulator.complaints.v1"
TOPICS = (ORDERS, CASES)


def _token(raw: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()


def test_a_cursor_gives_back_the_positions_it_was_made_of() -> None:
    positions = {TopicPartition(ORDERS, 0): 12, TopicPartition(ORDERS, 2): 0, TopicPartition(CASES, 1): 7}

    token = encode_cursor(positions)

    assert decode_cursor(token, TOPICS) == positions
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "token",
    [
        "not a cursor!",
        "e30",  # {} : no version
        _token({"v": 2, "p": {}}),
        _token({"v": 1, "p": []}),
        _token({"v": 1, "p": {ORDERS: [1, 2]}}),
        _token({"v": 1, "p": {ORDERS: {"0": -1}}}),
        _token({"v": 1, "p": {ORDERS: {"0": True}}}),
        _token({"v": 1, "p": {ORDERS: {"x": 1}}}),
        _token({"v": 1, "p": {ORDERS: {"0": "3"}}})[:-2],
        base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
    ],
)
def test_a_malformed_cursor_is_invalid_naming_the_cursor(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        decode_cursor(token, TOPICS)

    assert raised.value.field == "cursor"


def test_a_cursor_of_other_topics_is_invalid_naming_them() -> None:
    token = encode_cursor({TopicPartition(CASES, 0): 3})

    with pytest.raises(InvalidArgument) as raised:
        decode_cursor(token, [ORDERS])

    assert raised.value.field == "cursor"
    assert CASES in raised.value.description


def test_a_cursor_of_fewer_topics_than_subscribed_is_accepted() -> None:
    assert decode_cursor(encode_cursor({TopicPartition(ORDERS, 1): 4}), TOPICS) == {
        TopicPartition(ORDERS, 1): 4
    }


def test_an_id_seen_within_the_window_is_a_copy_and_beyond_it_is_not() -> None:
    recent = RecentIds(window=3)

    firsts = [recent.is_copy(0, "a"), recent.is_copy(1, "b")]
    within = recent.is_copy(3, "a")  # offset 0 is 3 before
    beyond = recent.is_copy(5, "b")  # offset 1 is 4 before

    assert firsts == [False, False]
    assert within is True
    assert beyond is False


def test_a_copy_remembered_again_keeps_its_id_until_its_last_record_leaves_the_window() -> None:
    recent = RecentIds(window=2)
    recent.is_copy(0, "a")
    recent.is_copy(1, "a")

    assert recent.is_copy(3, "a") is True  # offset 0 has left, offset 1 is still 2 before
    assert recent.is_copy(6, "a") is False


# The reader over a fake log.


def _record(tp: TopicPartition, offset: int, event_id: str) -> ConsumerRecord[bytes, bytes]:
    envelope = EventEnvelope(
        id=event_id,
        type="jiazheng.orders.events.v1.OrderPlaced",
        source="/jiazheng/regulator",
        subject=f"orders/o-{event_id}",
        time=datetime(2026, 11, 30, 8, tzinfo=UTC),
        data=json.dumps({"district": "110105"}).encode(),
    )
    value = envelope.data
    return ConsumerRecord(
        tp.topic,
        tp.partition,
        offset,
        0,
        0,
        envelope.key,
        value,
        None,
        0,
        len(value),
        envelope.kafka_headers(),
    )


class FakeLog:
    """Partitions of records (their ce_ids) read as a consumer without a group reads them."""

    def __init__(self, ids: Mapping[TopicPartition, list[str]]) -> None:
        self.ids = {tp: list(v) for tp, v in ids.items()}
        self._at: Positions = {}
        self.calls: list[str] = []

    async def discover(self) -> set[TopicPartition]:
        return set(self.ids)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._at = {tp: self._at.get(tp, 0) for tp in partitions}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._at[partition] = offset

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.calls.append("end_offsets")
        return {tp: len(self.ids[tp]) for tp in partitions}

    async def getmany(self, *, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        batch = {}
        for tp, at in self._at.items():
            records = [_record(tp, o, i) for o, i in enumerate(self.ids[tp][at : at + 700], start=at)]
            if records:
                batch[tp] = records
                self._at[tp] = at + len(records)
        if not batch:
            await asyncio.sleep(0.001)
        return batch


async def _no_one_waits() -> None:
    pass


def _reader(
    log: FakeLog,
    resume: Positions | None = None,
    start: Start = Start.EARLIEST,
    ready: Callable[[], Awaitable[None]] = _no_one_waits,
) -> FeedReader:
    return FeedReader(log, log.discover, resume, start, ready, refresh_s=0.01)


class Subscriber:
    """Reads a reader's events in a task of its own, as a client reads a stream."""

    def __init__(self, reader: FeedReader) -> None:
        self.received: list[tuple[FeedEvent, str]] = []
        self._task = asyncio.create_task(self._read(reader.events()))

    async def _read(self, events: AsyncIterator[tuple[FeedEvent, str]]) -> None:
        async for item in events:
            self.received.append(item)

    async def settled(self) -> list[tuple[FeedEvent, str]]:
        """What it received once nothing more comes for a while."""
        count = -1
        while count != len(self.received):
            count = len(self.received)
            await asyncio.sleep(0.1)
        return self.received

    def ids(self) -> list[str]:
        return [e.id for e, _ in self.received]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def subscribers() -> AsyncIterator[list[Subscriber]]:
    started: list[Subscriber] = []
    yield started
    for s in started:
        await s.close()


def _subscribe(subscribers: list[Subscriber], reader: FeedReader) -> Subscriber:
    subscribers.append(Subscriber(reader))
    return subscribers[-1]


P0 = TopicPartition(ORDERS, 0)


async def test_each_event_carries_the_cursor_after_it_and_copies_are_not_sent(
    subscribers: list[Subscriber],
) -> None:
    log = FakeLog({P0: ["a", "b", "a", "c"]})

    taken = await _subscribe(subscribers, _reader(log)).settled()

    assert [e.id for e, _ in taken] == ["a", "b", "c"]
    assert [decode_cursor(c, TOPICS) for _, c in taken] == [{P0: 1}, {P0: 2}, {P0: 4}]
    assert taken[0][0] == FeedEvent(
        "a",
        "jiazheng.orders.events.v1.OrderPlaced",
        ORDERS,
        "orders/o-a",
        datetime(2026, 11, 30, 8, tzinfo=UTC),
        '{"district": "110105"}',
    )


async def test_resuming_from_a_cursor_sends_what_follows_and_spares_a_copy_of_what_came_before(
    subscribers: list[Subscriber],
) -> None:
    filler = [f"x{n}" for n in range(DEDUPE_WINDOW - 2)]
    log = FakeLog({P0: ["a", *filler, "b", "a", "c"]})  # the copy of "a" is DEDUPE_WINDOW after it
    whole = await _subscribe(subscribers, _reader(log)).settled()
    cursor_after_b = whole[DEDUPE_WINDOW - 1][1]

    resumed = await _subscribe(subscribers, _reader(log, decode_cursor(cursor_after_b, TOPICS))).settled()

    assert [e.id for e, _ in whole[-2:]] == ["b", "c"]
    assert [e.id for e, _ in resumed] == ["c"]


async def test_a_copy_further_back_than_the_window_is_sent_again(subscribers: list[Subscriber]) -> None:
    log = FakeLog({P0: ["a", *(f"x{n}" for n in range(DEDUPE_WINDOW)), "a"]})

    resumed = _subscribe(subscribers, _reader(log, {P0: DEDUPE_WINDOW + 1}))

    await resumed.settled()
    assert resumed.ids() == ["a"]


async def test_latest_sends_only_what_is_published_after_the_call(subscribers: list[Subscriber]) -> None:
    log = FakeLog({P0: ["a", "b"]})
    subscriber = _subscribe(subscribers, _reader(log, start=Start.LATEST))
    assert await subscriber.settled() == []

    log.ids[P0] += ["b", "c"]

    assert [(e.id, decode_cursor(c, TOPICS)) for e, c in await subscriber.settled()] == [("c", {P0: 4})]


async def test_it_is_ready_once_its_start_is_fixed_and_sends_what_is_published_from_then_on(
    subscribers: list[Subscriber],
) -> None:
    log = FakeLog({P0: ["a", "b"]})

    async def ready() -> None:
        log.calls.append("ready")
        log.ids[P0].append("c")

    subscriber = _subscribe(subscribers, _reader(log, start=Start.LATEST, ready=ready))

    assert [e.id for e, _ in await subscriber.settled()] == ["c"]
    assert log.calls == ["end_offsets", "ready"]


async def test_a_partition_that_appears_later_is_read_from_its_start_and_joins_the_cursor(
    subscribers: list[Subscriber],
) -> None:
    log = FakeLog({P0: ["a"]})
    subscriber = _subscribe(subscribers, _reader(log, start=Start.LATEST))
    assert await subscriber.settled() == []
    later = TopicPartition(CASES, 0)

    log.ids[later] = ["k1", "k2"]

    taken = await subscriber.settled()
    assert [e.id for e, _ in taken] == ["k1", "k2"]
    assert decode_cursor(taken[-1][1], TOPICS) == {P0: 1, later: 2}
