"""The regulator feed (docs/regulators.md, "The feed"): the regulator topics read for one subscriber,
from a cursor, with copies of an event suppressed.

The **cursor** is an opaque, versioned token: base64url (no padding) of the JSON
``{"v": 1, "p": {"<topic>": {"<partition>": <next offset>}}}`` over every partition of the
subscribed topics. The reader assigns those partitions itself (no consumer group: each subscriber
is on its own) and reads each from the cursor's offset, or, without one, from its start or its
end; a partition that appears later (a topic created, partitions added) is read from its start.
Once every partition's starting offset is fixed the reader says so (``ready``): from then on, a
record published is one the subscriber will get, so a client of ``LATEST`` can tell when "from
now on" began.

A record is a **copy** when its ``ce_id`` was on a record of the ``DEDUPE_WINDOW`` offsets before
it in its partition: that rule depends on the log alone, not on where a reader began, so before
sending from an offset the reader reads the window before it again (remembering, not sending).
A subscriber who resumes is thus spared the same copies as one who never left.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import partial
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from libs.common.errors import InvalidArgument, PermanentEventError
from libs.common.events import envelope_from_kafka

log = logging.getLogger(__name__)

CURSOR_VERSION = 1
DEDUPE_WINDOW = 10_000  # offsets of a partition within which a ce_id seen again is a copy
REFRESH_S = 5.0  # how often the reader looks for partitions that appeared
POLL_MS = 1_000
_TOKEN = re.compile(r"^[A-Za-z0-9_-]*$")
_NUMBER = re.compile(r"^[0-9]{1,19}$")

Positions = dict[TopicPartition, int]


class Start(Enum):
    """Where a subscription without a cursor begins."""

    EARLIEST = "earliest"
    LATEST = "latest"


@dataclass(frozen=True)
class FeedEvent:
    """One record of a regulator topic as the feed sends it (the proto's RegulatorEvent)."""

    id: str
    type: str
    topic: str
    subject: str
    time: datetime
    data_json: str


def encode_cursor(positions: Mapping[TopicPartition, int]) -> str:
    """The token of ``positions`` (each partition's next offset)."""
    by_topic: dict[str, dict[str, int]] = {}
    for tp, offset in sorted(positions.items()):
        by_topic.setdefault(tp.topic, {})[str(tp.partition)] = offset
    raw = json.dumps({"v": CURSOR_VERSION, "p": by_topic}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(token: str, topics: Collection[str]) -> Positions:
    """The positions a cursor holds; INVALID_ARGUMENT naming ``cursor`` when it is not one this feed
    issued, or was issued for topics other than ``topics``."""
    try:
        positions = _positions(json.loads(_unbase64(token)))
    except (ValueError, binascii.Error) as exc:  # json's and int's errors are ValueErrors
        raise InvalidArgument("cursor", "not a cursor this feed issued; start again without one") from exc
    foreign = sorted({tp.topic for tp in positions} - set(topics))
    if foreign:
        raise InvalidArgument("cursor", f"issued for other topics ({', '.join(foreign)}); ask for those")
    return positions


def _unbase64(token: str) -> bytes:
    if not _TOKEN.match(token):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _positions(raw: Any) -> Positions:
    if not isinstance(raw, dict) or raw.get("v") != CURSOR_VERSION or not isinstance(raw.get("p"), dict):
        raise ValueError(f"not a version {CURSOR_VERSION} cursor")
    return {
        TopicPartition(topic, _number(partition)): _number(offset)
        for topic, partitions in raw["p"].items()
        for partition, offset in _items(partitions)
    }


def _items(partitions: Any) -> list[tuple[Any, Any]]:
    if not isinstance(partitions, dict):
        raise ValueError("a topic's partitions are not an object")
    return list(partitions.items())


def _number(value: Any) -> int:
    """A partition (a string key) or an offset (an integer), never negative."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not _NUMBER.match(str(value)):
        raise ValueError(f"not a partition or offset: {value!r}")
    return int(value)


class RecentIds:
    """The ``ce_id`` of each record of one partition's last ``window`` offsets."""

    def __init__(self, window: int = DEDUPE_WINDOW) -> None:
        self._window = window
        self._recent: deque[tuple[int, str]] = deque()
        self._counts: Counter[str] = Counter()

    def is_copy(self, offset: int, event_id: str) -> bool:
        """Whether ``event_id`` was on a record of the window before ``offset`` (records come in
        offset order); the record at ``offset`` is remembered either way."""
        while self._recent and self._recent[0][0] < offset - self._window:
            _, old = self._recent.popleft()
            self._counts[old] -= 1
            if not self._counts[old]:
                del self._counts[old]
        copy = event_id in self._counts
        self._recent.append((offset, event_id))
        self._counts[event_id] += 1
        return copy


class PartitionReader(Protocol):
    """What the feed asks of a Kafka consumer without a group (aiokafka's AIOKafkaConsumer)."""

    def assign(self, partitions: list[TopicPartition]) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def getmany(
        self, *, timeout_ms: int
    ) -> Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]: ...


Discover = Callable[[], Awaitable[set[TopicPartition]]]
Ready = Callable[[], Awaitable[None]]


async def read_feed(
    kafka: Mapping[str, Any], topics: Collection[str], resume: Positions | None, start: Start, ready: Ready
) -> AsyncIterator[tuple[FeedEvent, str]]:
    """Each event of ``topics`` after ``resume`` (a decoded cursor) or from ``start``, with the
    cursor after it, for as long as the caller iterates; ``ready`` is awaited once the starting
    offsets are fixed; ``kafka`` is the clients' options (libs.common.kafka.client_options). Kafka
    unreachable at the start raises what aiokafka raised (an outage the API answers UNAVAILABLE)."""
    consumer = AIOKafkaConsumer(**kafka, enable_auto_commit=False, auto_offset_reset="earliest")
    admin = AIOKafkaAdminClient(**kafka)
    try:
        await consumer.start()
        await admin.start()
        discover = partial(_partitions_of, admin, frozenset(topics))
        reader = FeedReader(consumer, discover, resume, start, ready)
        async for item in reader.events():
            yield item
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions_of(admin: AIOKafkaAdminClient, topics: frozenset[str]) -> set[TopicPartition]:
    """The partitions ``topics`` have now (every topic described: naming one could create it)."""
    return {
        TopicPartition(t["topic"], p["partition"])
        for t in await admin.describe_topics()
        if t["topic"] in topics and t["error_code"] == 0
        for p in t["partitions"]
    }


class FeedReader:
    """One subscriber's partitions: for each, the offset of the next record to send
    (``_positions``, what the cursor holds), where reading goes on (``_reading``, behind it while
    the window before it is read again) and the ids of its window."""

    def __init__(
        self,
        consumer: PartitionReader,
        discover: Discover,
        resume: Positions | None,
        start: Start,
        ready: Ready,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._consumer = consumer
        self._discover = discover
        self._resume = resume
        self._start = start
        self._ready = ready
        self._refresh_s = refresh_s
        self._positions: Positions = {}
        self._reading: Positions = {}
        self._recent: dict[TopicPartition, RecentIds] = {}

    async def events(self) -> AsyncIterator[tuple[FeedEvent, str]]:
        loop_time = asyncio.get_running_loop().time
        await self._assign_new(first=True)
        await self._ready()
        refreshed = loop_time()
        while True:
            if not self._positions:
                await asyncio.sleep(self._refresh_s)
            else:
                batch = await self._consumer.getmany(timeout_ms=POLL_MS)
                for tp, records in batch.items():
                    for record in records:
                        item = self._take(tp, record)
                        if item is not None:
                            yield item
            if loop_time() - refreshed >= self._refresh_s:
                await self._assign_new(first=False)
                refreshed = loop_time()

    async def _assign_new(self, first: bool) -> None:
        """Assign the partitions of the topics that appeared since the last look."""
        new = await self._discover() - self._positions.keys()
        if not new:
            return
        starts = await self._starts(new, first)
        for tp, offset in starts.items():
            self._positions[tp] = offset
            self._reading[tp] = max(offset - DEDUPE_WINDOW, 0)
            self._recent[tp] = RecentIds()
        self._consumer.assign(list(self._positions))  # replaces the assignment: every position set again
        for tp, offset in self._reading.items():
            self._consumer.seek(tp, offset)

    async def _starts(self, new: set[TopicPartition], first: bool) -> Positions:
        """Where each new partition's sending begins: the cursor's offset, or the end for a
        subscription to new events only, or else the partition's start."""
        if self._resume is not None:
            return {tp: self._resume.get(tp, 0) for tp in new}
        if first and self._start is Start.LATEST:
            ends: Positions = await self._consumer.end_offsets(list(new))
            return ends
        return dict.fromkeys(new, 0)

    def _take(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> tuple[FeedEvent, str] | None:
        """The event of ``record`` and the cursor after it; None for a record of the window read
        again, a copy, or a record that is not a CloudEvent."""
        self._reading[tp] = record.offset + 1
        try:
            event = _event(tp.topic, record)
        except PermanentEventError as exc:
            log.warning("not a regulator event", extra={"fields": {"topic": tp.topic, "error": str(exc)}})
            self._positions[tp] = max(self._positions[tp], record.offset + 1)
            return None
        copy = self._recent[tp].is_copy(record.offset, event.id)
        if record.offset < self._positions[tp]:
            return None
        self._positions[tp] = record.offset + 1
        return None if copy else (event, encode_cursor(self._positions))


def _event(topic: str, record: ConsumerRecord[bytes, bytes]) -> FeedEvent:
    envelope = envelope_from_kafka(record.headers, record.value)
    try:
        data_json = envelope.data.decode()
    except UnicodeDecodeError as exc:
        raise PermanentEventError(f"{envelope.id}: the payload is not UTF-8 JSON") from exc
    return FeedEvent(envelope.id, envelope.type, topic, envelope.subject, envelope.time, data_json)
