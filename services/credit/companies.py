"""Companies' credit (企业信用): operators' decisions about a company (administrative penalties, the
red list 红名单 and the black list 黑名单, brand designations), its complaint handling as the
complaints service's events tell it, and its grade from both and its workers' scores
(``services.credit.model.grade_company``).

A decision is recorded once per request id, regrades the company and is published as
``CompanyDecisionRecorded`` with the grade after it. A change in its complaint handling (a case
filed, answered, resolved) or its workers (a score, a worker joining or leaving) sets a regrade
timer if none is pending (``REGRADE_TIMER``): the company is regraded once for every change within
the delay, however busy it is, reading its record and its workers once, without an event. Each
company's grade is kept in ``company_grades`` (what a worker's public view shows); only decisions
are published (the contract has no event for a grade), and ``company_credit`` grades at the call.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from jiazheng.credit.events.v1 import events_pb2 as ev
from libs.common.errors import FailedPrecondition, InvalidArgument, NotFound
from libs.common.events import EventEnvelope, new_event
from libs.common.protoutil import timestamp
from libs.common.timers import CoalescingTimers, DueTimer
from libs.common.uow import Timer, UnitOfWork
from services.credit import events, model

SECONDS_PER_HOUR = 3600
REGRADE_TIMER = "credit.company_regrade"
REGRADE_DELAY = timedelta(seconds=60)  # the default; CreditSettings.company_regrade_delay_s


class DecisionKind(StrEnum):
    """What an operator decided about a company."""

    PENALTY = "penalty"  # 行政处罚
    RED_LIST = "red_list"  # 红名单: trusted (守信激励)
    RED_LIST_ENDED = "red_list_ended"
    BLACK_LIST = "black_list"  # 黑名单: serious breach of trust (失信)
    BLACK_LIST_ENDED = "black_list_ended"
    DESIGNATION = "designation"  # a brand designation, e.g. 北京市巾帼家政服务企业


# Each list decision → the entry of its list.
LIST_OF = {
    DecisionKind.RED_LIST: DecisionKind.RED_LIST,
    DecisionKind.RED_LIST_ENDED: DecisionKind.RED_LIST,
    DecisionKind.BLACK_LIST: DecisionKind.BLACK_LIST,
    DecisionKind.BLACK_LIST_ENDED: DecisionKind.BLACK_LIST,
}


@dataclass(frozen=True)
class Decision:
    """An operator's decision as asked: what, why (a penalty's grounds, a designation's name), and
    the day it was decided."""

    kind: DecisionKind
    reason: str
    decided_on: date


@dataclass(frozen=True)
class RecordedDecision:
    """A decision on a company's record, with the request that recorded it."""

    decision_id: uuid.UUID
    company_id: str
    request_id: uuid.UUID
    decision: Decision
    recorded_at: datetime


@dataclass(frozen=True)
class CaseHandling:
    """How a company handled one complaint or dispute case naming it: when it was filed, the
    seconds to its first response (None while it has not answered), whether the case is resolved."""

    case_id: str
    filed_at: datetime
    response_seconds: int | None
    resolved: bool


@dataclass(frozen=True)
class CompanyCredit:
    """A company's credit now: its record as graded, the grade, every decision oldest first and the
    scores of its workers that credit has scored."""

    company_id: str
    record: model.CompanyRecord
    grade: model.CompanyGrade
    decisions: tuple[RecordedDecision, ...]
    worker_scores: tuple[int, ...]

    @property
    def workers_mean_score(self) -> int:
        """The mean of the workers' scores, rounded down as the model does; 0 with none."""
        return sum(self.worker_scores) // len(self.worker_scores) if self.worker_scores else 0


@dataclass(frozen=True)
class CompanyCase:
    """A complaint case naming a company, as the company's complaint handling records it."""

    case_id: str
    company_id: str
    filed_at: datetime


class CompanyRepository(Protocol):
    """What credit keeps of companies (decisions, complaint handling, grades) and reads of their
    workers (the employer in ``worker_profiles``, the score in ``worker_scores``)."""

    async def lock(self, company_ids: Sequence[str]) -> None:
        """Hold the companies' records, one after the other in the order given, until the unit of
        work ends: one decision or grading of a company at a time."""
        ...

    async def decision_by_request(self, request_id: uuid.UUID) -> RecordedDecision | None: ...

    async def add_decision(self, decision: RecordedDecision) -> RecordedDecision | None:
        """Store ``decision`` unless its request id was used; then the decision that used it."""
        ...

    async def decisions_of(self, company_ids: Sequence[str]) -> dict[str, list[RecordedDecision]]:
        """Each company's decisions by decision date, then by when they were recorded (a company
        with none is left out)."""
        ...

    async def cases_filed(self, cases: Sequence[CompanyCase]) -> None:
        """Record each case (one already recorded is left as it is)."""
        ...

    async def cases_answered(self, answers: Sequence[tuple[str, int]]) -> list[str | None]:
        """Keep the first response time of each (case id, response seconds); for each, the company
        the case names, None for a case unknown."""
        ...

    async def cases_resolved(self, cases: Sequence[CompanyCase]) -> None:
        """Mark each case resolved (a case credit did not see filed is recorded as well)."""
        ...

    async def cases_of(self, company_ids: Sequence[str]) -> dict[str, list[CaseHandling]]:
        """Each company's complaint cases (a company with none is left out)."""
        ...

    async def worker_scores(self, company_ids: Sequence[str]) -> dict[str, list[int]]:
        """The scores of each company's workers that have one (a company with none is left out)."""
        ...

    async def put_grades(self, grades: Mapping[str, model.CompanyGrade]) -> None: ...

    async def known(self, company_id: str) -> bool:
        """Whether credit has a decision, a case, a worker or a grade of the company."""
        ...


class CompaniesUnitOfWork(UnitOfWork, Protocol):
    @property
    def companies(self) -> CompanyRepository: ...


class RegradeScheduling(UnitOfWork, Protocol):
    """What a unit of work that changes a company's workers needs to have the company regraded."""

    @property
    def timers(self) -> CoalescingTimers: ...

    @property
    def company_regrade_delay(self) -> timedelta:
        """How long after a change in its workers a company is regraded, at the latest."""
        ...


# -- the record and its rules ----------------------------------------------------------------------


def listed(decisions: Sequence[RecordedDecision], entry: DecisionKind) -> bool:
    """Whether the latest decision on ``entry``'s list (its entry or its end) is an entry."""
    on_list = [d.decision.kind for d in decisions if LIST_OF.get(d.decision.kind) is entry]
    return bool(on_list) and on_list[-1] is entry


def median_response_hours(cases: Sequence[CaseHandling], now: datetime) -> int:
    """The median time to the company's first response (the slower middle case of an even count),
    in whole hours rounded up. A case not answered counts the time since it was filed: its answer,
    if it comes, comes later still, so a company that never answers is never fast."""
    seconds = [
        case.response_seconds
        if case.response_seconds is not None
        else max(0, int((now - case.filed_at).total_seconds()))
        for case in cases
    ]
    return -(-statistics.median_high(seconds) // SECONDS_PER_HOUR) if seconds else 0


def company_record(
    decisions: Sequence[RecordedDecision], cases: Sequence[CaseHandling], now: datetime
) -> model.CompanyRecord:
    """What the model grades of the company's own conduct."""
    kinds = [d.decision.kind for d in decisions]
    return model.CompanyRecord(
        complaints_received=len(cases),
        complaints_resolved=sum(case.resolved for case in cases),
        median_response_hours=median_response_hours(cases, now),
        penalties=kinds.count(DecisionKind.PENALTY),
        red_listed=listed(decisions, DecisionKind.RED_LIST),
        black_listed=listed(decisions, DecisionKind.BLACK_LIST),
        brand_designations=tuple(
            d.decision.reason for d in decisions if d.decision.kind is DecisionKind.DESIGNATION
        ),
    )


def check_decision(decision: Decision, earlier: Sequence[RecordedDecision], today: date) -> None:
    """A decision is dated no later than today (Beijing); a list's decisions come in date order,
    and a list's end needs the company on that list."""
    if decision.decided_on > today:
        raise InvalidArgument("decision.decision_date", f"cannot be after today ({today.isoformat()})")
    entry = LIST_OF.get(decision.kind)
    if entry is None:
        return
    name = entry.value.replace("_", " ")
    same_list = [d.decision for d in earlier if LIST_OF.get(d.decision.kind) is entry]
    if same_list and decision.decided_on < same_list[-1].decided_on:
        latest = same_list[-1].decided_on.isoformat()
        raise FailedPrecondition(f"the {name}'s latest decision is dated {latest}; record them in date order")
    if decision.kind is not entry and not listed(earlier, entry):
        raise FailedPrecondition(f"the company is not on the {name}")


def decision_recorded(recorded: RecordedDecision, grade: model.Grade) -> EventEnvelope:
    """``CompanyDecisionRecorded``, keyed by the company so that its decisions stay in order."""
    d = recorded.decision
    message = ev.CompanyDecisionRecorded(
        company_id=recorded.company_id,
        kind=d.kind.value,
        reason=d.reason,
        decision_date=d.decided_on.isoformat(),
        grade=grade.value,
        time=timestamp(recorded.recorded_at),
    )
    subject = f"companies/{recorded.company_id}"
    return new_event(message, source=events.SOURCE, subject=subject, time=recorded.recorded_at)


# -- use cases -------------------------------------------------------------------------------------


async def record_decision(
    uow: CompaniesUnitOfWork, company_id: str, request_id: uuid.UUID, decision: Decision
) -> CompanyCredit:
    """Record an operator's decision once per request id; regrade the company and publish it. A
    retry gets the company's credit now; a request id used for another decision is refused."""
    async with uow:
        await uow.companies.lock([company_id])
        earlier = await uow.companies.decision_by_request(request_id)
        if earlier is not None:
            return await _retried(uow, earlier, company_id, decision)
        now = uow.clock.now()
        earlier_decisions = (await uow.companies.decisions_of([company_id])).get(company_id, [])
        check_decision(decision, earlier_decisions, now.astimezone(model.BEIJING).date())
        recorded = RecordedDecision(uuid.uuid4(), company_id, request_id, decision, now)
        earlier = await uow.companies.add_decision(recorded)
        if earlier is not None:  # the same request id, just used for another company
            return await _retried(uow, earlier, company_id, decision)
        credit = (await regrade(uow, [company_id]))[company_id]
        await uow.add_event(events.TOPIC, decision_recorded(recorded, credit.grade.grade))
        await uow.commit()
    return credit


async def _retried(
    uow: CompaniesUnitOfWork, earlier: RecordedDecision, company_id: str, decision: Decision
) -> CompanyCredit:
    if (earlier.company_id, earlier.decision) != (company_id, decision):
        raise InvalidArgument("request_id", "already used for a different decision")
    return await graded(uow, company_id)


async def company_credit(uow: CompaniesUnitOfWork, company_id: str) -> CompanyCredit:
    """The company's credit graded now; NOT_FOUND for a company credit knows nothing of."""
    async with uow:
        if not await uow.companies.known(company_id):
            raise NotFound(f"companies/{company_id}")
        return await graded(uow, company_id)


async def graded(uow: CompaniesUnitOfWork, company_id: str) -> CompanyCredit:
    """The company's record and its grade at the unit of work's clock (nothing stored)."""
    return (await graded_all(uow, [company_id]))[company_id]


async def graded_all(uow: CompaniesUnitOfWork, company_ids: Sequence[str]) -> dict[str, CompanyCredit]:
    """``graded`` of each company, in three reads for all of them."""
    decisions = await uow.companies.decisions_of(company_ids)
    cases = await uow.companies.cases_of(company_ids)
    scores = await uow.companies.worker_scores(company_ids)
    now = uow.clock.now()
    return {
        c: _graded(c, decisions.get(c, []), cases.get(c, []), scores.get(c, []), now) for c in company_ids
    }


def _graded(
    company_id: str,
    decisions: list[RecordedDecision],
    cases: list[CaseHandling],
    scores: list[int],
    now: datetime,
) -> CompanyCredit:
    record = company_record(decisions, cases, now)
    grade = model.grade_company(record, scores, now)
    return CompanyCredit(company_id, record, grade, tuple(decisions), tuple(scores))


async def regrade(uow: CompaniesUnitOfWork, company_ids: Sequence[str]) -> dict[str, CompanyCredit]:
    """Grade the companies now and keep their grades (the caller holds their locks)."""
    credits = await graded_all(uow, company_ids)
    await uow.companies.put_grades({c: credit.grade for c, credit in credits.items()})
    return credits


async def regrade_each(uow: CompaniesUnitOfWork, company_ids: Iterable[str]) -> None:
    """Regrade each company under its lock (its complaint handling or its workers changed), all
    of them in a few statements; the grades are kept, not published."""
    ids = sorted(set(company_ids))  # one order of locks: no deadlock between batches
    if ids:
        await uow.companies.lock(ids)
        await regrade(uow, ids)


async def changed(uow: RegradeScheduling, company_ids: Iterable[str]) -> None:
    """Have each company regraded within the delay (its workers or its complaint handling changed):
    a timer, unless one is pending (it then sees this change too, as it reads the company's record
    when it fires). Nothing is locked or read here."""
    due_at = uow.clock.now() + uow.company_regrade_delay
    timers: list[Timer] = [(company_id, due_at, {}) for company_id in sorted(set(company_ids) - {""})]
    await uow.timers.schedule_many_if_absent(REGRADE_TIMER, timers)


async def regrade_due(uow: CompaniesUnitOfWork, timer: DueTimer) -> None:
    """The company's workers changed: regrade it from them and its own record (kept, not published)."""
    await regrade_each(uow, [timer.key])
