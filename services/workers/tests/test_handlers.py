"""workers' effects of credit's and insurance's events, driven as in production: Kafka records
through the IdempotentConsumer into the fake unit of work.

The events are the producers' envelopes (``new_event`` of the messages in their packages, with
their sources and subjects), so these are consumer contract tests for the events the credit and
insurance services will emit.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from google.protobuf.message import Message

from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.complaints.v1 import complaints_pb2
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2 as pb
from libs.common.auth import Principal, Role
from libs.common.events import EventEnvelope, new_event
from libs.common.inbox import IdempotentConsumer, KafkaRecord
from libs.common.kafka import events_topic
from libs.common.logs import JsonFormatter
from libs.common.protoutil import timestamp
from libs.common.telemetry import trace_id_of
from libs.common.testing import FakeDeadLetters, FixedClock
from services.workers import domain as d
from services.workers import service_layer as sl
from services.workers.handlers import EFFECTS
from services.workers.tests.fakes import FakeWorkersUnitOfWork
from services.workers.tests.test_domain import USCC, id_born

NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)  # 10:00 in Beijing
TODAY = date(2026, 3, 2)
OPERATOR = Principal("operator", Role.OPERATOR, "")
COMPANY_ID = uuid.UUID("00000000-0000-4000-8000-00000000c001")
HEALTH_ISSUED = date(2025, 9, 1)
HEALTH_LAST_DAY = date(2026, 8, 31)  # 12 months of validity
CREDIT_SOURCE = "/jiazheng/credit"
INSURANCE_SOURCE = "/jiazheng/insurance"


def _event(message: Message, source: str, worker: object) -> EventEnvelope:
    """The producer's envelope, as its relay puts it on Kafka."""
    return new_event(message, source=source, subject=f"workers/{worker}")


def _coverage(worker: object, valid_until: str = "2027-03-01", covered: bool = True) -> EventEnvelope:
    message = insurance_events.WorkerCoverageChanged(
        worker_id=str(worker), covered=covered, valid_until=valid_until if covered else ""
    )
    if covered:
        message.policy = "policies/p-1"
    return _event(message, INSURANCE_SOURCE, worker)


def _credit_level(worker: object, level: credit_events.CreditLevel.ValueType) -> EventEnvelope:
    message = credit_events.CreditLevelChanged(
        worker_id=str(worker), level=level, previous_level=credit_events.CREDIT_LEVEL_B, score=120
    )
    return _event(message, CREDIT_SOURCE, worker)


def _suspension(worker: object, suspended: bool) -> EventEnvelope:
    message = credit_events.WorkerSuspensionChanged(
        worker_id=str(worker), suspended=suspended, reason="complaint_upheld_severe"
    )
    return _event(message, CREDIT_SOURCE, worker)


def _record(event: EventEnvelope) -> KafkaRecord:
    topic = events_topic("insurance" if event.source == INSURANCE_SOURCE else "credit")
    return KafkaRecord(topic, event.key, event.data, event.kafka_headers())


def _consumer(
    uow: FakeWorkersUnitOfWork, dead_letters: FakeDeadLetters
) -> IdempotentConsumer[FakeWorkersUnitOfWork]:
    async def healthy() -> bool:
        return True

    return IdempotentConsumer("workers", lambda: uow, EFFECTS, dead_letters, healthy, backoff_s=0)


def _status_changes(uow: FakeWorkersUnitOfWork) -> list[worker_events.CardStatusChanged]:
    published = [p.event for p in uow.published if p.event.type.endswith(".CardStatusChanged")]
    return [e.parse(worker_events.CardStatusChanged) for e in published]


@pytest.fixture
def uow() -> FakeWorkersUnitOfWork:
    return FakeWorkersUnitOfWork(FixedClock(NOW))


@pytest.fixture
def dead_letters() -> FakeDeadLetters:
    return FakeDeadLetters()


@pytest.fixture
def consumer(
    uow: FakeWorkersUnitOfWork, dead_letters: FakeDeadLetters
) -> IdempotentConsumer[FakeWorkersUnitOfWork]:
    return _consumer(uow, dead_letters)


@pytest.fixture
async def checked_worker(uow: FakeWorkersUnitOfWork) -> uuid.UUID:
    """A worker whose background check passed and whose health check is valid: YELLOW only for
    want of insurance."""
    draft = d.CompanyDraft(
        USCC[0], "北京好家政", 60, (d.Outlet("望京", "110105"),), d.EmploymentModel.EMPLOYEE
    )
    await sl.create_company(uow, uuid.uuid4(), draft, COMPANY_ID)
    return await _checked_worker(uow, date(1985, 4, 12))


@pytest.fixture
async def checked_workers(uow: FakeWorkersUnitOfWork, checked_worker: uuid.UUID) -> list[uuid.UUID]:
    """Three such workers."""
    return [checked_worker, *[await _checked_worker(uow, date(1990, 1, day)) for day in (1, 2)]]


async def _registered_worker(uow: FakeWorkersUnitOfWork, born: date) -> uuid.UUID:
    worker = d.WorkerDraft(id_born(born), "王芳", "13912345678", "p.jpg", ("110105",), (d.Trade.HOUSEKEEPER,))
    return await sl.create_worker(uow, OPERATOR, uuid.uuid4(), COMPANY_ID, worker)


async def _checked_worker(uow: FakeWorkersUnitOfWork, born: date) -> uuid.UUID:
    worker_id = await _registered_worker(uow, born)
    check = d.BackgroundCheck(True, False, False, False, date(2026, 1, 5))
    await sl.record_background_check(uow, OPERATOR, worker_id, check)
    form = sl.HealthCheckForm(d.HealthTier.LIVE_IN, HEALTH_ISSUED, "北京协和医院", "TJ-1")
    await sl.record_health_check(uow, OPERATOR, worker_id, form, validity_months=12)
    return worker_id


def _traced(event: EventEnvelope, trace_id: str) -> EventEnvelope:
    return dataclasses.replace(event, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")


async def test_coverage_turns_a_checked_worker_green_and_publishes_the_change(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    assert uow.records.statuses[checked_worker].reasons == (d.Reason.INSURANCE_MISSING,)
    before = len(_status_changes(uow))

    assert await consumer.handle_batch([_record(_coverage(checked_worker, "2027-03-01"))]) == ["applied"]

    assert uow.records.statuses[checked_worker] == sl.StoredStatus(d.CardColour.GREEN, ())
    [change] = _status_changes(uow)[before:]
    assert (change.worker_id, change.colour, change.previous_colour) == (
        str(checked_worker),
        pb.CARD_COLOUR_GREEN,
        pb.CARD_COLOUR_YELLOW,
    )
    assert list(change.reasons) == []


async def test_the_timer_is_set_for_the_day_after_the_first_validity_ends(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    await consumer.handle_batch([_record(_coverage(checked_worker, "2026-05-31"))])

    timer = uow.timers.pending[sl.CARD_STATUS_TIMER, str(checked_worker)]
    assert timer.due_at == datetime(2026, 6, 1, tzinfo=sl.BEIJING)  # insurance ends before the health check


async def test_redelivery_of_the_same_event_changes_nothing(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    event = _credit_level(checked_worker, credit_events.CREDIT_LEVEL_D)
    await consumer.handle_batch([_record(event)])
    published, commits = len(uow.published), uow.commits

    assert await consumer.handle_batch([_record(event), _record(event)]) == ["duplicate", "duplicate"]

    assert (len(uow.published), uow.commits) == (published, commits + 1)  # only the inbox's unit of work
    assert uow.records.statuses[checked_worker].colour is d.CardColour.RED


async def test_credit_level_d_is_red_with_its_reason_and_a_better_level_lifts_it(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    await consumer.handle_batch([_record(_coverage(checked_worker))])

    await consumer.handle_batch([_record(_credit_level(checked_worker, credit_events.CREDIT_LEVEL_D))])
    assert uow.records.credit_level[checked_worker] == "D"
    assert _status_changes(uow)[-1].colour == pb.CARD_COLOUR_RED
    assert list(_status_changes(uow)[-1].reasons) == ["credit_level_d"]

    await consumer.handle_batch([_record(_credit_level(checked_worker, credit_events.CREDIT_LEVEL_C))])
    assert uow.records.credit_level[checked_worker] == "C"
    assert uow.records.statuses[checked_worker].colour is d.CardColour.GREEN


async def test_a_suspension_is_red_until_it_ends(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    await consumer.handle_batch([_record(_coverage(checked_worker))])

    await consumer.handle_batch([_record(_suspension(checked_worker, True))])
    assert uow.records.statuses[checked_worker] == sl.StoredStatus(d.CardColour.RED, (d.Reason.SUSPENDED,))

    await consumer.handle_batch([_record(_suspension(checked_worker, False))])
    assert uow.records.statuses[checked_worker] == sl.StoredStatus(d.CardColour.GREEN, ())


async def test_a_suspension_requested_by_a_complaint_is_red_until_credit_ends_it(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    await consumer.handle_batch([_record(_coverage(checked_worker))])
    requested = complaint_events.WorkerSuspensionRequested(
        worker_id=str(checked_worker),
        case_id=str(uuid.uuid4()),
        category=complaints_pb2.CATEGORY_ABUSE,
        time=timestamp(NOW),
    )
    event = new_event(requested, source="/jiazheng/complaints", subject=f"workers/{checked_worker}")

    await consumer.handle_batch([_record(event)])
    assert uow.records.statuses[checked_worker] == sl.StoredStatus(d.CardColour.RED, (d.Reason.SUSPENDED,))

    await consumer.handle_batch([_record(_suspension(checked_worker, False))])
    assert uow.records.statuses[checked_worker].colour is d.CardColour.GREEN


async def test_coverage_ended_is_yellow_and_expired_cover_too(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    await consumer.handle_batch([_record(_coverage(checked_worker, covered=False))])
    assert uow.records.insured_until[checked_worker] is None
    assert uow.records.statuses[checked_worker].reasons == (d.Reason.INSURANCE_MISSING,)

    await consumer.handle_batch([_record(_coverage(checked_worker, (TODAY - timedelta(days=1)).isoformat()))])
    assert uow.records.statuses[checked_worker] == sl.StoredStatus(
        d.CardColour.YELLOW, (d.Reason.INSURANCE_EXPIRED,)
    )


async def test_a_batch_of_several_events_applies_each_in_order(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    events = [
        _coverage(checked_worker),
        _suspension(checked_worker, True),
        _suspension(checked_worker, False),
        _credit_level(checked_worker, credit_events.CREDIT_LEVEL_D),
    ]
    before = len(_status_changes(uow))

    assert await consumer.handle_batch([_record(e) for e in events]) == ["applied"] * 4

    # The suspension's run (suspended, then not) refreshes the colour once, when it is over: unchanged.
    colours = [c.colour for c in _status_changes(uow)[before:]]
    assert colours == [pb.CARD_COLOUR_GREEN, pb.CARD_COLOUR_RED]
    assert uow.records.statuses[checked_worker].reasons == (d.Reason.CREDIT_LEVEL_D,)


async def test_an_event_for_an_unknown_worker_is_logged_and_skipped(
    uow: FakeWorkersUnitOfWork,
    consumer: IdempotentConsumer[FakeWorkersUnitOfWork],
    dead_letters: FakeDeadLetters,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stranger = uuid.uuid4()
    caplog.set_level(logging.INFO, logger="services.workers.handlers")

    assert await consumer.handle_batch([_record(_suspension(stranger, True))]) == ["applied"]

    assert (uow.published, uow.records.suspended, dead_letters.sent) == ([], {}, [])
    assert [r.levelno for r in caplog.records if r.name == "services.workers.handlers"] == [logging.INFO]


async def test_a_run_of_several_workers_refreshes_them_together_each_in_its_events_trace(
    uow: FakeWorkersUnitOfWork,
    consumer: IdempotentConsumer[FakeWorkersUnitOfWork],
    checked_workers: list[uuid.UUID],
) -> None:
    traces = {worker: f"{n + 5}" * 32 for n, worker in enumerate(checked_workers)}
    run = [_traced(_coverage(worker), trace) for worker, trace in traces.items()]
    before = len(uow.published)

    assert await consumer.handle_batch([_record(e) for e in run]) == ["applied"] * 3

    assert uow.records.saves[-1] == sorted(checked_workers)  # one save for the run, in worker order
    changes = [p.event for p in uow.published[before:]]
    carried = {
        e.parse(worker_events.CardStatusChanged).worker_id: trace_id_of(e.traceparent) for e in changes
    }
    assert carried == {str(worker): trace for worker, trace in traces.items()}
    assert list(carried) == sorted(carried)  # published in worker order
    assert [c.parse(worker_events.CardStatusChanged).colour for c in changes] == [pb.CARD_COLOUR_GREEN] * 3


async def test_a_worker_with_two_inputs_in_one_run_is_refreshed_once_in_the_last_ones_trace(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    run = [
        _traced(_coverage(checked_worker, "2027-03-01"), "5" * 32),
        _traced(_coverage(checked_worker, "2026-05-31"), "6" * 32),
    ]
    before = len(uow.published)

    assert await consumer.handle_batch([_record(e) for e in run]) == ["applied"] * 2

    [change] = [p.event for p in uow.published[before:]]
    assert change.parse(worker_events.CardStatusChanged).colour == pb.CARD_COLOUR_GREEN
    assert trace_id_of(change.traceparent) == "6" * 32
    timer = uow.timers.pending[sl.CARD_STATUS_TIMER, str(checked_worker)]
    assert timer.due_at == datetime(2026, 6, 1, tzinfo=sl.BEIJING)


async def test_an_unknown_worker_in_a_run_is_skipped_and_the_others_refreshed(
    uow: FakeWorkersUnitOfWork,
    consumer: IdempotentConsumer[FakeWorkersUnitOfWork],
    checked_workers: list[uuid.UUID],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second, _ = checked_workers
    stranger = uuid.uuid4()
    caplog.set_level(logging.INFO, logger="services.workers.handlers")
    before = len(_status_changes(uow))

    run = [_coverage(first), _coverage(stranger), _coverage(second)]
    assert await consumer.handle_batch([_record(e) for e in run]) == ["applied"] * 3

    assert {c.worker_id for c in _status_changes(uow)[before:]} == {str(first), str(second)}
    assert stranger not in uow.records.insured_until
    [skipped] = [r for r in caplog.records if r.name == "services.workers.handlers"]
    assert skipped.getMessage() == "card status input for an unknown worker skipped"


async def test_a_run_schedules_the_timers_of_workers_with_a_lapse_and_cancels_the_others(
    uow: FakeWorkersUnitOfWork, consumer: IdempotentConsumer[FakeWorkersUnitOfWork], checked_worker: uuid.UUID
) -> None:
    unchecked = await _registered_worker(uow, date(1990, 1, 1))  # no health check: insurance alone lapses
    await consumer.handle_batch([_record(_coverage(unchecked, "2027-03-01"))])
    assert (sl.CARD_STATUS_TIMER, str(unchecked)) in uow.timers.pending

    run = [_coverage(checked_worker, "2026-05-31"), _coverage(unchecked, covered=False)]
    await consumer.handle_batch([_record(e) for e in run])

    timer = uow.timers.pending[sl.CARD_STATUS_TIMER, str(checked_worker)]
    assert timer.due_at == datetime(2026, 6, 1, tzinfo=sl.BEIJING)
    assert (sl.CARD_STATUS_TIMER, str(unchecked)) not in uow.timers.pending


@pytest.mark.parametrize(
    "event",
    [
        _coverage("not-a-uuid"),
        _coverage(uuid.UUID(int=1), valid_until="2027/03/01"),
        _coverage(uuid.UUID(int=1), valid_until="20270301"),
        _coverage(uuid.UUID(int=1), valid_until=""),
        _credit_level(uuid.UUID(int=1), credit_events.CREDIT_LEVEL_UNSPECIFIED),
    ],
    ids=["worker-id", "slashes", "basic-iso", "covered-without-a-day", "no-level"],
)
async def test_a_malformed_event_is_dead_lettered_at_once(
    uow: FakeWorkersUnitOfWork,
    consumer: IdempotentConsumer[FakeWorkersUnitOfWork],
    dead_letters: FakeDeadLetters,
    event: EventEnvelope,
) -> None:
    assert await consumer.handle_batch([_record(event)]) == ["dead_lettered"]

    [(_, error, attempts)] = dead_letters.sent
    assert error.startswith("PermanentEventError")
    assert attempts == 1
    assert uow.published == []


async def test_an_undecodable_payload_is_dead_lettered(
    consumer: IdempotentConsumer[FakeWorkersUnitOfWork], dead_letters: FakeDeadLetters
) -> None:
    event = _suspension(uuid.uuid4(), True)
    record = KafkaRecord(events_topic("credit"), event.key, b"\xff\xff\xff", event.kafka_headers())

    assert await consumer.handle_batch([record]) == ["dead_lettered"]
    assert "undecodable" in dead_letters.sent[0][1]


class _JsonLines(logging.Handler):
    """Formats each record as the services log it, while its span is current."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("workers"))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_a_colour_change_is_logged_in_the_trace_of_the_event_that_made_it(
    consumer: IdempotentConsumer[FakeWorkersUnitOfWork],
    checked_worker: uuid.UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await consumer.handle_batch([_record(_coverage(checked_worker))])
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    suspended = dataclasses.replace(
        _suspension(checked_worker, True), traceparent=f"00-{trace_id}-00f067aa0ba902b7-01"
    )
    handler = _JsonLines()
    logger = logging.getLogger("services.workers.service_layer.workers")
    logger.addHandler(handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    try:  # in a batch of two: the suspension's run is of its trace alone
        await consumer.handle_batch([_record(suspended), _record(_coverage(checked_worker))])
    finally:
        logger.removeHandler(handler)

    [changed] = [line for line in handler.lines if line["msg"] == "card colour changed"]
    assert (changed["trace_id"], changed["worker_id"]) == (trace_id, str(checked_worker))
    assert (changed["colour"], changed["previous"], changed["reasons"]) == ("red", "green", ["suspended"])
