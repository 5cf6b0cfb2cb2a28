"""Companies' credit through the fake unit of work: operators' decisions (each kind, the lists'
ends, idempotency, the grade they leave and the event that says so), complaint handling from the
complaints service's own event builders through the consumer, the regrade timer that it and its
workers' scores and moves set (fired by the real TimerWorker on the fake clock), and the
CompanyCreditService API."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import cast

import pytest

from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.credit.v1 import credit_pb2
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from libs.common.auth import Role
from libs.common.errors import FailedPrecondition, InvalidArgument, NotFound
from libs.common.events import EventEnvelope, new_event
from libs.common.inbox import IdempotentConsumer, KafkaRecord
from libs.common.settings import ServiceSettings
from libs.common.testing import FakeDeadLetters, FixedClock
from libs.common.timers import TimerWorker
from services.complaints import domain as complaints
from services.complaints import events as complaint_events
from services.credit import companies, events, lookups
from services.credit.api import Context
from services.credit.companies import CaseHandling, CompanyCredit, Decision, DecisionKind
from services.credit.company_api import POLICY, SERVICE, CompanyCreditServicer
from services.credit.handlers import EFFECTS
from services.credit.model import MODEL_VERSION, FactKind, Grade, GradeLine, Level
from services.credit.scoring import StoredScore
from services.credit.tests.fakes import FakeCreditUnitOfWork
from services.workers import events as workers_events

NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)  # 10:00 in Beijing
TODAY = date(2026, 3, 2)
COMPANY = "c0ffee00-0000-4000-8000-000000000001"
NO_CONTEXT = cast(Context, None)
CALENDAR = complaints.WorkingCalendar()
K = DecisionKind
DELAY = companies.REGRADE_DELAY


@pytest.fixture
def uow() -> FakeCreditUnitOfWork:
    return FakeCreditUnitOfWork(FixedClock(NOW))


async def _decide(
    uow: FakeCreditUnitOfWork,
    kind: DecisionKind,
    request_id: uuid.UUID | None = None,
    company: str = COMPANY,
    on: date = TODAY,
) -> CompanyCredit:
    decision = Decision(kind, f"{kind.value} 依据", on)
    return await companies.record_decision(uow, company, request_id or uuid.uuid4(), decision)


def _recorded(uow: FakeCreditUnitOfWork) -> list[credit_events.CompanyDecisionRecorded]:
    name = credit_events.CompanyDecisionRecorded.DESCRIPTOR.full_name
    return [
        p.event.parse(credit_events.CompanyDecisionRecorded) for p in uow.published if p.event.type == name
    ]


def _employ(uow: FakeCreditUnitOfWork, *scores: int | None) -> None:
    for n, score in enumerate(scores):
        uow.profiles.companies[f"w-{n}"] = COMPANY
        if score is not None:
            uow.scores.by_worker[f"w-{n}"] = StoredScore(score, Level.C, MODEL_VERSION, NOW)


# -- decisions -------------------------------------------------------------------------------------


# With no complaint and no worker a company has 30 (resolution) + 20 (response) = 50 points: B.
@pytest.mark.parametrize(
    ("earlier", "kind", "grade", "points", "red", "black"),
    [
        ((), K.PENALTY, Grade.C, 35, False, False),
        ((), K.RED_LIST, Grade.A, 60, True, False),
        ((), K.DESIGNATION, Grade.B, 55, False, False),
        ((), K.BLACK_LIST, Grade.C, 50, False, True),
        ((K.RED_LIST,), K.RED_LIST_ENDED, Grade.B, 50, False, False),
        ((K.BLACK_LIST,), K.BLACK_LIST_ENDED, Grade.B, 50, False, False),
    ],
)
async def test_each_decision_kind_is_recorded_regrades_the_company_and_is_published_with_the_grade(
    uow: FakeCreditUnitOfWork,
    earlier: tuple[DecisionKind, ...],
    kind: DecisionKind,
    grade: Grade,
    points: int,
    red: bool,
    black: bool,
) -> None:
    for before in earlier:
        await _decide(uow, before)

    credit = await _decide(uow, kind)

    assert (credit.grade.grade, credit.grade.points) == (grade, points)
    assert (credit.record.red_listed, credit.record.black_listed) == (red, black)
    assert [d.decision.kind for d in credit.decisions] == [*earlier, kind]
    assert uow.companies.grades[COMPANY].grade is grade
    last = uow.published[-1]
    assert (last.topic, last.event.key) == (events.TOPIC, f"companies/{COMPANY}".encode())
    assert _recorded(uow)[-1] == credit_events.CompanyDecisionRecorded(
        company_id=COMPANY,
        kind=kind.value,
        reason=f"{kind.value} 依据",
        decision_date="2026-03-02",
        grade=grade.value,
        time=_recorded(uow)[-1].time,
    )
    assert _recorded(uow)[-1].time.ToDatetime(tzinfo=UTC) == NOW


@pytest.mark.parametrize(
    ("earlier", "end"),
    [
        ((), K.RED_LIST_ENDED),
        ((), K.BLACK_LIST_ENDED),
        ((K.BLACK_LIST,), K.RED_LIST_ENDED),
        ((K.RED_LIST, K.RED_LIST_ENDED), K.RED_LIST_ENDED),
    ],
)
async def test_a_list_end_without_a_current_entry_is_refused_and_changes_nothing(
    uow: FakeCreditUnitOfWork, earlier: tuple[DecisionKind, ...], end: DecisionKind
) -> None:
    for before in earlier:
        await _decide(uow, before)
    published, grades = list(uow.published), dict(uow.companies.grades)

    with pytest.raises(FailedPrecondition, match="not on the"):
        await _decide(uow, end)

    assert len(uow.companies.decisions) == len(earlier)
    assert (uow.published, uow.companies.grades) == (published, grades)


async def test_a_list_decision_dated_before_the_lists_latest_one_is_refused(
    uow: FakeCreditUnitOfWork,
) -> None:
    await _decide(uow, K.RED_LIST, on=date(2026, 2, 10))

    with pytest.raises(FailedPrecondition, match="2026-02-10"):
        await _decide(uow, K.RED_LIST_ENDED, on=date(2026, 2, 9))

    # Another list, or a decision of no list, may be dated earlier.
    await _decide(uow, K.BLACK_LIST, on=date(2026, 2, 9))
    await _decide(uow, K.PENALTY, on=date(2026, 1, 5))
    assert [d.decision.kind for d in (await uow.companies.decisions_of([COMPANY]))[COMPANY]] == [
        K.PENALTY,
        K.BLACK_LIST,
        K.RED_LIST,
    ]


async def test_a_decision_dated_after_today_in_beijing_is_refused() -> None:
    # 00:30 on 2 March in Beijing, still 1 March in UTC: 2 March is today, 3 March is not.
    uow = FakeCreditUnitOfWork(FixedClock(datetime(2026, 3, 1, 16, 30, tzinfo=UTC)))

    await _decide(uow, K.PENALTY, on=date(2026, 3, 2))
    with pytest.raises(InvalidArgument) as refused:
        await _decide(uow, K.PENALTY, on=date(2026, 3, 3))

    assert refused.value.field == "decision.decision_date"
    assert len(uow.companies.decisions) == 1


async def test_a_retried_request_is_recorded_and_published_once_even_a_lists_end(
    uow: FakeCreditUnitOfWork,
) -> None:
    await _decide(uow, K.RED_LIST)
    request_id = uuid.uuid4()

    first = await _decide(uow, K.RED_LIST_ENDED, request_id)
    again = await _decide(uow, K.RED_LIST_ENDED, request_id)

    assert again == first
    assert [d.decision.kind for d in uow.companies.decisions] == [K.RED_LIST, K.RED_LIST_ENDED]
    assert [e.kind for e in _recorded(uow)] == ["red_list", "red_list_ended"]


@pytest.mark.parametrize(
    ("kind", "company"),
    [(K.DESIGNATION, COMPANY), (K.PENALTY, "another-company")],
)
async def test_a_request_id_used_for_another_decision_is_refused(
    uow: FakeCreditUnitOfWork, kind: DecisionKind, company: str
) -> None:
    request_id = uuid.uuid4()
    await _decide(uow, K.PENALTY, request_id)

    with pytest.raises(InvalidArgument) as refused:
        await _decide(uow, kind, request_id, company=company)

    assert refused.value.field == "request_id"
    assert len(uow.companies.decisions) == len(_recorded(uow)) == 1


async def test_the_grade_follows_the_workers_the_lists_and_the_penalties(uow: FakeCreditUnitOfWork) -> None:
    # docs/credit-model.md's workers (mean 740: 32 points); a worker not scored yet does not count.
    _employ(uow, 720, 690, 810, None)
    grades = []

    # 30 + 20 + 32 = 82, then: a designation +5, the red list +10, a penalty -15, the black list.
    for kind in (K.DESIGNATION, K.RED_LIST, K.PENALTY, K.BLACK_LIST, K.BLACK_LIST_ENDED, K.RED_LIST_ENDED):
        credit = await _decide(uow, kind)
        grades.append((credit.grade.grade.value, credit.grade.points))

    assert grades == [("AA", 87), ("AAA", 97), ("AA", 82), ("C", 82), ("AA", 82), ("A", 72)]
    assert [e.grade for e in _recorded(uow)] == [g for g, _ in grades]
    assert credit.workers_mean_score == 740
    assert credit.record.brand_designations == ("designation 依据",)
    assert credit.record.penalties == 1


# -- complaint handling ----------------------------------------------------------------------------


def _consumer(uow: FakeCreditUnitOfWork) -> IdempotentConsumer[FakeCreditUnitOfWork]:
    async def healthy() -> bool:
        return True

    return IdempotentConsumer("credit", lambda: uow, EFFECTS, FakeDeadLetters(), healthy)


async def _consume(uow: FakeCreditUnitOfWork, event: EventEnvelope) -> None:
    record = KafkaRecord(complaint_events.TOPIC, event.key, event.data, event.kafka_headers())
    assert await _consumer(uow).handle_batch([record]) == ["applied"]


def _case(filed_at: datetime, company: str = COMPANY, worker: str = "") -> complaints.Case:
    filing = complaints.Filing(
        complaints.CaseKind.COMPLAINT,
        complaints.Category.QUALITY,
        complaints.Severity.MAJOR,
        complaints.PartyKind.CONSUMER,
        complaints.PartyKind.WORKER if worker else complaints.PartyKind.COMPANY,
        "阿姨打扫不彻底",
        platform_id="p-1",
        company_id=company,
        worker_id=worker,
    )
    return complaints.file_case(uuid.uuid4(), filing, filed_at)


async def test_complaints_filed_answered_and_resolved_make_the_companys_handling_and_set_its_regrade(
    uow: FakeCreditUnitOfWork,
) -> None:
    answered_in_time, ignored = _case(NOW - timedelta(hours=30)), _case(NOW - timedelta(hours=10))
    responded = complaints.respond(answered_in_time, NOW - timedelta(hours=28), CALENDAR)
    accepted = complaints.accept(responded, NOW - timedelta(hours=27), CALENDAR)
    resolved = complaints.resolve(
        accepted, complaints.Outcome(complaints.OutcomeResult.NOT_SUBSTANTIATED), "demo-company"
    )
    points = []

    for event in (
        complaint_events.case_filed(answered_in_time),
        complaint_events.case_filed(ignored),
        complaint_events.case_answered(responded, NOW - timedelta(hours=28)),
        complaint_events.case_answered(accepted, NOW - timedelta(hours=27)),
        complaint_events.case_resolved(resolved, NOW - timedelta(hours=20)),
    ):
        await _consume(uow, event)
        points.append((await companies.company_credit(uow, COMPANY)).grade.points)

    # Unanswered, a case counts the hours since its filing: 30 h (10 points for the response) until
    # the answer in 2 h; then the median of 2 h and the ignored case's 10 h is 10 h (20 points).
    # Resolving one of the two cases gives 15 of the 30 resolution points.
    assert points == [10, 10, 20, 20, 35]
    credit = await companies.company_credit(uow, COMPANY)
    assert (credit.record.complaints_received, credit.record.complaints_resolved) == (2, 1)
    assert credit.record.median_response_hours == 10
    assert credit.grade.grade is Grade.C
    [(_, handled)] = [c for c in uow.companies.cases.values() if c[1].case_id == str(resolved.case_id)]
    assert (handled.response_seconds, handled.resolved) == (7200, True)
    # The first case set the regrade timer; the later ones joined it. Nothing was graded meanwhile.
    assert _regrades_due(uow) == {COMPANY: NOW + DELAY}
    assert (uow.companies.grades, uow.companies.locks) == ({}, [])
    uow.clock.advance(DELAY)
    assert await _regrader(uow).fire_due() == 1
    assert uow.companies.grades[COMPANY] == (await companies.company_credit(uow, COMPANY)).grade
    assert uow.published == []  # a regrade after complaints is kept, not published


async def test_a_resolved_complaint_moves_the_workers_score_and_the_companys_record_in_one_effect(
    uow: FakeCreditUnitOfWork,
) -> None:
    _employ(uow, None)  # w-0 works for the company, not scored yet
    case = _case(NOW - timedelta(days=3), worker="w-0")
    upheld = complaints.Outcome(complaints.OutcomeResult.SUBSTANTIATED, complaints.PartyKind.WORKER)

    # credit did not see the case filed: the resolution records it.
    await _consume(uow, complaint_events.case_resolved(complaints.resolve(case, upheld, "operator"), NOW))

    [entry] = uow.ledger.entries
    assert (entry.worker_id, entry.kind) == ("w-0", FactKind.COMPLAINT_UPHELD)
    credit = await companies.company_credit(uow, COMPANY)
    assert (credit.record.complaints_received, credit.record.complaints_resolved) == (1, 1)
    assert credit.workers_mean_score == 520  # 600 less 80 for the major complaint
    assert _regrades_due(uow) == {COMPANY: NOW + DELAY}  # for the case and the score, one timer
    uow.clock.advance(DELAY)
    assert await _regrader(uow).fire_due() == 1
    assert uow.companies.grades[COMPANY] == (await companies.company_credit(uow, COMPANY)).grade


async def test_one_poll_of_several_companies_cases_sets_each_ones_regrade_once_and_locks_none(
    uow: FakeCreditUnitOfWork,
) -> None:
    later, earlier = "c0ffee00-0000-4000-8000-000000000009", COMPANY
    cases = [_case(NOW - timedelta(hours=2), company=c) for c in (later, earlier, later)]
    records = [
        KafkaRecord(complaint_events.TOPIC, e.key, e.data, e.kafka_headers())
        for e in map(complaint_events.case_filed, cases)
    ]

    assert await _consumer(uow).handle_batch(records) == ["applied"] * 3

    assert (_regrades_due(uow), uow.companies.locks) == ({earlier: NOW + DELAY, later: NOW + DELAY}, [])
    uow.clock.advance(DELAY)
    assert await _regrader(uow).fire_due() == 2
    one_case, two_cases = [await companies.company_credit(uow, c) for c in (earlier, later)]
    assert (one_case.record.complaints_received, two_cases.record.complaints_received) == (1, 2)
    assert uow.companies.grades == {earlier: one_case.grade, later: two_cases.grade}


async def test_cases_naming_no_company_known_to_credit_change_no_record(uow: FakeCreditUnitOfWork) -> None:
    no_company = _case(NOW, company="")
    unseen = complaints.respond(_case(NOW - timedelta(hours=1)), NOW, CALENDAR)

    await _consume(uow, complaint_events.case_filed(no_company))
    await _consume(uow, complaint_events.case_answered(unseen, NOW))

    assert (uow.companies.cases, uow.companies.grades) == ({}, {})


async def test_a_company_credit_knows_nothing_of_is_not_found_one_known_by_its_workers_is_graded(
    uow: FakeCreditUnitOfWork,
) -> None:
    with pytest.raises(NotFound):
        await companies.company_credit(uow, COMPANY)

    _employ(uow, None)
    credit = await companies.company_credit(uow, COMPANY)

    assert (credit.grade.grade, credit.workers_mean_score, credit.decisions) == (Grade.B, 0, ())
    assert uow.companies.grades == {}  # a lookup stores nothing


@pytest.mark.parametrize(
    ("seconds", "hours"),
    [
        ((), 0),
        ((0,), 0),
        ((3600,), 1),
        ((3601,), 2),
        ((60, 7200, 90_000), 2),
        ((60, 7200, 86_400, 90_000), 24),  # an even count: the slower middle case
    ],
)
def test_the_median_response_is_in_whole_hours_rounded_up(seconds: tuple[int, ...], hours: int) -> None:
    cases = [CaseHandling(str(n), NOW, s, False) for n, s in enumerate(seconds)]

    assert companies.median_response_hours(cases, NOW) == hours


def test_an_unanswered_case_counts_the_time_since_its_filing() -> None:
    cases = [CaseHandling("a", NOW - timedelta(hours=80), None, True), CaseHandling("b", NOW, 600, False)]

    assert companies.median_response_hours(cases, NOW) == 80


# -- the workers: scores, joining and leaving ------------------------------------------------------

OTHER = "c0ffee00-0000-4000-8000-000000000002"


def _regrader(uow: FakeCreditUnitOfWork) -> TimerWorker[FakeCreditUnitOfWork]:
    async def healthy() -> bool:
        return True

    handlers = {companies.REGRADE_TIMER: companies.regrade_due}
    return TimerWorker(lambda: uow, handlers, ServiceSettings(), healthy)


def _regrades_due(uow: FakeCreditUnitOfWork) -> dict[str, datetime]:
    return {key: t.due_at for (kind, key), t in uow.timers.pending.items() if kind == companies.REGRADE_TIMER}


async def _award(uow: FakeCreditUnitOfWork, worker_id: str, tier: int) -> None:
    award = lookups.Award("北京市家政服务职业技能竞赛", tier, TODAY)
    await lookups.record_award(uow, worker_id, uuid.uuid4(), award)


async def test_workers_score_changes_regrade_their_company_once_at_the_first_changes_delay(
    uow: FakeCreditUnitOfWork,
) -> None:
    _employ(uow, None, None)
    regrader = _regrader(uow)

    await _award(uow, "w-0", tier=3)  # 660
    uow.clock.advance(DELAY - timedelta(seconds=20))
    await _award(uow, "w-1", tier=1)  # 620: joins the pending regrade, does not push it back
    assert _regrades_due(uow) == {COMPANY: NOW + DELAY}
    assert COMPANY not in uow.companies.grades  # a score change itself grades nothing
    uow.clock.advance(timedelta(seconds=19))
    assert await regrader.fire_due() == 0
    uow.clock.advance(timedelta(seconds=1))
    assert await regrader.fire_due() == 1

    stored = uow.companies.grades[COMPANY]
    # 30 + 20, and the workers' mean of 640: 40 × 140 // 300 = 18.
    assert (stored.grade, stored.points, stored.graded_at) == (Grade.A, 68, NOW + DELAY)
    assert stored.lines[-1] == GradeLine("workers", 18, "mean score 640 of 2 workers")
    assert _recorded(uow) == []  # kept, not published
    assert _regrades_due(uow) == {}

    uow.clock.advance(timedelta(seconds=5))
    await _award(uow, "w-1", tier=3)  # 660: after the firing, a new regrade
    assert _regrades_due(uow) == {COMPANY: NOW + DELAY + timedelta(seconds=5) + DELAY}


async def test_a_score_that_did_not_move_or_a_worker_of_no_company_sets_no_regrade(
    uow: FakeCreditUnitOfWork,
) -> None:
    _employ(uow, None)
    await _award(uow, "w-0", tier=3)
    uow.timers.pending.clear()

    await _award(uow, "w-0", tier=3)  # awards count 60 at most: still 660
    await _award(uow, "w-freelance", tier=3)

    assert uow.scores.by_worker["w-0"].score == uow.scores.by_worker["w-freelance"].score == 660
    assert _regrades_due(uow) == {}


async def test_a_worker_moving_to_another_company_regrades_both_and_one_registered_the_new(
    uow: FakeCreditUnitOfWork,
) -> None:
    _employ(uow, 700)
    uow.scores.by_worker["w-9"] = StoredScore(800, Level.A, MODEL_VERSION, NOW)  # scored before registered

    await _consume(uow, workers_events.worker_transferred("w-0", COMPANY, OTHER, NOW))
    registered = worker_events.WorkerRegistered(worker_id="w-9", company_id=COMPANY)
    await _consume(uow, new_event(registered, source="/jiazheng/workers", subject="workers/w-9", time=NOW))
    assert _regrades_due(uow) == {COMPANY: NOW + DELAY, OTHER: NOW + DELAY}
    uow.clock.advance(DELAY)
    assert await _regrader(uow).fire_due() == 2

    left, joined = uow.companies.grades[COMPANY], uow.companies.grades[OTHER]
    assert (left.lines[-1].reason, left.points, left.grade) == ("mean score 800 of 1 workers", 90, Grade.AAA)
    assert (joined.lines[-1].reason, joined.points, joined.grade) == (
        "mean score 700 of 1 workers",
        76,
        Grade.AA,
    )


# -- the API ----------------------------------------------------------------------------------------


def test_the_policy_covers_the_services_methods_reads_for_all_decisions_for_operators() -> None:
    assert set(POLICY) == {f"/{SERVICE.full_name}/{m.name}" for m in SERVICE.methods}
    assert POLICY[f"/{SERVICE.full_name}/GetCompanyCredit"] == frozenset(Role)
    assert POLICY[f"/{SERVICE.full_name}/RecordCompanyDecision"] == {Role.OPERATOR}


def _request(
    kind: credit_pb2.DecisionKind.ValueType, request_id: str, decision_date: str = "2026-03-01"
) -> credit_pb2.RecordCompanyDecisionRequest:
    decision = credit_pb2.CompanyDecision(
        kind=kind, reason="北京市巾帼家政服务企业", decision_date=decision_date
    )
    return credit_pb2.RecordCompanyDecisionRequest(
        name=f"companies/{COMPANY}", request_id=request_id, decision=decision
    )


async def test_the_servicer_records_a_decision_and_answers_the_companys_credit(
    uow: FakeCreditUnitOfWork,
) -> None:
    servicer = CompanyCreditServicer(lambda: uow)
    await servicer.RecordCompanyDecision(
        _request(credit_pb2.DECISION_KIND_RED_LIST, str(uuid.uuid4())), NO_CONTEXT
    )
    recorded = await servicer.RecordCompanyDecision(
        _request(credit_pb2.DECISION_KIND_DESIGNATION, str(uuid.uuid4())), NO_CONTEXT
    )

    got = await servicer.GetCompanyCredit(
        credit_pb2.GetCompanyCreditRequest(name=f"companies/{COMPANY}"), NO_CONTEXT
    )

    assert got.credit == recorded.credit
    assert got.credit.company == f"companies/{COMPANY}"
    assert (got.credit.grade, got.credit.red_listed, got.credit.black_listed) == ("A", True, False)
    assert [(d.kind, d.decision_date) for d in got.credit.decisions] == [
        (credit_pb2.DECISION_KIND_RED_LIST, "2026-03-01"),
        (credit_pb2.DECISION_KIND_DESIGNATION, "2026-03-01"),
    ]
    assert got.credit.decisions[1].reason == "北京市巾帼家政服务企业"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (credit_pb2.RecordCompanyDecisionRequest(name="workers/w-1"), "name"),
        (_request(credit_pb2.DECISION_KIND_PENALTY, "not-a-uuid"), "request_id"),
        (_request(credit_pb2.DECISION_KIND_UNSPECIFIED, str(uuid.uuid4())), "decision.kind"),
        (
            _request(credit_pb2.DECISION_KIND_PENALTY, str(uuid.uuid4()), "2026-02-30"),
            "decision.decision_date",
        ),
    ],
)
async def test_the_servicer_refuses_bad_requests_naming_the_field(
    uow: FakeCreditUnitOfWork, request_: credit_pb2.RecordCompanyDecisionRequest, field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await CompanyCreditServicer(lambda: uow).RecordCompanyDecision(request_, NO_CONTEXT)

    assert refused.value.field == field
    assert uow.companies.decisions == []
