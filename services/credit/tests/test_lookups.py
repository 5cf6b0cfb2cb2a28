"""家政信用查 through the in-memory unit of work: who sees the full record and who the public view
(operators, the employing company, a platform's consumer under a valid grant; everyone else), the
level evaluated now, and operators' awards (once per request id, scored, a level change published).
What credit knows of the worker arrives as the producers' events, through the consumer."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from google.protobuf.message import Message

from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.orders.v1 import orders_pb2
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2
from libs.common.auth import Principal, Role
from libs.common.errors import InvalidArgument, NotFound
from libs.common.events import EventEnvelope, new_event
from libs.common.inbox import IdempotentConsumer, KafkaRecord
from libs.common.testing import FakeDeadLetters, FixedClock
from services.credit import lookups
from services.credit.handlers import EFFECTS
from services.credit.lookups import Award, WorkerCredit
from services.credit.model import BEIJING, CompanyGrade, FactKind, Grade, Level
from services.credit.tests.fakes import FakeCreditUnitOfWork
from services.workers import events as workers_events
from services.workers.domain.consent import ConsentGrant

NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)
WORKER = "0f4d9c2e-8a57-4b61-9a0e-5c3b2f1e7d10"
COMPANY = "c-jiajie"
PLATFORM = Principal("p-meituan", Role.PLATFORM, "p-meituan")
OPERATOR = Principal("ops", Role.OPERATOR, "")
CERTIFICATE = "jiazheng.workers.events.v1.SkillCertificateRecorded"
NO_SHOW = "jiazheng.orders.events.v1.NoShowReported"


@pytest.fixture
def uow() -> FakeCreditUnitOfWork:
    return FakeCreditUnitOfWork(FixedClock(NOW))


async def _healthy() -> bool:
    return True


async def _apply(uow: FakeCreditUnitOfWork, *events: EventEnvelope) -> None:
    consumer = IdempotentConsumer("credit", lambda: uow, EFFECTS, FakeDeadLetters(), _healthy)
    records = [KafkaRecord("t", e.key, e.data, e.kafka_headers()) for e in events]
    assert set(await consumer.handle_batch(records)) == {"applied"}


def _event(message: Message, at: datetime = NOW) -> EventEnvelope:
    return new_event(message, source="/test", subject=f"workers/{WORKER}", time=at)


@pytest.fixture
async def employed(uow: FakeCreditUnitOfWork) -> FakeCreditUnitOfWork:
    """A GREEN worker of COMPANY with a 四级 certificate (+30) and a no-show at fault (-40): 590, C."""
    await _apply(
        uow,
        _event(worker_events.WorkerRegistered(worker_id=WORKER, company_id=COMPANY)),
        _event(worker_events.CardStatusChanged(worker_id=WORKER, colour=workers_pb2.CARD_COLOUR_GREEN)),
        _event(
            worker_events.SkillCertificateRecorded(worker_id=WORKER, level=workers_pb2.SKILL_LEVEL_4),
            NOW - timedelta(days=1),
        ),
        _event(
            order_events.NoShowReported(order_id="o-1", worker_id=WORKER, at_fault=orders_pb2.PARTY_WORKER)
        ),
    )
    return uow


def _grant(platform: str = PLATFORM.tenant, consumer_ref: str = "c-7", hours: int = 24) -> ConsentGrant:
    return ConsentGrant(
        uuid.uuid4(), uuid.UUID(WORKER), platform, consumer_ref, NOW, NOW + timedelta(hours=hours)
    )


async def _look_up(
    uow: FakeCreditUnitOfWork, principal: Principal, consumer_ref: str = "", worker: str = WORKER
) -> WorkerCredit:
    return await lookups.get_worker_credit(uow.reading(), principal, worker, consumer_ref)  # as the API does


async def test_an_operator_sees_the_full_record_explained_fact_by_fact(
    employed: FakeCreditUnitOfWork,
) -> None:
    credit = await _look_up(employed, OPERATOR)

    assert (credit.worker_id, credit.level, credit.evaluated_at) == (WORKER, Level.C, NOW)
    assert (credit.profile.company_id, credit.profile.card_colour) == (COMPANY, "GREEN")
    assert credit.explanation is not None
    assert credit.explanation.score == 590
    assert [(s.line.kind, s.line.points, s.source) for s in credit.explanation.lines] == [
        (FactKind.CERTIFICATE_GRANTED, 30, CERTIFICATE),
        (FactKind.NO_SHOW, -40, NO_SHOW),
    ]
    assert [s.line.fact_id for s in credit.explanation.lines] == [e.event_id for e in employed.ledger.entries]


@pytest.mark.parametrize(
    ("principal", "full"),
    [
        (Principal("jiajie", Role.COMPANY, COMPANY), True),
        (Principal("other", Role.COMPANY, "c-other"), False),
        (Principal("regulator", Role.REGULATOR, ""), False),
        (Principal("mediator", Role.MEDIATOR, "consumer_association"), False),
        (Principal("orders", Role.SERVICE, ""), False),
        (PLATFORM, False),
    ],
    ids=lambda p: p.id if isinstance(p, Principal) else str(p),
)
async def test_the_employing_company_sees_the_full_record_everyone_else_the_public_view(
    employed: FakeCreditUnitOfWork, principal: Principal, full: bool
) -> None:
    credit = await _look_up(employed, principal)

    assert (credit.explanation is not None) is full
    assert (credit.level, credit.profile.company_id, credit.profile.card_colour) == (
        Level.C,
        COMPANY,
        "GREEN",
    )


async def test_the_public_view_names_the_company_and_its_grade(employed: FakeCreditUnitOfWork) -> None:
    employed.companies.grades[COMPANY] = CompanyGrade(Grade.AA, 80, (), NOW)

    credit = await _look_up(employed, Principal("regulator", Role.REGULATOR, ""))

    assert credit.profile == lookups.Profile(COMPANY, "GREEN", "AA")
    assert credit.explanation is None


async def test_a_platform_whose_consumer_holds_a_valid_grant_sees_the_full_record(
    employed: FakeCreditUnitOfWork,
) -> None:
    await _apply(employed, workers_events.consent_granted(_grant()))

    credit = await _look_up(employed, PLATFORM, "c-7")

    assert credit.explanation is not None
    assert credit.explanation.score == 590


@pytest.mark.parametrize(
    ("grant", "consumer_ref", "later"),
    [
        (_grant(consumer_ref="c-8"), "c-7", timedelta()),  # another consumer's grant
        (_grant(platform="p-other"), "c-7", timedelta()),  # another platform's grant
        (_grant(), "", timedelta()),  # asked for no consumer
        (_grant(), "c-7", timedelta(hours=24)),  # expired at this very instant
        (_grant(), "c-7", timedelta(days=3)),
    ],
    ids=["other-consumer", "other-platform", "no-consumer", "expiring-now", "expired"],
)
async def test_without_a_valid_grant_a_platform_gets_the_public_view_not_an_error(
    employed: FakeCreditUnitOfWork, grant: ConsentGrant, consumer_ref: str, later: timedelta
) -> None:
    await _apply(employed, workers_events.consent_granted(grant))
    employed.clock.advance(later)

    credit = await _look_up(employed, PLATFORM, consumer_ref)

    assert credit.explanation is None
    assert (credit.level, credit.profile.card_colour) == (Level.C, "GREEN")


async def test_a_revoked_grant_gives_the_public_view(employed: FakeCreditUnitOfWork) -> None:
    grant = _grant()
    await _apply(employed, workers_events.consent_granted(grant))
    assert (await _look_up(employed, PLATFORM, "c-7")).explanation is not None

    revoked = dataclasses.replace(grant, revoked_at=NOW + timedelta(minutes=5))
    await _apply(employed, workers_events.consent_revoked(revoked))

    assert (await _look_up(employed, PLATFORM, "c-7")).explanation is None


async def test_a_run_of_card_changes_leaves_each_workers_last_colour(employed: FakeCreditUnitOfWork) -> None:
    other = "w-other"
    await _apply(
        employed,
        *(
            _event(worker_events.CardStatusChanged(worker_id=worker, colour=colour))
            for worker, colour in [
                (WORKER, workers_pb2.CARD_COLOUR_RED),
                (other, workers_pb2.CARD_COLOUR_YELLOW),
                (WORKER, workers_pb2.CARD_COLOUR_YELLOW),
            ]
        ),
    )

    assert employed.profiles.colours[WORKER] == "YELLOW"
    assert employed.profiles.colours[other] == "YELLOW"
    assert (await _look_up(employed, OPERATOR)).profile.card_colour == "YELLOW"


async def test_a_worker_credit_never_heard_of_is_not_found(employed: FakeCreditUnitOfWork) -> None:
    with pytest.raises(NotFound, match="workers/w-unknown"):
        await _look_up(employed, OPERATOR, worker="w-unknown")


async def test_a_registered_worker_without_facts_starts_at_600(uow: FakeCreditUnitOfWork) -> None:
    await _apply(uow, _event(worker_events.WorkerRegistered(worker_id=WORKER, company_id=COMPANY)))

    credit = await _look_up(uow, OPERATOR)

    assert credit.explanation == lookups.Explanation(600, "2026.1", ())
    assert (credit.level, credit.profile) == (Level.C, lookups.Profile(COMPANY))


async def test_a_company_without_a_tenant_never_matches_a_worker_without_a_company(
    uow: FakeCreditUnitOfWork,
) -> None:
    await _apply(uow, _severe_complaint())  # credit knows the worker from the ledger alone

    credit = await _look_up(uow, Principal("no-tenant", Role.COMPANY, ""))

    assert (credit.explanation, credit.profile.company_id) == (None, "")


def _severe_complaint() -> EventEnvelope:
    resolved = complaint_events.CaseResolved(
        case_id="case-1",
        severity=c.SEVERITY_SEVERE,
        outcome=c.Outcome(result=c.OUTCOME_RESULT_SUBSTANTIATED, at_fault=c.PARTY_KIND_WORKER),
        worker_id=WORKER,
    )
    return _event(resolved)


async def test_the_level_answered_is_evaluated_now_even_when_a_penalty_faded_since_the_last_event(
    uow: FakeCreditUnitOfWork,
) -> None:
    await _apply(uow, _severe_complaint())  # 600 - 200: D, stored
    uow.clock.advance(timedelta(days=400))  # 200 × 330/730 = 90 left: 510, C

    credit = await _look_up(uow, Principal("regulator", Role.REGULATOR, ""))

    assert uow.scores.by_worker[WORKER].level is Level.D  # no event since: the stored score is old
    assert (credit.level, credit.evaluated_at) == (Level.C, NOW + timedelta(days=400))


def _levels(uow: FakeCreditUnitOfWork) -> list[credit_events.CreditLevelChanged]:
    name = credit_events.CreditLevelChanged.DESCRIPTOR.full_name
    return [p.event.parse(credit_events.CreditLevelChanged) for p in uow.published if p.event.type == name]


AWARD = Award("北京市家政服务职业技能竞赛 一等奖", 3, date(2026, 3, 1))


async def test_an_award_is_a_fact_of_its_day_scored_at_once_and_its_level_change_published(
    employed: FakeCreditUnitOfWork,
) -> None:
    request_id = uuid.uuid4()

    credit = await lookups.record_award(employed, WORKER, request_id, AWARD)

    award = employed.ledger.entries[-1]
    assert (award.kind, award.magnitude, award.reason) == (
        FactKind.AWARD,
        3,
        "award: 北京市家政服务职业技能竞赛 一等奖",
    )
    assert (award.event_id, award.event_type) == (str(request_id), "operator")
    assert award.occurred_at == datetime(2026, 3, 1, tzinfo=BEIJING)
    assert credit.explanation is not None
    assert (credit.level, credit.explanation.score) == (Level.B, 650)  # 590 + 60
    [line] = [s for s in credit.explanation.lines if s.line.fact_id == str(request_id)]
    assert (line.source, line.line.points, line.line.occurred_at) == ("operator", 60, award.occurred_at)
    assert employed.scores.by_worker[WORKER].level is Level.B
    assert [(e.previous_level, e.level) for e in _levels(employed)][-1] == (
        credit_events.CREDIT_LEVEL_C,
        credit_events.CREDIT_LEVEL_B,
    )


async def test_an_award_retried_with_its_request_id_is_entered_once(employed: FakeCreditUnitOfWork) -> None:
    request_id = uuid.uuid4()
    first = await lookups.record_award(employed, WORKER, request_id, AWARD)
    entries, published = len(employed.ledger.entries), len(employed.published)

    again = await lookups.record_award(employed, WORKER, request_id, AWARD)

    assert again == first
    assert (len(employed.ledger.entries), len(employed.published)) == (entries, published)
    assert len(employed.operator_entries.workers) == 1


async def test_a_request_id_used_for_another_worker_is_refused(employed: FakeCreditUnitOfWork) -> None:
    request_id = uuid.uuid4()
    await lookups.record_award(employed, WORKER, request_id, AWARD)

    with pytest.raises(InvalidArgument) as refused:
        await lookups.record_award(employed, "w-other", request_id, AWARD)

    assert refused.value.field == "request_id"
    assert not [e for e in employed.ledger.entries if e.worker_id == "w-other"]


async def test_an_award_dated_after_today_in_beijing_is_refused_and_nothing_is_kept(
    employed: FakeCreditUnitOfWork,
) -> None:
    # NOW is 10:00 on 2 March in Beijing: the 2nd is today, the 3rd is not yet.
    today = await lookups.record_award(
        employed, WORKER, uuid.uuid4(), dataclasses.replace(AWARD, awarded_on=date(2026, 3, 2))
    )
    assert today.explanation is not None
    request_id = uuid.uuid4()

    with pytest.raises(InvalidArgument) as refused:
        await lookups.record_award(
            employed, WORKER, request_id, dataclasses.replace(AWARD, awarded_on=date(2026, 3, 3))
        )

    assert refused.value.field == "award_date"
    assert request_id not in employed.operator_entries.workers
