"""The reader the regulator's agents use for records faust skipped, on the real broker: it hands
over exactly the range asked for, in order, and a skipped run goes through the agent's handler
before the record that revealed it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition

from deploy.local.stack import Endpoints
from services.regulator.skipped import KafkaPartitionReader, SkippedRecords
from services.workers import events as worker_events
from tests.integration.workers_client import produce

TOPIC = worker_events.TOPIC


async def _cards_of_one_worker(bootstrap: str, count: int) -> tuple[TopicPartition, list[int], list[bytes]]:
    """``count`` cards issued to one worker (one key, so one partition): its offsets and values."""
    worker, now = uuid.uuid4(), datetime.now(UTC)
    events = [
        worker_events.card_issued(worker, uuid.uuid4(), now + timedelta(days=365), now) for _ in range(count)
    ]
    written = await produce(bootstrap, TOPIC, *events)
    assert len({m.partition for m in written}) == 1
    return (
        TopicPartition(TOPIC, written[0].partition),
        [m.offset for m in written],
        [e.data or b"" for e in events],
    )


async def test_the_reader_hands_over_exactly_the_range_asked_for(endpoints: Endpoints) -> None:
    tp, offsets, _ = await _cards_of_one_worker(endpoints.kafka_bootstrap, 8)

    async def earliest(_: TopicPartition) -> int:
        return 0

    reader = KafkaPartitionReader({"bootstrap_servers": endpoints.kafka_bootstrap}, earliest)
    assert [r.offset async for r in reader.read(tp, offsets[2], offsets[6])] == offsets[2:6]


async def test_skipped_records_are_handled_before_the_delivered_one(
    endpoints: Endpoints,
) -> None:
    tp, offsets, values = await _cards_of_one_worker(endpoints.kafka_bootstrap, 8)

    async def earliest(_: TopicPartition) -> int:
        return 0

    reader = KafkaPartitionReader({"bootstrap_servers": endpoints.kafka_bootstrap}, earliest)
    expected = {f"{TOPIC}/{tp.partition}": offsets[2]}  # the agent had handled up to offsets[1]
    handled: list[bytes | None] = []

    async def handle(value: bytes | None, headers: Any) -> None:
        handled.append(value)

    [delivered] = [r async for r in reader.read(tp, offsets[7], offsets[7] + 1)]
    await SkippedRecords("test", expected, reader).deliver(delivered, handle)

    assert handled == values[2:8]
    assert expected == {f"{TOPIC}/{tp.partition}": offsets[7] + 1}
