"""What moves credit, through the consumer as in production: each event kind becomes a fact, the
worker is re-evaluated with the model, a level change is published once, and the re-evaluation
timer lifts a level when a penalty fades, with no new event."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import StringValue

from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.orders.v1 import orders_pb2
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2
from libs.common.events import EventEnvelope, new_event
from libs.common.inbox import IdempotentConsumer, KafkaRecord
from libs.common.protoutil import timestamp
from libs.common.settings import ServiceSettings
from libs.common.telemetry import trace_id_of
from libs.common.testing import FakeDeadLetters, FixedClock
from libs.common.timers import TimerWorker
from services.credit import companies, scoring
from services.credit.handlers import EFFECTS
from services.credit.model import FactKind, Level
from services.credit.tests.fakes import FakeCreditUnitOfWork

NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)
WORKER = "0f4d9c2e-8a57-4b61-9a0e-5c3b2f1e7d10"


@pytest.fixture
def uow() -> FakeCreditUnitOfWork:
    return FakeCreditUnitOfWork(FixedClock(NOW))


async def _healthy() -> bool:
    return True


def _consume(uow: FakeCreditUnitOfWork) -> IdempotentConsumer[FakeCreditUnitOfWork]:
    return IdempotentConsumer("credit", lambda: uow, EFFECTS, FakeDeadLetters(), _healthy)


def _event(message: Message, source: str) -> EventEnvelope:
    return new_event(message, source=source, subject=f"workers/{WORKER}", time=NOW)


def _in_trace(event: EventEnvelope, trace: str) -> EventEnvelope:
    return dataclasses.replace(event, traceparent=f"00-{trace}-00f067aa0ba902b7-01")


async def _apply(uow: FakeCreditUnitOfWork, *events: EventEnvelope) -> list[str]:
    records = [KafkaRecord("t", e.key, e.data, e.kafka_headers()) for e in events]
    return await _consume(uow).handle_batch(records)


def _levels(uow: FakeCreditUnitOfWork) -> list[credit_events.CreditLevelChanged]:
    name = credit_events.CreditLevelChanged.DESCRIPTOR.full_name
    return [p.event.parse(credit_events.CreditLevelChanged) for p in uow.published if p.event.type == name]


def _level_change(uow: FakeCreditUnitOfWork) -> tuple[int, str]:
    """The one event the poll published, a level change: its level and its trace id."""
    [changed] = [p.event for p in uow.published]
    return changed.parse(credit_events.CreditLevelChanged).level, trace_id_of(changed.traceparent)


def _severe_complaint(worker_id: str = WORKER) -> EventEnvelope:
    return _complaint(c.SEVERITY_SEVERE, f"case-{worker_id}", worker_id)


def _complaint(severity: c.Severity.ValueType, case_id: str, worker_id: str = WORKER) -> EventEnvelope:
    resolved = complaint_events.CaseResolved(
        case_id=case_id,
        kind=c.CASE_KIND_COMPLAINT,
        category=c.CATEGORY_ABUSE,
        severity=severity,
        outcome=c.Outcome(result=c.OUTCOME_RESULT_SUBSTANTIATED, at_fault=c.PARTY_KIND_WORKER),
        worker_id=worker_id,
        time=timestamp(NOW),
    )
    return _event(resolved, "/jiazheng/complaints")


async def test_a_substantiated_severe_complaint_drops_the_worker_to_d_and_publishes_it_once(
    uow: FakeCreditUnitOfWork,
) -> None:
    event = _severe_complaint()

    assert await _apply(uow, event) == ["applied"]
    assert await _apply(uow, event) == ["duplicate"]

    [entry] = uow.ledger.entries
    assert (entry.kind, entry.magnitude, entry.detail) == (FactKind.COMPLAINT_UPHELD, 3, "substantiated")
    assert uow.scores.by_worker[WORKER].score == 400
    [changed] = _levels(uow)
    assert (changed.level, changed.previous_level, changed.score) == (
        credit_events.CREDIT_LEVEL_D,
        credit_events.CREDIT_LEVEL_UNSPECIFIED,
        400,
    )


async def test_an_outcome_in_two_events_rescores_the_worker_once_within_their_trace(
    uow: FakeCreditUnitOfWork,
) -> None:
    trace = "5" * 32
    requested = complaint_events.WorkerSuspensionRequested(case_id="case-1", worker_id=WORKER)
    outcome = [_severe_complaint(), _event(requested, "/jiazheng/complaints")]
    traced = [_in_trace(e, trace) for e in outcome]

    assert await _apply(uow, *traced) == ["applied"] * 2

    assert [e.kind for e in uow.ledger.entries] == [FactKind.COMPLAINT_UPHELD, FactKind.SUSPENSION_REQUESTED]
    assert uow.scores.puts == [WORKER]  # one evaluation for the poll, not one per event type
    assert _level_change(uow) == (credit_events.CREDIT_LEVEL_D, trace)  # the outcome's, though a batch's


async def test_in_a_poll_of_several_traces_each_level_change_carries_the_trace_that_moved_the_worker(
    uow: FakeCreditUnitOfWork,
) -> None:
    traces = {WORKER: "5" * 32, "worker-2": "6" * 32}
    polled = [_in_trace(_severe_complaint(worker), trace) for worker, trace in traces.items()]

    assert await _apply(uow, *polled) == ["applied"] * 2

    changes = {p.event.parse(credit_events.CreditLevelChanged).worker_id: p.event for p in uow.published}
    carried = {worker: trace_id_of(event.traceparent) for worker, event in changes.items()}
    assert carried == traces


def _certificate() -> EventEnvelope:
    granted = worker_events.SkillCertificateRecorded(worker_id=WORKER, level=workers_pb2.SKILL_LEVEL_2)
    return _event(granted, "/jiazheng/workers")


@pytest.mark.parametrize("complaint_first", [True, False])
async def test_a_fall_carries_the_trace_of_the_outcome_not_of_a_gain_in_the_same_poll(
    uow: FakeCreditUnitOfWork, complaint_first: bool
) -> None:
    outcome, gain = _in_trace(_severe_complaint(), "5" * 32), _in_trace(_certificate(), "6" * 32)

    await _apply(uow, *((outcome, gain) if complaint_first else (gain, outcome)))

    assert _level_change(uow) == (credit_events.CREDIT_LEVEL_D, "5" * 32)


async def test_a_rise_carries_the_trace_of_the_gain_not_of_a_smaller_loss_in_the_same_poll(
    uow: FakeCreditUnitOfWork,
) -> None:
    no_show = order_events.NoShowReported(order_id="o-1", worker_id=WORKER, at_fault=orders_pb2.PARTY_WORKER)
    await _apply(uow, _complaint(c.SEVERITY_MAJOR, "case-1"), _order_event(no_show))  # 600 - 80 - 40
    assert uow.scores.by_worker[WORKER].level is Level.D
    uow.published.clear()
    gain, loss = (
        _in_trace(_certificate(), "7" * 32),
        _in_trace(_complaint(c.SEVERITY_MINOR, "case-2"), "8" * 32),
    )

    await _apply(uow, gain, loss)  # + 60 - 30

    assert _level_change(uow) == (credit_events.CREDIT_LEVEL_C, "7" * 32)


async def test_a_scored_fact_of_an_employed_worker_sets_the_companys_regrade_a_booking_does_not(
    uow: FakeCreditUnitOfWork,
) -> None:
    await _apply(uow, _event(worker_events.WorkerRegistered(worker_id=WORKER, company_id="co-1"), "/w"))
    uow.timers.pending.clear()  # the registration's regrade
    booked = order_events.OrderCreated(order_id="o-1", platform_id="p-1", worker_id=WORKER)

    await _apply(uow, _order_event(booked))
    assert uow.timers.pending == {}
    uow.clock.advance(timedelta(seconds=1))
    await _apply(uow, _severe_complaint())

    [regrade] = [t for t in uow.timers.pending.values() if t.kind == companies.REGRADE_TIMER]
    assert (regrade.key, regrade.due_at) == ("co-1", NOW + timedelta(seconds=1) + companies.REGRADE_DELAY)


def _order_event(message: Message) -> EventEnvelope:
    return new_event(message, source="/jiazheng/orders", subject="orders/o-1", time=NOW)


@pytest.mark.parametrize(
    ("event", "kind", "magnitude"),
    [
        (
            _order_event(order_events.OrderCompleted(order_id="o-1", worker_id=WORKER)),
            FactKind.ORDER_COMPLETED,
            1,
        ),
        (
            _order_event(
                order_events.RatingPosted(
                    order_id="o-1", worker_id=WORKER, rater=orders_pb2.PARTY_CONSUMER, stars=5
                )
            ),
            FactKind.RATING,
            5,
        ),
        (
            _order_event(
                order_events.NoShowReported(
                    order_id="o-1", worker_id=WORKER, at_fault=orders_pb2.PARTY_WORKER
                )
            ),
            FactKind.NO_SHOW,
            1,
        ),
        (
            _event(
                worker_events.TrainingRecorded(worker_id=WORKER, hours=16, exam_passed=True),
                "/jiazheng/workers",
            ),
            FactKind.TRAINING_COMPLETED,
            16,
        ),
        (
            _event(
                worker_events.SkillCertificateRecorded(worker_id=WORKER, level=workers_pb2.SKILL_LEVEL_3),
                "/jiazheng/workers",
            ),
            FactKind.CERTIFICATE_GRANTED,
            3,
        ),
        (
            _event(
                worker_events.BackgroundCheckRecorded(worker_id=WORKER, passed=False, flags=["a", "b"]),
                "/jiazheng/workers",
            ),
            FactKind.BACKGROUND_FLAGGED,
            2,
        ),
        (
            _event(
                insurance_events.ClaimPaid(
                    claim_id="k", worker_id=WORKER, worker_at_fault=True, paid_fen=300_000
                ),
                "/jiazheng/insurance",
            ),
            FactKind.CLAIM_PAID_AT_FAULT,
            300_000,
        ),
        (
            _event(
                complaint_events.AgreementFollowedUp(
                    case_id="c", performed=False, breached_by=c.PARTY_KIND_WORKER, worker_id=WORKER
                ),
                "/jiazheng/complaints",
            ),
            FactKind.AGREEMENT_BREACHED,
            1,
        ),
    ],
)
async def test_each_event_kind_becomes_its_fact_and_moves_the_score_its_way(
    uow: FakeCreditUnitOfWork, event: EventEnvelope, kind: FactKind, magnitude: int
) -> None:
    await _apply(uow, event)

    [entry] = uow.ledger.entries
    assert (entry.kind, entry.magnitude) == (kind, magnitude)
    score = uow.scores.by_worker[WORKER].score
    positive = kind in (
        FactKind.ORDER_COMPLETED,
        FactKind.RATING,
        FactKind.TRAINING_COMPLETED,
        FactKind.CERTIFICATE_GRANTED,
    )
    assert score > 600 if positive else score < 600


async def test_what_credit_does_not_score_records_nothing_or_no_points(uow: FakeCreditUnitOfWork) -> None:
    worker_rating = order_events.RatingPosted(
        order_id="o", worker_id=WORKER, rater=orders_pb2.PARTY_WORKER, stars=1
    )
    consumer_no_show = order_events.NoShowReported(
        order_id="o", worker_id=WORKER, at_fault=orders_pb2.PARTY_CONSUMER
    )
    not_upheld = complaint_events.CaseResolved(
        case_id="c",
        severity=c.SEVERITY_SEVERE,
        worker_id=WORKER,
        outcome=c.Outcome(result=c.OUTCOME_RESULT_NOT_SUBSTANTIATED),
    )

    await _apply(uow, _order_event(worker_rating), _order_event(consumer_no_show), _event(not_upheld, "/c"))

    assert uow.ledger.entries == []
    assert _levels(uow) == []


async def test_a_fading_penalty_lifts_the_level_on_its_day_by_the_timer_alone(
    uow: FakeCreditUnitOfWork,
) -> None:
    await _apply(uow, _severe_complaint())
    assert uow.scores.by_worker[WORKER].level is Level.D
    due = uow.timers.pending[(scoring.REEVALUATION_TIMER, WORKER)].due_at

    timers = TimerWorker(
        lambda: uow, {scoring.REEVALUATION_TIMER: scoring.reevaluation_due}, ServiceSettings(), _healthy
    )
    uow.clock.advance(due - NOW - timedelta(seconds=1))
    assert await timers.fire_due() == 0
    uow.clock.advance(timedelta(seconds=1))
    assert await timers.fire_due() == 1

    assert uow.scores.by_worker[WORKER].level is Level.C
    assert [e.level for e in _levels(uow)] == [credit_events.CREDIT_LEVEL_D, credit_events.CREDIT_LEVEL_C]


async def test_workers_events_keep_the_employer_the_card_and_the_grants(uow: FakeCreditUnitOfWork) -> None:
    grant = worker_events.ConsentGranted(
        worker_id=WORKER,
        grant_id="g-1",
        platform_id="p-1",
        consumer_ref="c-1",
        expire_time=timestamp(NOW + timedelta(hours=24)),
    )
    await _apply(
        uow,
        _event(worker_events.WorkerRegistered(worker_id=WORKER, company_id="co-1"), "/w"),
        _event(worker_events.CardStatusChanged(worker_id=WORKER, colour=workers_pb2.CARD_COLOUR_GREEN), "/w"),
        _event(grant, "/w"),
        _event(worker_events.ConsentRevoked(worker_id=WORKER, grant_id="g-1"), "/w"),
    )

    assert uow.profiles.companies[WORKER] == "co-1"
    assert uow.profiles.colours[WORKER] == "GREEN"
    assert uow.profiles.grants["g-1"].expires_at == NOW + timedelta(hours=24)
    assert uow.profiles.revoked == {"g-1"}


async def test_an_event_of_a_type_credit_does_not_know_is_kept_unscored_not_dropped(
    uow: FakeCreditUnitOfWork,
) -> None:
    newer = new_event(
        StringValue(value="a producer's newer event"), source="/jiazheng/workers", subject=f"workers/{WORKER}"
    )
    coverage = _event(
        insurance_events.WorkerCoverageChanged(worker_id=WORKER, covered=True), "/jiazheng/insurance"
    )

    assert await _apply(uow, newer, coverage) == ["applied", "ignored"]

    [entry] = uow.ledger.entries
    assert (entry.kind, entry.event_type) == (FactKind.UNSCORED, "google.protobuf.StringValue")
    assert WORKER not in uow.scores.by_worker  # an unscored fact moves nothing
