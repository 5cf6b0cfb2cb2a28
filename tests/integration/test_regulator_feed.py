"""The regulator feed on the real stack: a regulator's gRPC subscriber that leaves and resumes
from its last cursor while more events are produced sees every projected event exactly once, in
order per subject, a copy of an event (same ce_id, as a projector's restart can publish) included;
a platform is PERMISSION_DENIED on the stream and the indicators; a bad cursor is INVALID_ARGUMENT."""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from aiokafka import AIOKafkaProducer

from deploy.local.stack import Endpoints
from jiazheng.regulator.v1 import regulator_pb2 as pb
from jiazheng.regulator.v1 import regulator_pb2_grpc
from libs.common.events import EventEnvelope
from services.regulator.domain.projection import regulator_event_id
from services.regulator.domain.pseudonym import IdKind, pseudonym
from services.workers import events as worker_events
from tests.integration.clients import auth, field_violations
from tests.integration.harness import RunningService, ServiceHarness
from tests.integration.kafka_tools import read_topic
from tests.integration.workers_client import produce

if TYPE_CHECKING:
    from jiazheng.regulator.v1.regulator_pb2_grpc import RegulatorServiceAsyncStub as Stub

WORKERS_TOPIC = "jiazheng.regulator.workers.v1"


@pytest.fixture(scope="module")
async def keyed_regulator(harness: ServiceHarness) -> AsyncIterator[tuple[bytes, RunningService]]:
    """A regulator of its own (consumer group, tables) and its pseudonym key, for this module."""
    key = secrets.token_bytes(32)
    regulator = await harness.start(
        "regulator",
        supervised=True,
        consumer_group_prefix=f"test-r3-{uuid.uuid4().hex[:8]}",
        regulator_pseudonym_key=base64.b64encode(key).decode(),
    )
    yield key, regulator
    harness.stop(regulator)


def _worker_story(worker_id: uuid.UUID) -> list[EventEnvelope]:
    """A worker's card issued, revoked and issued again: three events in this order."""
    now = datetime.now(UTC)
    first, second = uuid.uuid4(), uuid.uuid4()
    return [
        worker_events.card_issued(worker_id, first, now + timedelta(days=365), now),
        worker_events.card_revoked(worker_id, first, "lost", now + timedelta(seconds=1)),
        worker_events.card_issued(worker_id, second, now + timedelta(days=365), now + timedelta(seconds=2)),
    ]


@dataclass
class Subscription:
    """What one Subscribe call received of ``ours`` (regulator ce_ids), and its last cursor."""

    ours: set[str]
    seen: list[pb.RegulatorEvent] = field(default_factory=list)
    cursor: str = ""

    async def read(self, stub: Stub, key: str, request: pb.SubscribeRequest, until: int) -> None:
        """Read until ``until`` of ours were received, then leave (the call is cancelled)."""
        call = stub.Subscribe(request, metadata=auth(key))
        try:
            async for response in call:
                self.cursor = response.cursor
                if response.event.id in self.ours:
                    self.seen.append(response.event)
                if len(self.seen) >= until:
                    return
        finally:
            call.cancel()


async def _copy_on_the_topic(bootstrap: str, event_id: str) -> None:
    """The record of ``event_id`` published again, as a projector's restart can publish it."""
    [record] = [
        r for r in await read_topic(bootstrap, WORKERS_TOPIC) if r.headers["ce_id"].decode() == event_id
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        headers = list(record.headers.items())
        await producer.send_and_wait(
            WORKERS_TOPIC, record.value, record.key, partition=record.partition, headers=headers
        )
    finally:
        await producer.stop()


async def test_a_subscriber_that_leaves_and_resumes_from_its_cursor_sees_every_event_once_in_order(
    endpoints: Endpoints, harness: ServiceHarness, keyed_regulator: tuple[bytes, RunningService]
) -> None:
    bootstrap = endpoints.kafka_bootstrap
    key, regulator = keyed_regulator
    workers = [uuid.uuid4() for _ in range(12)]
    stories = {w: _worker_story(w) for w in workers}
    before, after = workers[:6], workers[6:]
    expected = {
        pseudonym(key, IdKind.WORKER, f"workers/{w}"): [regulator_event_id(e.id) for e in stories[w]]
        for w in workers
    }
    ours = {i for ids in expected.values() for i in ids}
    await produce(bootstrap, worker_events.TOPIC, *(e for w in before for e in stories[w]))
    reader = harness.key("regulator")

    async with regulator.channel() as channel:
        stub: Stub = regulator_pb2_grpc.RegulatorServiceStub(channel)
        first = Subscription(ours)
        await asyncio.wait_for(first.read(stub, reader, pb.SubscribeRequest(topics=[WORKERS_TOPIC]), 9), 120)
        await _copy_on_the_topic(bootstrap, first.seen[0].id)
        producing = asyncio.create_task(
            produce(bootstrap, worker_events.TOPIC, *(e for w in after for e in stories[w]))
        )
        resumed = Subscription(ours)
        request = pb.SubscribeRequest(cursor=first.cursor, topics=[WORKERS_TOPIC])
        await asyncio.wait_for(resumed.read(stub, reader, request, len(ours) - 9), 120)
        await producing
        await _copy_on_the_topic(bootstrap, resumed.seen[-1].id)
        await asyncio.sleep(3)  # time for the copy to be sent, were it not suppressed
        late = Subscription(ours)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(late.read(stub, reader, pb.SubscribeRequest(cursor=resumed.cursor), 1), 5)

    together = first.seen + resumed.seen
    by_subject: dict[str, list[str]] = defaultdict(list)
    for event in together:
        by_subject[event.subject].append(event.id)
    assert len(together) == len(ours)
    assert by_subject == expected
    assert {e.type for e in together} == {
        "jiazheng.workers.events.v1.CardIssued",
        "jiazheng.workers.events.v1.CardRevoked",
    }
    assert late.seen == []


async def test_a_platform_is_denied_the_stream_and_the_indicators(
    harness: ServiceHarness, keyed_regulator: tuple[bytes, RunningService]
) -> None:
    _, regulator = keyed_regulator
    platform = harness.key("demo-platform")

    async with regulator.channel() as channel:
        stub: Stub = regulator_pb2_grpc.RegulatorServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            await Subscription(set()).read(stub, platform, pb.SubscribeRequest(), 1)
        request = pb.ListIndicatorsRequest(start_date="2026-11-01", end_date="2026-11-30")
        with pytest.raises(grpc.aio.AioRpcError) as listed:
            await stub.ListIndicators(request, metadata=auth(platform))

    assert streamed.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert listed.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_bad_cursor_is_invalid_argument_naming_the_cursor(
    harness: ServiceHarness, keyed_regulator: tuple[bytes, RunningService]
) -> None:
    _, regulator = keyed_regulator

    async with regulator.channel() as channel:
        stub: Stub = regulator_pb2_grpc.RegulatorServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await Subscription(set()).read(
                stub, harness.key("regulator"), pb.SubscribeRequest(cursor="bm9wZQ"), 1
            )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == ["cursor"]
