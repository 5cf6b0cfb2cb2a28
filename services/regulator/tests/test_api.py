"""RegulatorService through a real in-process gRPC server and its guard, without Kafka: who may
call it, the indicators' dates and districts, the events and cursors streamed (a fake feed), a
client that leaves closing its reader, and what a bad cursor, an unknown topic or an unreachable
Kafka answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from aiokafka import TopicPartition

from deploy.local.stack import free_port
from jiazheng.regulator.v1 import regulator_pb2 as pb
from jiazheng.regulator.v1 import regulator_pb2_grpc
from libs.common.auth import ApiKeyStore, Principal, Role, hash_key
from libs.common.grpc_server import GrpcServer
from libs.common.settings import ServiceSettings
from services.regulator.api import POLICY, SERVICE, RegulatorServicer
from services.regulator.api.regulator import EVENT_TOPICS, IndicatorsQuery
from services.regulator.domain.indicators import DistrictDay, LevelCount, SkillLevelCount
from services.regulator.feed import FeedEvent, Positions, Ready, Start, encode_cursor
from services.regulator.topics import INDICATORS_TOPIC
from tests.integration.clients import auth, field_violations

if TYPE_CHECKING:
    from jiazheng.regulator.v1.regulator_pb2_grpc import RegulatorServiceAsyncStub as Stub

KEYS = {role: f"key-{role}" for role in Role}
ORDERS = "jiazheng.regulator.orders.v1"
CASES = "jiazheng.regulator.complaints.v1"


def _day(district: str, day: str, placed: int = 0) -> DistrictDay:
    return DistrictDay(district, day, orders_placed=placed)


class FakeIndicators:
    def __init__(self, days: list[DistrictDay]) -> None:
        self.days = days
        self.asked: list[tuple[date, date, frozenset[str]]] = []

    def __call__(self, start: date, end: date, districts: frozenset[str]) -> list[DistrictDay]:
        self.asked.append((start, end, districts))
        return self.days


def _event(n: int) -> FeedEvent:
    return FeedEvent(
        f"id-{n}",
        "jiazheng.orders.events.v1.OrderPlaced",
        ORDERS,
        f"orders/o-{n}",
        datetime(2026, 11, 30, tzinfo=UTC),
        "{}",
    )


class FakeFeed:
    """Events without end: what it was asked, and whether its reader was closed."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, tuple[str, ...], Positions | None, Start]] = []
        self.closed = asyncio.Event()
        self.positioned = asyncio.Event()
        self.positioned.set()

    async def __call__(
        self,
        kafka: Mapping[str, Any],
        topics: Collection[str],
        resume: Positions | None,
        start: Start,
        ready: Ready,
    ) -> AsyncIterator[tuple[FeedEvent, str]]:
        self.asked.append((kafka["bootstrap_servers"], tuple(topics), resume, start))
        await self.positioned.wait()
        await ready()
        n = 0
        try:
            while True:
                yield _event(n), encode_cursor({TopicPartition(ORDERS, 0): n + 1})
                n += 1
                await asyncio.sleep(0.01)
        finally:
            self.closed.set()


async def _serve(
    query: IndicatorsQuery, feed: FakeFeed | None = None, bootstrap: str = "127.0.0.1:9092"
) -> AsyncIterator[Stub]:
    keys = ApiKeyStore({hash_key(k): Principal(f"p-{role}", role, "t") for role, k in KEYS.items()})
    server = GrpcServer("regulator", keys, POLICY, "127.0.0.1", 0)
    settings = ServiceSettings(kafka_bootstrap=bootstrap)
    server.add(
        RegulatorServicer(settings, query, feed) if feed else RegulatorServicer(settings, query), SERVICE
    )
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield regulator_pb2_grpc.RegulatorServiceStub(channel)
    finally:
        await server.stop(0)


@pytest.fixture
def indicators() -> FakeIndicators:
    return FakeIndicators([])


@pytest.fixture
def feed() -> FakeFeed:
    return FakeFeed()


@pytest.fixture
async def stub(indicators: FakeIndicators, feed: FakeFeed) -> AsyncIterator[Stub]:
    async for s in _serve(indicators, feed):
        yield s


def test_only_regulators_and_operators_may_call_every_method() -> None:
    assert set(POLICY) == {f"/{SERVICE.full_name}/{m.name}" for m in SERVICE.methods}
    assert set(POLICY.values()) == {frozenset({Role.REGULATOR, Role.OPERATOR})}


async def _first(stub: Stub, request: pb.SubscribeRequest, role: Role) -> pb.SubscribeResponse:
    call = stub.Subscribe(request, metadata=auth(KEYS[role]))
    try:
        response = await call.read()
        assert isinstance(response, pb.SubscribeResponse)
        return response
    finally:
        call.cancel()


RANGE = pb.ListIndicatorsRequest(start_date="2026-11-01", end_date="2026-11-30")


@pytest.mark.parametrize("role", [r for r in Role if r not in (Role.REGULATOR, Role.OPERATOR)])
async def test_every_other_role_is_denied_the_stream_and_the_indicators(stub: Stub, role: Role) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        await _first(stub, pb.SubscribeRequest(), role)
    with pytest.raises(grpc.aio.AioRpcError) as listed:
        await stub.ListIndicators(RANGE, metadata=auth(KEYS[role]))

    assert streamed.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert listed.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_indicators_are_answered_by_date_then_district_with_every_figure(
    stub: Stub, indicators: FakeIndicators
) -> None:
    full = DistrictDay(
        "110105", "2026-11-02", 10, 8, 7, 6, 3, 300.0, 120, 86_400, 2, 1, 5, 2, 4, 1,
        (LevelCount("A", 3), LevelCount("B", 1)), (SkillLevelCount(5, 2),),
    )  # fmt: skip
    indicators.days = [_day("110108", "2026-11-01"), full, _day("110105", "2026-11-01", 4)]
    request = pb.ListIndicatorsRequest(
        start_date="2026-11-01", end_date="2026-11-02", district_codes=["110105", "110108"]
    )

    reply = await stub.ListIndicators(request, metadata=auth(KEYS[Role.REGULATOR]))

    assert indicators.asked == [(date(2026, 11, 1), date(2026, 11, 2), frozenset({"110105", "110108"}))]
    assert [(d.date, d.district_code) for d in reply.days] == [
        ("2026-11-01", "110105"),
        ("2026-11-01", "110108"),
        ("2026-11-02", "110105"),
    ]
    assert reply.days[2] == pb.DistrictDay(
        district_code="110105", date="2026-11-02", orders_placed=10, orders_completed=8, orders_dispatched=7,
        dispatched_green=6, complaints_filed=3, complaints_per_thousand_orders=300.0,
        median_first_response_seconds=120, median_resolution_seconds=86_400, mediation_backlog=2,
        sla_breaches=1, orders_insured=5, orders_uninsured=2, elderly_care_orders=4, age_friendly_orders=1,
        credit_levels=[pb.LevelCount(level="A", workers=3), pb.LevelCount(level="B", workers=1)],
        certified_workers=[pb.SkillLevelCount(skill_level=5, workers=2)],
    )  # fmt: skip


async def test_a_range_of_366_days_is_answered(stub: Stub, indicators: FakeIndicators) -> None:
    request = pb.ListIndicatorsRequest(start_date="2024-01-01", end_date="2025-01-01")

    await stub.ListIndicators(request, metadata=auth(KEYS[Role.OPERATOR]))

    assert indicators.asked == [(date(2024, 1, 1), date(2025, 1, 1), frozenset())]


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-11-02", "2026-11-01", "end_date"),  # before the start
        ("2024-01-01", "2025-01-02", "end_date"),  # 367 days after it
        ("2026-02-30", "2026-03-01", "start_date"),  # no such day
        ("", "2026-03-01", "start_date"),
    ],
)
async def test_a_bad_range_is_invalid_naming_its_field(
    stub: Stub,
    indicators: FakeIndicators,
    start: str,
    end: str,
    field: str,
) -> None:
    request = pb.ListIndicatorsRequest(start_date=start, end_date=end)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListIndicators(request, metadata=auth(KEYS[Role.REGULATOR]))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == [field]
    assert indicators.asked == []


async def test_the_stream_sends_the_feeds_events_with_their_cursors_from_the_position_asked(
    stub: Stub, feed: FakeFeed
) -> None:
    cursor = encode_cursor({TopicPartition(CASES, 1): 5})
    request = pb.SubscribeRequest(cursor=cursor, topics=[CASES, ORDERS, CASES])

    first = await _first(stub, request, Role.REGULATOR)
    await _first(stub, pb.SubscribeRequest(start=pb.START_POSITION_LATEST), Role.OPERATOR)

    assert (first.event.id, first.event.topic, first.event.subject) == ("id-0", ORDERS, "orders/o-0")
    assert first.event.time.ToDatetime(UTC) == datetime(2026, 11, 30, tzinfo=UTC)
    assert first.cursor == encode_cursor({TopicPartition(ORDERS, 0): 1})
    assert feed.asked == [
        ("127.0.0.1:9092", (CASES, ORDERS), {TopicPartition(CASES, 1): 5}, Start.EARLIEST),
        ("127.0.0.1:9092", EVENT_TOPICS, None, Start.LATEST),
    ]


async def test_the_indicators_topic_is_streamed_when_asked_for(stub: Stub, feed: FakeFeed) -> None:
    await _first(stub, pb.SubscribeRequest(topics=[INDICATORS_TOPIC]), Role.REGULATOR)

    assert feed.asked == [("127.0.0.1:9092", (INDICATORS_TOPIC,), None, Start.EARLIEST)]


async def test_the_initial_metadata_comes_once_the_feed_is_positioned(stub: Stub, feed: FakeFeed) -> None:
    feed.positioned.clear()
    call = stub.Subscribe(
        pb.SubscribeRequest(start=pb.START_POSITION_LATEST), metadata=auth(KEYS[Role.REGULATOR])
    )
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(call.initial_metadata()), timeout=0.3)

        feed.positioned.set()

        await asyncio.wait_for(call.initial_metadata(), timeout=5)
        assert feed.asked == [("127.0.0.1:9092", EVENT_TOPICS, None, Start.LATEST)]
    finally:
        call.cancel()


async def test_a_client_that_leaves_closes_its_reader(stub: Stub, feed: FakeFeed) -> None:
    await _first(stub, pb.SubscribeRequest(), Role.REGULATOR)

    await asyncio.wait_for(feed.closed.wait(), timeout=5)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.SubscribeRequest(cursor="bm90IGEgY3Vyc29y"), "cursor"),
        (pb.SubscribeRequest(cursor=encode_cursor({TopicPartition(CASES, 0): 1}), topics=[ORDERS]), "cursor"),
        (pb.SubscribeRequest(topics=[ORDERS, "jiazheng.regulator.figures.v1"]), "topics[1]"),
    ],
)
async def test_a_bad_cursor_or_topic_is_invalid_naming_it(
    stub: Stub, feed: FakeFeed, request_: pb.SubscribeRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _first(stub, request_, Role.REGULATOR)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == [field]
    assert feed.asked == []


async def test_kafka_unreachable_is_unavailable_not_internal(indicators: FakeIndicators) -> None:
    async for stub in _serve(indicators, bootstrap=f"127.0.0.1:{free_port()}"):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _first(stub, pb.SubscribeRequest(), Role.REGULATOR)

        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
