"""The card colour's inputs from credit and insurance, and its lapses, on the real stack.

Credit's and insurance's events are produced to Kafka as those services will emit them; the
colour is read back through gRPC and the CardStatusChanged events from the workers topic. The
lapse drills run a workers process of their own whose clock is shifted (JZ_CLOCK_OFFSET_S).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from deploy.local.services import stopped_after
from deploy.local.stack import Endpoints
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2 as pb
from libs.common.events import EventEnvelope, envelope_from_kafka, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.workers.events import TOPIC as WORKERS_TOPIC
from services.workers.service_layer import BEIJING, beijing_today
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import read_topic, wait_until_consumed
from tests.integration.workers_client import (
    becomes,
    call,
    card_colour,
    coverage_event,
    create_company,
    create_worker,
    produce,
    uncovered_event,
)

CREDIT_TOPIC = events_topic("credit")
INSURANCE_TOPIC = events_topic("insurance")
SESSION_GROUP = "jiazheng-workers"  # the session workers process's consumer group


def _credit_level(worker: str, level: credit_events.CreditLevel.ValueType) -> EventEnvelope:
    message = credit_events.CreditLevelChanged(
        worker_id=worker.removeprefix("workers/"),
        level=level,
        score=300,
        model_version="test",
        change_time=timestamp(datetime.now(UTC)),
    )
    return new_event(message, source="/jiazheng/credit", subject=worker)


def _suspension(worker: str, suspended: bool) -> EventEnvelope:
    message = credit_events.WorkerSuspensionChanged(
        worker_id=worker.removeprefix("workers/"),
        suspended=suspended,
        reason="complaint_upheld_severe",
        change_time=timestamp(datetime.now(UTC)),
    )
    return new_event(message, source="/jiazheng/credit", subject=worker)


async def _status_changes(bootstrap: str, worker: str) -> list[worker_events.CardStatusChanged]:
    """The worker's CardStatusChanged events on the workers topic, in order."""
    records = [r for r in await read_topic(bootstrap, WORKERS_TOPIC) if r.key == worker.encode()]
    events = [envelope_from_kafka(r.headers, r.value) for r in sorted(records, key=lambda r: r.offset)]
    return [e.parse(worker_events.CardStatusChanged) for e in events if e.type.endswith(".CardStatusChanged")]


async def _published_until(
    bootstrap: str, worker: str, last: pb.CardColour.ValueType, count: int
) -> list[worker_events.CardStatusChanged]:
    """The worker's status changes once ``count`` of them are published and the last is ``last``."""

    async def published() -> list[worker_events.CardStatusChanged]:
        changes = await _status_changes(bootstrap, worker)
        return changes if len(changes) >= count and changes[-1].colour == last else []

    return await eventually(published, within=60)


def _issued_for_last_day(today: date) -> date:
    """An issue date whose 12-month health check is valid through ``today`` and no longer."""
    try:
        year_ago = today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        year_ago = date(today.year - 1, 2, 28)
    return year_ago + timedelta(days=1)


async def _checked_worker(svc: RunningService, operator: str, health_issued: date) -> pb.Worker:
    """A new worker with a passed background check and a health check issued on ``health_issued``:
    YELLOW only for want of insurance."""
    company = await create_company(svc, operator)
    worker = await create_worker(svc, operator, company.name)
    check = pb.RecordBackgroundCheckRequest(
        worker=worker.name, identity_genuine=True, check_date=(date.today() - timedelta(days=30)).isoformat()
    )
    await call(svc, operator, "RecordBackgroundCheck", check)
    health = pb.RecordHealthCheckRequest(
        worker=worker.name,
        tier=pb.HEALTH_TIER_LIVE_IN,
        issue_date=health_issued.isoformat(),
        hospital="北京协和医院",
        certificate_number="TJ-2026-002",
    )
    reply: pb.RecordHealthCheckResponse = await call(svc, operator, "RecordHealthCheck", health)
    assert reply.card_colour == pb.CARD_COLOUR_YELLOW
    return worker


@pytest.fixture
async def green_worker(endpoints: Endpoints, harness: ServiceHarness, workers: RunningService) -> str:
    """A worker of the session workers process made GREEN by insurance's coverage event."""
    operator = harness.key("operator")
    worker = await _checked_worker(workers, operator, date.today() - timedelta(days=10))
    await produce(
        endpoints.kafka_bootstrap, INSURANCE_TOPIC, coverage_event(worker.name, date.today() + timedelta(365))
    )
    await becomes(workers, operator, worker.name, pb.CARD_COLOUR_GREEN)
    return worker.name


async def test_coverage_turns_a_checked_worker_green(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService, green_worker: str
) -> None:
    changes = await _published_until(endpoints.kafka_bootstrap, green_worker, pb.CARD_COLOUR_GREEN, 2)
    assert changes[-1].previous_colour == pb.CARD_COLOUR_YELLOW
    assert list(changes[-2].reasons) == ["insurance_missing"]
    assert list(changes[-1].reasons) == []


async def test_credit_level_d_turns_the_card_red_with_its_reason(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService, green_worker: str
) -> None:
    await produce(
        endpoints.kafka_bootstrap, CREDIT_TOPIC, _credit_level(green_worker, credit_events.CREDIT_LEVEL_D)
    )

    await becomes(workers, harness.key("operator"), green_worker, pb.CARD_COLOUR_RED)
    changes = await _published_until(endpoints.kafka_bootstrap, green_worker, pb.CARD_COLOUR_RED, 1)
    assert list(changes[-1].reasons) == ["credit_level_d"]
    assert changes[-1].previous_colour == pb.CARD_COLOUR_GREEN


async def test_an_uncovered_worker_turns_yellow_for_want_of_insurance(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService, green_worker: str
) -> None:
    await produce(endpoints.kafka_bootstrap, INSURANCE_TOPIC, uncovered_event(green_worker))

    await becomes(workers, harness.key("operator"), green_worker, pb.CARD_COLOUR_YELLOW)
    changes = await _published_until(endpoints.kafka_bootstrap, green_worker, pb.CARD_COLOUR_YELLOW, 3)
    assert list(changes[-1].reasons) == ["insurance_missing"]
    assert changes[-1].previous_colour == pb.CARD_COLOUR_GREEN


async def test_a_suspension_turns_the_card_red_until_it_ends(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService, green_worker: str
) -> None:
    operator = harness.key("operator")
    await produce(endpoints.kafka_bootstrap, CREDIT_TOPIC, _suspension(green_worker, True))
    await becomes(workers, operator, green_worker, pb.CARD_COLOUR_RED)

    await produce(endpoints.kafka_bootstrap, CREDIT_TOPIC, _suspension(green_worker, False))
    await becomes(workers, operator, green_worker, pb.CARD_COLOUR_GREEN)
    changes = await _published_until(endpoints.kafka_bootstrap, green_worker, pb.CARD_COLOUR_GREEN, 2)
    assert [list(c.reasons) for c in changes[-2:]] == [["suspended"], []]


async def test_a_redelivered_event_changes_nothing_twice(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService, green_worker: str
) -> None:
    bootstrap = endpoints.kafka_bootstrap
    level_d = _credit_level(green_worker, credit_events.CREDIT_LEVEL_D)
    await produce(bootstrap, CREDIT_TOPIC, level_d)
    await becomes(workers, harness.key("operator"), green_worker, pb.CARD_COLOUR_RED)
    before = await _published_until(bootstrap, green_worker, pb.CARD_COLOUR_RED, 1)

    *_, last = await produce(bootstrap, CREDIT_TOPIC, level_d, level_d)  # the same event id twice more
    await wait_until_consumed(bootstrap, SESSION_GROUP, CREDIT_TOPIC, last.partition, last.offset)
    # A later change on the same partition: had a redelivery published anything, it would come first.
    await produce(bootstrap, CREDIT_TOPIC, _credit_level(green_worker, credit_events.CREDIT_LEVEL_B))

    after = await _published_until(bootstrap, green_worker, pb.CARD_COLOUR_GREEN, len(before) + 1)
    assert after[: len(before)] == before
    assert len(after) == len(before) + 1


def _seconds_until_beijing_midnight() -> float:
    now = datetime.now(UTC)
    midnight = datetime.combine(beijing_today(now) + timedelta(days=1), time(), BEIJING)
    return (midnight - now).total_seconds()


async def _green_through_today(
    endpoints: Endpoints, harness: ServiceHarness, database: str, keys: dict[str, str], group: str
) -> str:
    """On a process of its own with an unshifted clock: a GREEN worker whose health check is
    valid through today (Beijing), so that the card-status timer is due at the next midnight."""
    operator = harness.key("operator")
    async with stopped_after(
        await harness.start("workers", database, 0, False, **keys, **_group_of(group))
    ) as svc:
        today = beijing_today(datetime.now(UTC))
        worker = await _checked_worker(svc, operator, _issued_for_last_day(today))
        coverage = coverage_event(worker.name, today + timedelta(days=365))
        await produce(endpoints.kafka_bootstrap, INSURANCE_TOPIC, coverage)
        await becomes(svc, operator, worker.name, pb.CARD_COLOUR_GREEN)
    return worker.name


def _group_of(prefix: str) -> dict[str, str]:
    """A drill process consumes in a group of its own, not the session process's."""
    return {"consumer_group_prefix": prefix}


async def test_a_health_check_that_lapsed_while_the_service_was_down_is_yellow_at_start_up(
    endpoints: Endpoints, harness: ServiceHarness, scratch_database: str, workers_keys: dict[str, str]
) -> None:
    group = f"drill-{uuid.uuid4().hex[:8]}"
    worker = await _green_through_today(endpoints, harness, scratch_database, workers_keys, group)

    offset = str(_seconds_until_beijing_midnight() + 60)  # started a minute after the lapse
    env = {**workers_keys, **_group_of(group), "clock_offset_s": offset}
    async with stopped_after(await harness.start("workers", scratch_database, 0, False, **env)) as svc:
        await becomes(svc, harness.key("operator"), worker, pb.CARD_COLOUR_YELLOW)
        changes = await _published_until(endpoints.kafka_bootstrap, worker, pb.CARD_COLOUR_YELLOW, 2)

    assert list(changes[-1].reasons) == ["health_check_expired"]
    assert changes[-1].previous_colour == pb.CARD_COLOUR_GREEN


async def test_a_health_check_lapsing_while_the_service_runs_turns_yellow_with_no_call(
    endpoints: Endpoints, harness: ServiceHarness, scratch_database: str, workers_keys: dict[str, str]
) -> None:
    group = f"drill-{uuid.uuid4().hex[:8]}"
    worker = await _green_through_today(endpoints, harness, scratch_database, workers_keys, group)
    operator = harness.key("operator")

    # The lapse comes 20 s after this process starts: ample for it to start before it, so the
    # running timer worker, not the start-up, fires it.
    offset = str(_seconds_until_beijing_midnight() - 20)
    env = {**workers_keys, **_group_of(group), "clock_offset_s": offset}
    async with stopped_after(await harness.start("workers", scratch_database, 0, False, **env)) as svc:
        assert await card_colour(svc, operator, worker) == pb.CARD_COLOUR_GREEN
        await becomes(svc, operator, worker, pb.CARD_COLOUR_YELLOW)
        changes = await _published_until(endpoints.kafka_bootstrap, worker, pb.CARD_COLOUR_YELLOW, 2)

    assert list(changes[-1].reasons) == ["health_check_expired"]
