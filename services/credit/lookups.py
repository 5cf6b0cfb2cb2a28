"""Use cases of 家政信用查 (the credit lookup): a worker's record in the view the caller may see, and
the awards operators enter on a worker's record.

The full record (score, model version and one line per fact with its source) is for operators,
the worker's employing company, and a platform asking for a consumer who holds the worker's valid
consent grant (授权查询); every other caller gets the public view: level, card colour, company and
the company's grade. A platform without a valid grant gets the public view, never an error. The
facts are evaluated now with the model in force, so the level answered is current even when a
penalty faded after the last event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Protocol

from libs.common.auth import Principal, Role
from libs.common.errors import InvalidArgument, NotFound
from libs.common.telemetry import current_traceparent, trace_id_of
from services.credit import domain, model, scoring
from services.credit.handlers import CreditUnitOfWork

OPERATOR_SOURCE = "operator"  # the event type of the entries operators make


@dataclass(frozen=True)
class Profile:
    """What credit keeps of a worker beside the ledger: the employer, the card colour as the workers
    service last published it, and the employer's grade; each empty when unknown."""

    company_id: str = ""
    card_colour: str = ""
    company_grade: str = ""


@dataclass(frozen=True)
class SourcedLine:
    """A line of the score's explanation, with its fact's source: the event type, or "operator"."""

    line: model.Line
    source: str


@dataclass(frozen=True)
class Explanation:
    """The full view's part of a record: the score and, fact by fact, why."""

    score: int
    model_version: str
    lines: tuple[SourcedLine, ...]


@dataclass(frozen=True)
class WorkerCredit:
    """A worker's credit record (信用记录) as a lookup answers it; without an explanation it is the
    public view."""

    worker_id: str
    level: model.Level
    profile: Profile
    evaluated_at: datetime
    explanation: Explanation | None = None


@dataclass(frozen=True)
class Award:
    """An award or skills-competition result (职业技能竞赛) an operator enters on a worker's record."""

    title: str
    tier: int  # 1 (third prize or honourable mention) to 3 (first prize)
    awarded_on: date  # a Beijing calendar day


class WorkerLookups(Protocol):
    async def record_of(self, worker_id: str) -> tuple[Profile, list[model.Fact]] | None:
        """The worker's profile and facts (in ledger order), read together; None when credit has no
        score, profile or ledger entry of them."""
        ...

    async def grant_valid(self, worker_id: str, platform_id: str, consumer_ref: str, at: datetime) -> bool:
        """Whether the platform's consumer holds a grant of the worker neither revoked nor expired at
        ``at``."""
        ...


class OperatorEntries(Protocol):
    async def claim(self, request_id: uuid.UUID, worker_id: str, at: datetime) -> str | None:
        """Record an operator's request: None when it is new, otherwise the worker that the earlier
        request with this id was for."""
        ...


class LookupUnitOfWork(CreditUnitOfWork, Protocol):
    @property
    def lookups(self) -> WorkerLookups: ...

    @property
    def operator_entries(self) -> OperatorEntries: ...


async def get_worker_credit(
    uow: LookupUnitOfWork, principal: Principal, worker_id: str, consumer_ref: str = ""
) -> WorkerCredit:
    """The worker's record now, in the view ``principal`` may see (asking for ``consumer_ref``, a
    platform's consumer); NOT_FOUND for a worker credit has never heard of."""
    async with uow:
        now = uow.clock.now()
        record = await uow.lookups.record_of(worker_id)
        if record is None:
            raise NotFound(f"workers/{worker_id}")
        profile, facts = record
        full = await _may_see_all(uow, principal, worker_id, profile, consumer_ref, now)
        return credit_record(worker_id, profile, facts, now, full)


async def _may_see_all(
    uow: LookupUnitOfWork,
    principal: Principal,
    worker_id: str,
    profile: Profile,
    consumer_ref: str,
    now: datetime,
) -> bool:
    if principal.role is Role.OPERATOR:
        return True
    if principal.role is Role.COMPANY:
        return bool(profile.company_id) and profile.company_id == principal.tenant
    if principal.role is Role.PLATFORM and consumer_ref:
        return await uow.lookups.grant_valid(worker_id, principal.tenant, consumer_ref, now)
    return False


def credit_record(
    worker_id: str, profile: Profile, facts: list[model.Fact], at: datetime, full: bool
) -> WorkerCredit:
    """The worker's facts evaluated at ``at``; explained when ``full`` (the public view needs only the
    level, which ``score_of`` gives without making the lines)."""
    if not full:
        return WorkerCredit(worker_id, model.score_of(facts, at).level, profile, at, None)
    evaluation = model.evaluate(facts, at)
    return WorkerCredit(worker_id, evaluation.level, profile, at, _explained(evaluation, facts))


def _explained(evaluation: model.Evaluation, facts: list[model.Fact]) -> Explanation:
    sources = {fact.fact_id: fact.source for fact in facts}
    lines = tuple(SourcedLine(line, sources[line.fact_id]) for line in evaluation.lines)
    return Explanation(evaluation.score, evaluation.model_version, lines)


async def record_award(
    uow: LookupUnitOfWork, worker_id: str, request_id: uuid.UUID, award: Award
) -> WorkerCredit:
    """Enter ``award`` on the worker's record once per request id, re-evaluate the worker (a level
    change is published) and answer the full record. A retry answers without a second entry."""
    async with uow:
        now = uow.clock.now()
        if award.awarded_on > now.astimezone(model.BEIJING).date():
            raise InvalidArgument("award_date", "is after today (Beijing time)")
        earlier = await uow.operator_entries.claim(request_id, worker_id, now)
        if earlier is not None and earlier != worker_id:
            raise InvalidArgument("request_id", "already used for another worker's entry")
        if earlier is None:
            await uow.ledger.add_many([_award_entry(worker_id, request_id, award)])
            await scoring.rescore(uow, [worker_id])
        profile, facts = await uow.lookups.record_of(worker_id) or (Profile(), [])
        record = credit_record(worker_id, profile, facts, now, full=True)
        await uow.commit()
    return record


def _award_entry(worker_id: str, request_id: uuid.UUID, award: Award) -> domain.LedgerEntry:
    """The award as a fact of the day it was given, from 00:00 Beijing time; its id is the request's."""
    occurred_at = datetime.combine(award.awarded_on, time(), model.BEIJING)
    source = (str(request_id), OPERATOR_SOURCE, trace_id_of(current_traceparent()), occurred_at)
    return domain.recorded(worker_id, model.FactKind.AWARD, f"award: {award.title}", source, award.tier)
