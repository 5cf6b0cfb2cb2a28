"""Complaints use cases and event effects through the in-memory unit of work: what is stored, what
is published, what is refused; deadlines fired by the real TimerWorker on the fake clock; orders'
events built by the orders service's own producer, insurance's as its contract says."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import pytest
from google.protobuf.message import Message

from jiazheng.complaints.events.v1 import events_pb2 as ev
from jiazheng.complaints.v1 import complaints_pb2 as pb
from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from libs.common.auth import Principal, Role
from libs.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermanentEventError,
    PermissionDenied,
)
from libs.common.events import EventEnvelope, new_event
from libs.common.inbox import IdempotentConsumer, KafkaRecord
from libs.common.kafka import events_topic
from libs.common.settings import ServiceSettings
from libs.common.testing import FakeDeadLetters, FixedClock
from libs.common.timers import DueTimer, TimerHandler, TimerWorker
from services.complaints import domain, service_layer
from services.complaints.domain import BEIJING, CaseKind, CaseState, PartyKind
from services.complaints.events import TOPIC
from services.complaints.handlers import EFFECTS
from services.complaints.service_layer import DEADLINE_TIMER, REFERRAL_TIMER, KnownOrder
from services.complaints.tests.fakes import FakeComplaintsUnitOfWork
from services.orders import domain as orders
from services.orders import events as order_events
from services.orders.tests.test_contract import make_contract

NOW = datetime(2026, 2, 12, 2, 0, tzinfo=UTC)  # Thursday 10:00 in Beijing, before the Spring Festival
DECISION_DUE = datetime(2026, 3, 1, tzinfo=BEIJING)  # 7 working days after filing (two make-up Saturdays)
RULES = service_layer.Rules(domain.WorkingCalendar())
ORDER_ID = "0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c"
PLATFORM = Principal("meituan-api", Role.PLATFORM, "p-meituan")
OTHER_PLATFORM = Principal("ele-api", Role.PLATFORM, "p-ele")
COMPANY = Principal("jiajie-api", Role.COMPANY, "c-jiajie")
OTHER_COMPANY = Principal("other-api", Role.COMPANY, "c-other")
MEDIATOR = Principal("mediator-wang", Role.MEDIATOR, "consumer_association")
OTHER_MEDIATOR = Principal("mediator-li", Role.MEDIATOR, "consumer_association")
PEOPLES_MEDIATOR = Principal("mediator-zhao", Role.MEDIATOR, "peoples_mediation")
OPERATOR = Principal("ops-1", Role.OPERATOR, "")
UNION = Principal("union-api", Role.UNION, "u-haidian")
INSURER = Principal("picc-api", Role.INSURER, "picc")
INSURANCE_SOURCE = "/jiazheng/insurance"
DESCRIPTION = "阿姨打碎了花瓶，还顶撞老人"
AGREEMENT = domain.Agreement(
    facts="花瓶打碎",
    responsibility="公司承担",
    undertakings=(domain.Undertaking(PartyKind.COMPANY, "赔偿 300 元", date(2026, 2, 20)),),
)
FOLLOW_UP_DUE = datetime(2026, 2, 21, tzinfo=BEIJING)  # the end of the last due date
OUTCOME = domain.Outcome(domain.OutcomeResult.PARTLY_SUBSTANTIATED, PartyKind.COMPANY, 30_000)
M = TypeVar("M", bound=Message)


def _complaint(**changes: object) -> domain.Filing:
    filing = domain.Filing(
        kind=CaseKind.COMPLAINT,
        category=domain.Category.DAMAGE,
        severity=domain.Severity.MAJOR,
        complainant=PartyKind.CONSUMER,
        respondent=PartyKind.COMPANY,
        description=DESCRIPTION,
        platform_id="p-meituan",
        worker_id="w-42",
        company_id="c-jiajie",
        filed_by="p-meituan",
    )
    return dataclasses.replace(filing, **changes)  # type: ignore[arg-type]


def _dispute(**changes: object) -> domain.Filing:
    """A worker's wage dispute against the company, under 员工制."""
    dispute = {
        "kind": CaseKind.WORKER_DISPUTE,
        "category": domain.Category.UNPAID_WAGES,
        "complainant": PartyKind.WORKER,
        "platform_id": "",
        "employee_model": True,
        "filed_by": UNION.tenant,
    }
    return _complaint(**{**dispute, **changes})


@pytest.fixture
def uow() -> FakeComplaintsUnitOfWork:
    return FakeComplaintsUnitOfWork(FixedClock(NOW))


async def _file(uow: FakeComplaintsUnitOfWork, **changes: object) -> domain.Case:
    return await service_layer.file_complaint(uow, "p-meituan", uuid.uuid4(), _complaint(**changes))


async def _rejected(uow: FakeComplaintsUnitOfWork, **changes: object) -> domain.Case:
    """A complaint the company rejected: in the consumer association's queue."""
    case = await _file(uow, **changes)
    return await service_layer.decide(uow, RULES, COMPANY, case.case_id, accept=False)


async def _held(uow: FakeComplaintsUnitOfWork) -> domain.Case:
    await _rejected(uow)
    return await service_layer.claim_next(uow, RULES, MEDIATOR)


async def _dispute_in_mediation(uow: FakeComplaintsUnitOfWork) -> domain.Case:
    """A union's wage dispute the company rejected: in people's mediation."""
    case = await service_layer.file_worker_dispute(uow, UNION, uuid.uuid4(), _dispute())
    return await service_layer.decide(uow, RULES, COMPANY, case.case_id, accept=False)


def _stored(uow: FakeComplaintsUnitOfWork, case: domain.Case) -> domain.Case:
    return uow.cases.by_id[case.case_id]


def _envelopes(uow: FakeComplaintsUnitOfWork, kind: type[Message]) -> list[EventEnvelope]:
    name = kind.DESCRIPTOR.full_name
    return [p.event for p in uow.published if p.event.type == name and p.topic == TOPIC]


def _published(uow: FakeComplaintsUnitOfWork, kind: type[M]) -> list[M]:
    return [event.parse(kind) for event in _envelopes(uow, kind)]


def _breaches(uow: FakeComplaintsUnitOfWork) -> list[str]:
    return [b.deadline_kind for b in _published(uow, ev.SlaBreached)]


async def _answers() -> bool:
    return True


def _timers(uow: FakeComplaintsUnitOfWork) -> TimerWorker[FakeComplaintsUnitOfWork]:
    """The timer worker as the service composes it, on the fake unit of work and its clock."""

    async def deadline_due(unit: FakeComplaintsUnitOfWork, timer: DueTimer) -> None:
        await service_layer.deadline_due(unit, RULES, timer)

    handlers: dict[str, TimerHandler[FakeComplaintsUnitOfWork]] = {
        DEADLINE_TIMER: deadline_due,
        REFERRAL_TIMER: service_layer.referral_due,
    }
    return TimerWorker(lambda: uow, handlers, ServiceSettings(), _answers)


def _pending(uow: FakeComplaintsUnitOfWork, kind: str, case: domain.Case) -> DueTimer | None:
    return uow.timers.pending.get((kind, str(case.case_id)))


async def _until(uow: FakeComplaintsUnitOfWork, due: datetime) -> int:
    """Fire what is due just before ``due`` (nothing is expected), then at ``due``; how many fired."""
    worker = _timers(uow)
    uow.clock.advance(due - uow.clock.now() - timedelta(seconds=1))
    assert await worker.fire_due() == 0
    uow.clock.advance(timedelta(seconds=1))
    return await worker.fire_due()


# -- filing ----------------------------------------------------------------------------------


async def test_a_complaint_about_a_known_order_takes_its_worker_company_and_district(
    uow: FakeComplaintsUnitOfWork,
) -> None:
    await uow.orders.upsert(KnownOrder(ORDER_ID, "p-meituan", "110105", "w-7", "c-huamei"))

    case = await _file(uow, order_id=ORDER_ID, worker_id="", company_id="")

    assert (case.filing.worker_id, case.filing.company_id, case.filing.district_code) == (
        "w-7",
        "c-huamei",
        "110105",
    )
    assert _stored(uow, case) == case
    [filed] = _published(uow, ev.CaseFiled)
    assert (filed.worker_id, filed.company_id, filed.district_code) == ("w-7", "c-huamei", "110105")


@pytest.mark.parametrize("known_platform", ["p-ele", None], ids=["another_platforms", "unknown"])
async def test_an_order_the_platform_does_not_have_is_not_found(
    uow: FakeComplaintsUnitOfWork, known_platform: str | None
) -> None:
    if known_platform:
        await uow.orders.upsert(KnownOrder(ORDER_ID, known_platform, "110105", "w-7", "c-huamei"))

    with pytest.raises(NotFound, match=ORDER_ID):
        await _file(uow, order_id=ORDER_ID)

    assert not uow.cases.by_id
    assert not uow.published


@pytest.mark.parametrize(
    ("respondent", "field"), [(PartyKind.WORKER, "worker"), (PartyKind.COMPANY, "company")]
)
async def test_a_complaint_names_its_respondent(
    uow: FakeComplaintsUnitOfWork, respondent: PartyKind, field: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await _file(uow, respondent=respondent, worker_id="", company_id="")

    assert raised.value.field == field
    assert not uow.cases.by_id


async def test_a_retry_returns_the_first_case_and_another_filing_under_its_request_id_is_refused(
    uow: FakeComplaintsUnitOfWork,
) -> None:
    request_id = uuid.uuid4()
    first = await service_layer.file_complaint(uow, "p-meituan", request_id, _complaint())

    again = await service_layer.file_complaint(uow, "p-meituan", request_id, _complaint())
    with pytest.raises(AlreadyExists, match=first.name):
        await service_layer.file_complaint(uow, "p-meituan", request_id, _complaint(description="别的"))

    assert again == first
    assert list(uow.cases.by_id) == [first.case_id]
    assert len(_published(uow, ev.CaseFiled)) == 1


async def test_a_retry_is_the_same_request_even_when_the_order_became_assigned_meanwhile(
    uow: FakeComplaintsUnitOfWork,
) -> None:
    request_id = uuid.uuid4()
    await uow.orders.upsert(KnownOrder(ORDER_ID, "p-meituan", "110105"))
    filing = _complaint(order_id=ORDER_ID, worker_id="")
    first = await service_layer.file_complaint(uow, "p-meituan", request_id, filing)
    await uow.orders.upsert(KnownOrder(ORDER_ID, "p-meituan", "110105", "w-7", "c-jiajie"))

    again = await service_layer.file_complaint(uow, "p-meituan", request_id, filing)

    assert again == first


async def test_case_filed_is_published_without_the_description(uow: FakeComplaintsUnitOfWork) -> None:
    case = await _file(uow)

    [event] = _envelopes(uow, ev.CaseFiled)
    filed = event.parse(ev.CaseFiled)
    assert (event.subject, filed.case_id) == (case.name, str(case.case_id))
    assert filed.first_response_deadline.ToDatetime(tzinfo=UTC) == NOW + timedelta(hours=24)
    assert DESCRIPTION.encode() not in event.data
    assert "花瓶" not in str(filed)


# -- deadlines by the clock ------------------------------------------------------------------


async def test_an_ignored_complaint_reaches_mediation_by_the_clock_alone(
    uow: FakeComplaintsUnitOfWork,
) -> None:
    case = await _file(uow)

    assert await _until(uow, NOW + timedelta(hours=24)) == 1
    missed = _stored(uow, case)
    assert _breaches(uow) == ["first_response"]
    assert (missed.state, missed.deadline) == (
        CaseState.FILED,
        domain.Deadline(domain.DeadlineKind.DECISION, DECISION_DUE),
    )
    assert _pending(uow, DEADLINE_TIMER, case) is not None

    assert await _until(uow, DECISION_DUE) == 1
    mediated = _stored(uow, case)
    mediation_due = datetime(2026, 5, 8, tzinfo=BEIJING)  # 45 working days from 1 March
    assert _breaches(uow) == ["first_response", "decision"]
    assert [b.deadline.ToDatetime(tzinfo=UTC) for b in _published(uow, ev.SlaBreached)] == [
        NOW + timedelta(hours=24),
        DECISION_DUE,
    ]
    [escalated] = _published(uow, ev.CaseEscalatedToMediation)
    assert (escalated.reason, escalated.body) == ("decision_breached", pb.MEDIATION_BODY_CONSUMER_ASSOCIATION)
    assert escalated.mediation_deadline.ToDatetime(tzinfo=UTC) == mediation_due
    assert (mediated.state, mediated.deadline) == (
        CaseState.IN_MEDIATION,
        domain.Deadline(domain.DeadlineKind.MEDIATION, mediation_due),
    )
    timer = _pending(uow, DEADLINE_TIMER, case)
    assert timer is not None
    assert (timer.due_at, timer.payload["kind"]) == (mediation_due, "mediation")


@pytest.mark.parametrize(
    ("kind", "at"),
    [("first_response", DECISION_DUE + timedelta(hours=1)), ("decision", NOW + timedelta(hours=25))],
    ids=["not_running", "not_yet_due"],
)
async def test_a_stale_deadline_timer_does_nothing(
    uow: FakeComplaintsUnitOfWork, kind: str, at: datetime
) -> None:
    """A timer claimed for a deadline the case no longer runs, or before its rescheduled due time."""
    responded = await service_layer.respond(uow, RULES, COMPANY, (await _file(uow)).case_id)
    uow.clock.advance(at - NOW)
    published = len(uow.published)
    stale = DueTimer(uuid.uuid4(), DEADLINE_TIMER, str(responded.case_id), NOW, {"kind": kind}, 0)

    async with uow:
        await service_layer.deadline_due(uow, RULES, stale)
        await uow.commit()

    assert _stored(uow, responded) == responded
    assert len(uow.published) == published


async def test_the_mediation_deadline_escalates_a_workers_dispute_to_legal_aid(
    uow: FakeComplaintsUnitOfWork,
) -> None:
    case = await _dispute_in_mediation(uow)
    assert case.deadline is not None

    assert await _until(uow, case.deadline.due_at) == 1

    assert _stored(uow, case).route is domain.EscalationRoute.LEGAL_AID
    [escalated] = _published(uow, ev.CaseEscalatedExternally)
    assert (escalated.reason, escalated.route) == ("mediation_deadline", pb.ESCALATION_ROUTE_LEGAL_AID)
    assert _breaches(uow) == []  # mediation ending without agreement is no breach of the platform's SLA
    assert _pending(uow, DEADLINE_TIMER, case) is None
    assert [r.case_id for r in await service_layer.referrals(uow, 10)] == [case.case_id]


# -- answering -------------------------------------------------------------------------------

Answer = Callable[[FakeComplaintsUnitOfWork, Principal, uuid.UUID], Awaitable[domain.Case]]
ANSWERS: dict[str, Answer] = {
    "respond": lambda uow, who, case_id: service_layer.respond(uow, RULES, who, case_id),
    "accept": lambda uow, who, case_id: service_layer.decide(uow, RULES, who, case_id, True),
    "reject": lambda uow, who, case_id: service_layer.decide(uow, RULES, who, case_id, False),
}


async def _against_consumer(uow: FakeComplaintsUnitOfWork) -> domain.Case:
    """A worker's dispute with a consumer, filed by the platform; the worker's company is named."""
    filing = _dispute(
        respondent=PartyKind.CONSUMER,
        category=domain.Category.ABUSE,
        platform_id="p-meituan",
        filed_by="p-meituan",
    )
    return await service_layer.file_worker_dispute(uow, PLATFORM, uuid.uuid4(), filing)


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
async def test_a_company_that_is_not_the_respondent_does_not_answer(
    uow: FakeComplaintsUnitOfWork, answer: Answer
) -> None:
    case = await _against_consumer(uow)

    with pytest.raises(PermissionDenied):
        await answer(uow, COMPANY, case.case_id)
    with pytest.raises(NotFound):
        await answer(uow, OTHER_COMPANY, case.case_id)

    assert _stored(uow, case) == case
    assert len(uow.published) == 1


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
async def test_the_complainants_platform_does_not_answer_for_the_company(
    uow: FakeComplaintsUnitOfWork, answer: Answer
) -> None:
    case = await _file(uow)

    with pytest.raises(PermissionDenied):
        await answer(uow, PLATFORM, case.case_id)

    assert _stored(uow, case).state is CaseState.FILED


async def test_the_platform_answers_for_a_consumer_respondent(uow: FakeComplaintsUnitOfWork) -> None:
    case = await _against_consumer(uow)
    uow.clock.advance(timedelta(hours=3))

    responded = await service_layer.respond(uow, RULES, PLATFORM, case.case_id)
    rejected = await service_layer.decide(uow, RULES, PLATFORM, case.case_id, accept=False)

    assert (responded.state, responded.deadline) == (
        CaseState.RESPONDED,
        domain.Deadline(domain.DeadlineKind.DECISION, DECISION_DUE),
    )
    [answered] = _published(uow, ev.CaseAnswered)
    assert (answered.state, answered.response_seconds) == (pb.CASE_STATE_RESPONDED, 3 * 3600)
    assert (rejected.state, rejected.body) == (CaseState.IN_MEDIATION, domain.MediationBody.PEOPLES_MEDIATION)
    [to_mediation] = _published(uow, ev.CaseEscalatedToMediation)
    assert to_mediation.reason == "rejected"


# -- mediation -------------------------------------------------------------------------------


async def test_claim_next_takes_the_most_severe_case_first(uow: FakeComplaintsUnitOfWork) -> None:
    minor = await _rejected(uow, severity=domain.Severity.MINOR)
    severe = await _rejected(uow, severity=domain.Severity.SEVERE)

    first = await service_layer.claim_next(uow, RULES, MEDIATOR)
    second = await service_layer.claim_next(uow, RULES, OTHER_MEDIATOR)
    with pytest.raises(NotFound):
        await service_layer.claim_next(uow, RULES, MEDIATOR)

    assert (first.case_id, first.mediator) == (severe.case_id, MEDIATOR.id)
    assert (second.case_id, second.mediator) == (minor.case_id, OTHER_MEDIATOR.id)
    assigned = _published(uow, ev.MediationAssigned)
    assert [(a.case_id, a.mediator) for a in assigned] == [
        (str(severe.case_id), MEDIATOR.id),
        (str(minor.case_id), OTHER_MEDIATOR.id),
    ]
    assert assigned[0].lease_expire_time.ToDatetime(tzinfo=UTC) == NOW + RULES.lease


HolderStep = Callable[[FakeComplaintsUnitOfWork, Principal, uuid.UUID], Awaitable[domain.Case]]
HOLDER_STEPS: dict[str, HolderStep] = {
    "resolve": lambda uow, who, case_id: service_layer.resolve(uow, who, case_id, OUTCOME),
    "record_agreement": lambda uow, who, case_id: service_layer.record_agreement(
        uow, who, case_id, AGREEMENT, OUTCOME
    ),
    "end_mediation": lambda uow, who, case_id: service_layer.end_mediation(
        uow, RULES, who, case_id, domain.EscalationRoute.COURT
    ),
    "release": lambda uow, who, case_id: service_layer.release(uow, who, case_id),
}


@pytest.mark.parametrize("step", HOLDER_STEPS.values(), ids=HOLDER_STEPS.keys())
async def test_every_holder_step_refuses_another_mediator_and_an_expired_lease_alike(
    uow: FakeComplaintsUnitOfWork, step: HolderStep
) -> None:
    held = await _held(uow)
    published = len(uow.published)

    with pytest.raises(PermissionDenied):
        await step(uow, OTHER_MEDIATOR, held.case_id)
    uow.clock.advance(RULES.lease)
    with pytest.raises(FailedPrecondition, match="lease expired"):
        await step(uow, MEDIATOR, held.case_id)

    assert _stored(uow, held) == held
    assert len(uow.published) == published


async def test_claim_next_of_an_empty_queue_is_not_found(uow: FakeComplaintsUnitOfWork) -> None:
    await _rejected(uow)  # in the consumer association's queue, not people's mediation

    with pytest.raises(NotFound):
        await service_layer.claim_next(uow, RULES, PEOPLES_MEDIATOR)


async def test_an_agreement_not_followed_up_in_time_is_a_breach(uow: FakeComplaintsUnitOfWork) -> None:
    held = await _held(uow)

    agreed = await service_layer.record_agreement(uow, MEDIATOR, held.case_id, AGREEMENT, OUTCOME)

    [reached] = _published(uow, ev.AgreementReached)
    assert (reached.last_due_date, reached.outcome.compensation_fen) == ("2026-02-20", 30_000)
    timer = _pending(uow, DEADLINE_TIMER, agreed)
    assert timer is not None
    assert (timer.due_at, timer.payload["kind"]) == (FOLLOW_UP_DUE, "agreement_follow_up")

    assert await _until(uow, FOLLOW_UP_DUE) == 1

    [breach] = _published(uow, ev.SlaBreached)
    assert (breach.deadline_kind, breach.company_id) == ("agreement_follow_up", "c-jiajie")
    overdue = _stored(uow, agreed)
    assert (overdue.state, overdue.deadline) == (CaseState.AGREEMENT, None)
    assert _pending(uow, DEADLINE_TIMER, agreed) is None


async def test_a_breached_agreement_is_published_and_escalated(uow: FakeComplaintsUnitOfWork) -> None:
    held = await _held(uow)
    await service_layer.record_agreement(uow, MEDIATOR, held.case_id, AGREEMENT, OUTCOME)

    breached = await service_layer.record_performance(
        uow, RULES, MEDIATOR, held.case_id, performed=False, breached_by=PartyKind.COMPANY
    )

    assert (breached.state, breached.route) == (CaseState.ESCALATED, domain.EscalationRoute.REGULATOR_12315)
    [followed] = _published(uow, ev.AgreementFollowedUp)
    assert (followed.performed, followed.breached_by, followed.company_id) == (
        False,
        pb.PARTY_KIND_COMPANY,
        "c-jiajie",
    )
    [escalated] = _published(uow, ev.CaseEscalatedExternally)
    assert (escalated.reason, escalated.route) == ("agreement_breached", pb.ESCALATION_ROUTE_12315)
    assert _published(uow, ev.CaseResolved) == []
    assert _pending(uow, DEADLINE_TIMER, breached) is None


async def _referred(uow: FakeComplaintsUnitOfWork) -> domain.Case:
    case = await _dispute_in_mediation(uow)
    await service_layer.claim_next(uow, RULES, PEOPLES_MEDIATOR)
    return await service_layer.end_mediation(
        uow, RULES, PEOPLES_MEDIATOR, case.case_id, domain.EscalationRoute.LEGAL_AID
    )


async def test_a_dispute_ended_without_agreement_is_referred_to_legal_aid_on_a_deadline(
    uow: FakeComplaintsUnitOfWork,
) -> None:
    referral_due = datetime(2026, 2, 27, tzinfo=BEIJING)  # 5 working days, over the Spring Festival

    ended = await _referred(uow)

    [referral] = await service_layer.referrals(uow, 10)
    assert (referral.case_id, referral.labour_dispute, referral.deadline) == (
        ended.case_id,
        True,
        referral_due,
    )
    timer = _pending(uow, REFERRAL_TIMER, ended)
    assert timer is not None
    assert timer.due_at == referral_due
    [escalated] = _published(uow, ev.CaseEscalatedExternally)
    assert (escalated.reason, escalated.route) == ("no_agreement", pb.ESCALATION_ROUTE_LEGAL_AID)
    [published] = _published(uow, ev.LegalAidReferral)
    assert (published.worker_id, published.labour_dispute, published.accepted) == ("w-42", True, False)

    assert await _until(uow, referral_due) == 1

    [overdue] = await service_layer.referrals(uow, 10)
    assert overdue.overdue
    [breach] = _published(uow, ev.SlaBreached)
    assert (breach.deadline_kind, breach.deadline.ToDatetime(tzinfo=UTC)) == (
        "legal_aid_referral",
        referral_due,
    )


async def test_an_accepted_referral_never_falls_due(uow: FakeComplaintsUnitOfWork) -> None:
    ended = await _referred(uow)
    uow.clock.advance(timedelta(days=1))

    accepted = await service_layer.accept_referral(uow, ended.case_id)

    assert accepted.accepted_at == uow.clock.now()
    assert _pending(uow, REFERRAL_TIMER, ended) is None
    assert [r.accepted for r in _published(uow, ev.LegalAidReferral)] == [False, True]
    uow.clock.advance(timedelta(days=30))
    assert await _timers(uow).fire_due() == 0
    [listed] = await service_layer.referrals(uow, 10)
    assert not listed.overdue
    assert _breaches(uow) == []


# -- resolution ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "requests"),
    [(domain.OutcomeResult.SUBSTANTIATED, 1), (domain.OutcomeResult.PARTLY_SUBSTANTIATED, 0)],
)
async def test_a_substantiated_severe_complaint_against_a_worker_asks_for_the_suspension(
    uow: FakeComplaintsUnitOfWork, result: domain.OutcomeResult, requests: int
) -> None:
    case = await _file(uow, respondent=PartyKind.WORKER, severity=domain.Severity.SEVERE)
    await service_layer.decide(uow, RULES, COMPANY, case.case_id, accept=True)

    resolved = await service_layer.resolve(
        uow, COMPANY, case.case_id, domain.Outcome(result, PartyKind.WORKER)
    )

    assert (resolved.state, resolved.resolved_by) == (CaseState.RESOLVED, COMPANY.id)
    [done] = _published(uow, ev.CaseResolved)
    assert (done.case_id, done.worker_id) == (str(case.case_id), "w-42")
    suspensions = _envelopes(uow, ev.WorkerSuspensionRequested)
    assert len(suspensions) == requests
    for event in suspensions:
        assert event.key == b"workers/w-42"
        assert event.parse(ev.WorkerSuspensionRequested).case_id == str(case.case_id)


def _claim_dispute() -> domain.Case:
    filing = _complaint(
        kind=CaseKind.CLAIM_DISPUTE,
        complainant=PartyKind.COMPANY,
        respondent=PartyKind.INSURER,
        filed_by="c-huamei",
    )
    return domain.to_mediation(domain.file_case(uuid.uuid4(), filing, NOW), NOW, RULES.calendar)


def _union_dispute() -> domain.Case:
    return domain.file_case(uuid.uuid4(), _dispute(), NOW)


def _rejected_complaint() -> domain.Case:
    return domain.to_mediation(domain.file_case(uuid.uuid4(), _complaint(), NOW), NOW, RULES.calendar)


@pytest.mark.parametrize(
    ("case", "principal", "sees"),
    [
        (_rejected_complaint, OPERATOR, True),
        (_rejected_complaint, PLATFORM, True),
        (_rejected_complaint, OTHER_PLATFORM, False),
        (_rejected_complaint, COMPANY, True),
        (_rejected_complaint, OTHER_COMPANY, False),
        (_rejected_complaint, MEDIATOR, True),
        (_rejected_complaint, PEOPLES_MEDIATOR, False),
        (_rejected_complaint, INSURER, False),
        (_rejected_complaint, UNION, False),
        (_rejected_complaint, Principal("reg", Role.REGULATOR, "bj"), False),
        (_claim_dispute, INSURER, True),
        (_claim_dispute, Principal("huamei-api", Role.COMPANY, "c-huamei"), True),
        (_claim_dispute, MEDIATOR, False),
        (_union_dispute, UNION, True),
        (_union_dispute, Principal("other-union", Role.UNION, "u-chaoyang"), False),
        (_union_dispute, PEOPLES_MEDIATOR, False),  # not in mediation yet
        (_union_dispute, PLATFORM, False),
    ],
)
def test_who_may_see_a_case(case: Callable[[], domain.Case], principal: Principal, sees: bool) -> None:
    assert service_layer.may_see(case(), principal) is sees


# -- event effects ---------------------------------------------------------------------------


def _order(**changes: object) -> orders.Order:
    draft = orders.OrderDraft(
        service_type=orders.ServiceType.CLEANING,
        district_code="110105",
        consumer_ref="c-1",
        worker_id=None,
        scheduled_start=NOW + timedelta(days=2),
        duration_hours=4,
    )
    order = orders.Order(
        uuid.UUID(ORDER_ID),
        "p-meituan",
        draft,
        orders.OrderState.CREATED,
        NOW,
        price_fen=24_000,
        catalogue_version=1,
    )
    return dataclasses.replace(order, **changes)  # type: ignore[arg-type]


def _assigned() -> EventEnvelope:
    order = _order(state=orders.OrderState.ASSIGNED, assigned_worker_id="w-7")
    offer = orders.Offer(uuid.uuid4(), order.order_id, "w-7", orders.OfferState.ACCEPTED, NOW, NOW)
    return order_events.order_assigned(order, offer, make_contract(), "c-huamei")


def _charge_disputed(charge: str, by: orders.Party) -> EventEnvelope:
    order = _order(state=orders.OrderState.CANCELLED, assigned_worker_id="w-7", cancellation_fee_fen=5_000)
    return order_events.charge_disputed(order, charge, by, "我没有迟到", "c-huamei", NOW)


def _insurance(message: Message, claim_id: str) -> EventEnvelope:
    return new_event(message, source=INSURANCE_SOURCE, subject=f"claims/{claim_id}", time=NOW)


def _record(event: EventEnvelope) -> KafkaRecord:
    topic = events_topic("insurance" if event.source == INSURANCE_SOURCE else "orders")
    return KafkaRecord(topic, event.key, event.data, event.kafka_headers())


Consumer = IdempotentConsumer[FakeComplaintsUnitOfWork]


@pytest.fixture
def dead_letters() -> FakeDeadLetters:
    return FakeDeadLetters()


@pytest.fixture
def consumer(uow: FakeComplaintsUnitOfWork, dead_letters: FakeDeadLetters) -> Consumer:
    return IdempotentConsumer("complaints", lambda: uow, EFFECTS, dead_letters, _answers, backoff_s=0)


async def _consume(consumer: Consumer, *events: EventEnvelope) -> list[str]:
    return await consumer.handle_batch([_record(e) for e in events])


async def _apply(uow: FakeComplaintsUnitOfWork, event: EventEnvelope) -> None:
    """The event's effect in a unit of work of its own, without the inbox (as a redelivery that
    slipped past it would run)."""
    async with uow:
        await EFFECTS[event.type](uow, [event])
        await uow.commit()


async def test_orders_created_and_assigned_are_known_and_complained_about(
    uow: FakeComplaintsUnitOfWork, consumer: Consumer
) -> None:
    created = order_events.order_created(_order())

    assert await _consume(consumer, created) == ["applied"]
    assert uow.orders.by_id[ORDER_ID] == KnownOrder(ORDER_ID, "p-meituan", "110105")
    assert await _consume(consumer, _assigned(), created) == ["applied", "duplicate"]
    assert uow.orders.by_id[ORDER_ID] == KnownOrder(ORDER_ID, "p-meituan", "110105", "w-7", "c-huamei")

    case = await _file(uow, order_id=ORDER_ID, worker_id="", company_id="")
    assert (case.filing.worker_id, case.filing.company_id) == ("w-7", "c-huamei")


@pytest.mark.parametrize(
    ("charge", "by", "category", "complainant", "respondent"),
    [
        ("no_show", orders.Party.WORKER, domain.Category.NO_SHOW, PartyKind.WORKER, PartyKind.CONSUMER),
        (
            "cancellation_fee",
            orders.Party.CONSUMER,
            domain.Category.FEES,
            PartyKind.CONSUMER,
            PartyKind.COMPANY,
        ),
    ],
)
async def test_a_disputed_charge_opens_one_charge_dispute_the_other_side_answers(
    uow: FakeComplaintsUnitOfWork,
    charge: str,
    by: orders.Party,
    category: domain.Category,
    complainant: PartyKind,
    respondent: PartyKind,
) -> None:
    event = _charge_disputed(charge, by)

    await _apply(uow, event)
    await _apply(uow, event)

    [case] = uow.cases.by_id.values()
    f = case.filing
    assert (f.kind, f.category, f.complainant, f.respondent) == (
        CaseKind.CHARGE_DISPUTE,
        category,
        complainant,
        respondent,
    )
    assert (f.platform_id, f.filed_by, f.order_id, f.worker_id, f.company_id, f.district_code) == (
        "p-meituan",
        "p-meituan",
        ORDER_ID,
        "w-7",
        "c-huamei",
        "110105",
    )
    assert len(_published(uow, ev.CaseFiled)) == 1
    answering = (
        PLATFORM if respondent is PartyKind.CONSUMER else Principal("huamei-api", Role.COMPANY, "c-huamei")
    )
    assert (await service_layer.respond(uow, RULES, answering, case.case_id)).state is CaseState.RESPONDED


async def test_a_contested_claim_denial_opens_a_claim_dispute_the_insurer_answers(
    uow: FakeComplaintsUnitOfWork, consumer: Consumer
) -> None:
    contested = insurance_events.ClaimDenialContested(
        claim_id="cl-1",
        order_id=ORDER_ID,
        worker_id="w-7",
        company_id="c-huamei",
        denial_reason="不在保险期内",
    )

    assert await _consume(consumer, _assigned(), _insurance(contested, "cl-1")) == ["applied", "applied"]

    [case] = uow.cases.by_id.values()
    f = case.filing
    assert (f.kind, f.category, f.complainant, f.respondent) == (
        CaseKind.CLAIM_DISPUTE,
        domain.Category.CLAIM_DENIED,
        PartyKind.COMPANY,
        PartyKind.INSURER,
    )
    assert (f.platform_id, f.district_code, f.filed_by) == ("p-meituan", "110105", "c-huamei")
    rejected = await service_layer.decide(uow, RULES, INSURER, case.case_id, accept=False)
    assert rejected.body is domain.MediationBody.INDUSTRY_ASSOCIATION


async def test_a_claim_paid_for_a_case_settles_its_compensation(
    uow: FakeComplaintsUnitOfWork, consumer: Consumer
) -> None:
    case = await _file(uow)
    paid = insurance_events.ClaimPaid(claim_id="cl-1", case_id=str(case.case_id), paid_fen=30_000)
    unrelated = insurance_events.ClaimPaid(claim_id="cl-2", paid_fen=10_000)

    outcomes = await _consume(consumer, _insurance(paid, "cl-1"), _insurance(unrelated, "cl-2"))

    assert outcomes == ["applied", "applied"]
    [settled] = _envelopes(uow, ev.CompensationSettled)
    message = settled.parse(ev.CompensationSettled)
    assert (settled.subject, message.claim, message.paid_fen) == (case.name, "claims/cl-1", 30_000)
    assert _stored(uow, case) == case


MALFORMED: dict[str, Callable[[], EventEnvelope]] = {
    "unknown_charge": lambda: _charge_disputed("tip", orders.Party.CONSUMER),
    "claim_without_company": lambda: _insurance(
        insurance_events.ClaimDenialContested(claim_id="cl-1"), "cl-1"
    ),
    "paid_for_a_bad_case_id": lambda: _insurance(
        insurance_events.ClaimPaid(claim_id="cl-1", case_id="42"), "cl-1"
    ),
}


@pytest.mark.parametrize("event", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_event_is_permanent_and_dead_lettered(
    uow: FakeComplaintsUnitOfWork,
    consumer: Consumer,
    dead_letters: FakeDeadLetters,
    event: Callable[[], EventEnvelope],
) -> None:
    malformed = event()

    with pytest.raises(PermanentEventError):
        await _apply(uow, malformed)
    assert await _consume(consumer, malformed) == ["dead_lettered"]

    [(_, error, _)] = dead_letters.sent
    assert error.startswith("PermanentEventError")
    assert not uow.cases.by_id
    assert not uow.published
