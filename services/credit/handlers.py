"""Event effects: every event that moves credit becomes a fact on the worker's ledger, in the
consumer's unit of work (inbox, entries and the re-evaluation commit together); once all of a
poll's events are applied, each worker they scored is re-evaluated once and its level change
published. What credit keeps of workers (employer, card colour, consent grants) comes from the
workers service's events; what it keeps of companies' complaint handling (cases filed, answered,
resolved) from the complaints service's. A company whose complaint handling a poll changed has its
regrade timer set when the poll settles, as a changed score of one of its workers and a worker
joining or leaving it do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.complaints.v1 import complaints_pb2
from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.orders.v1 import orders_pb2
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2
from libs.common.events import EventEnvelope, event_type_of
from libs.common.inbox import Effect, SettledEffects
from libs.common.telemetry import trace_id_of
from services.credit import companies, domain, scoring
from services.credit.companies import CompanyCase, CompanyRepository
from services.credit.model import FactKind
from services.credit.scoring import Grant, ScoringUnitOfWork

log = logging.getLogger(__name__)


class LedgerRepository(Protocol):
    async def add_many(self, entries: Sequence[domain.LedgerEntry]) -> None: ...


class Profiles(scoring.Employers, Protocol):
    async def set_company(self, worker_id: str, company_id: str) -> None: ...

    async def set_card_colours(self, colours: Mapping[str, str]) -> None:
        """Each worker's card colour (a run's last), in one statement."""
        ...

    async def grant(self, grant: Grant) -> None: ...

    async def revoke(self, grant_id: str) -> None: ...


class CreditUnitOfWork(ScoringUnitOfWork, Protocol):
    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def profiles(self) -> Profiles: ...

    @property
    def companies(self) -> CompanyRepository: ...

    @property
    def to_rescore(self) -> dict[str, dict[str, str]]:
        """The workers whose record this unit of work's effects scored, each with the events that
        did (event id -> traceparent, in the order they came; empty when it begins)."""
        ...

    @property
    def to_regrade(self) -> set[str]:
        """The companies whose complaint handling this unit of work's effects changed (empty when it
        begins)."""
        ...


ToEntries = Callable[[EventEnvelope], list[domain.LedgerEntry]]


def _source(event: EventEnvelope) -> tuple[str, str, str, datetime]:
    return event.id, event.type, trace_id_of(event.traceparent), event.time


def _entry(
    event: EventEnvelope, worker_id: str, kind: FactKind, reason: str, magnitude: int = 1, detail: str = ""
) -> list[domain.LedgerEntry]:
    if not worker_id:
        return []
    return [domain.recorded(worker_id, kind, reason, _source(event), magnitude, detail)]


def _facts_effect(to_entries: ToEntries) -> Effect[CreditUnitOfWork]:
    """Record the entries of a run of events; note the workers whose record they score, to be
    re-evaluated when the poll settles."""

    async def apply(uow: CreditUnitOfWork, batch: Sequence[EventEnvelope]) -> None:
        entries = []
        for event in batch:
            recorded = to_entries(event)
            entries += recorded
            scored = (e.worker_id for e in recorded if e.kind is not FactKind.UNSCORED)
            for worker_id in scored:
                uow.to_rescore.setdefault(worker_id, {})[event.id] = event.traceparent or ""
        await uow.ledger.add_many(entries)
        if log.isEnabledFor(logging.DEBUG):
            for entry in entries:
                fields = {
                    "event_id": entry.event_id,
                    "worker_id": entry.worker_id,
                    "trace_id": entry.trace_id,
                }
                log.debug("ledger entry recorded", extra={"fields": fields})

    return apply


def _booked(event: EventEnvelope) -> list[domain.LedgerEntry]:
    created = event.parse(order_events.OrderCreated)
    return _entry(event, created.worker_id, FactKind.UNSCORED, f"booked for order {created.order_id}")


def _completed(event: EventEnvelope) -> list[domain.LedgerEntry]:
    done = event.parse(order_events.OrderCompleted)
    return _entry(event, done.worker_id, FactKind.ORDER_COMPLETED, f"completed order {done.order_id}")


def _rated(event: EventEnvelope) -> list[domain.LedgerEntry]:
    rating = event.parse(order_events.RatingPosted)
    if rating.rater != orders_pb2.PARTY_CONSUMER or not 1 <= rating.stars <= 5:
        return []
    return _entry(event, rating.worker_id, FactKind.RATING, f"rated {rating.stars} stars", rating.stars)


def _no_show(event: EventEnvelope) -> list[domain.LedgerEntry]:
    no_show = event.parse(order_events.NoShowReported)
    if no_show.at_fault != orders_pb2.PARTY_WORKER:
        return []
    return _entry(event, no_show.worker_id, FactKind.NO_SHOW, f"no-show for order {no_show.order_id}")


_UPHELD = {
    complaints_pb2.OUTCOME_RESULT_SUBSTANTIATED: "substantiated",
    complaints_pb2.OUTCOME_RESULT_PARTLY_SUBSTANTIATED: "partly_substantiated",
}


def _complaint(event: EventEnvelope) -> list[domain.LedgerEntry]:
    """An upheld complaint with the worker at fault (or no party named against a named worker)."""
    resolved = event.parse(complaint_events.CaseResolved)
    detail = _UPHELD.get(resolved.outcome.result)
    at_fault = resolved.outcome.at_fault
    worker_side = at_fault in (complaints_pb2.PARTY_KIND_WORKER, complaints_pb2.PARTY_KIND_UNSPECIFIED)
    if detail is None or not worker_side or not 1 <= resolved.severity <= 3:
        return []
    reason = f"complaint {resolved.case_id} {detail.replace('_', ' ')}"
    return _entry(event, resolved.worker_id, FactKind.COMPLAINT_UPHELD, reason, resolved.severity, detail)


def _breach(event: EventEnvelope) -> list[domain.LedgerEntry]:
    followed = event.parse(complaint_events.AgreementFollowedUp)
    if followed.performed or followed.breached_by != complaints_pb2.PARTY_KIND_WORKER:
        return []
    reason = f"mediation agreement of case {followed.case_id} breached"
    return _entry(event, followed.worker_id, FactKind.AGREEMENT_BREACHED, reason)


def _suspension(event: EventEnvelope) -> list[domain.LedgerEntry]:
    requested = event.parse(complaint_events.WorkerSuspensionRequested)
    reason = f"suspension requested by case {requested.case_id}"
    return _entry(event, requested.worker_id, FactKind.SUSPENSION_REQUESTED, reason)


def _training(event: EventEnvelope) -> list[domain.LedgerEntry]:
    training = event.parse(worker_events.TrainingRecorded)
    if not training.exam_passed or training.hours <= 0:
        return []
    reason = f"training of {training.hours} hours passed"
    return _entry(event, training.worker_id, FactKind.TRAINING_COMPLETED, reason, training.hours)


def _certificate(event: EventEnvelope) -> list[domain.LedgerEntry]:
    certificate = event.parse(worker_events.SkillCertificateRecorded)
    if not 1 <= certificate.level <= 4:
        return []
    reason = f"skill certificate {workers_pb2.SkillLevel.Name(certificate.level)}"
    return _entry(event, certificate.worker_id, FactKind.CERTIFICATE_GRANTED, reason, certificate.level)


def _background(event: EventEnvelope) -> list[domain.LedgerEntry]:
    check = event.parse(worker_events.BackgroundCheckRecorded)
    if check.passed or not check.flags:
        return []
    reason = f"background check flagged: {', '.join(check.flags)}"
    return _entry(event, check.worker_id, FactKind.BACKGROUND_FLAGGED, reason, len(check.flags))


def _claim(event: EventEnvelope) -> list[domain.LedgerEntry]:
    paid = event.parse(insurance_events.ClaimPaid)
    if not paid.worker_at_fault or paid.paid_fen <= 0:
        return []
    reason = f"at-fault claim {paid.claim_id} paid"
    return _entry(event, paid.worker_id, FactKind.CLAIM_PAID_AT_FAULT, reason, paid.paid_fen)


ProfileChange = Callable[[CreditUnitOfWork, EventEnvelope], Awaitable[None]]


def _profile_effect(change: ProfileChange) -> Effect[CreditUnitOfWork]:
    async def apply(uow: CreditUnitOfWork, batch: Sequence[EventEnvelope]) -> None:
        for event in batch:
            await change(uow, event)

    return apply


async def _registered(uow: CreditUnitOfWork, event: EventEnvelope) -> None:
    """A worker joins a company: its workers' mean counts them once they have a score (credit may
    have scored them before it heard of the registration)."""
    registered = event.parse(worker_events.WorkerRegistered)
    await uow.profiles.set_company(registered.worker_id, registered.company_id)
    await companies.changed(uow, [registered.company_id])


async def _transferred(uow: CreditUnitOfWork, event: EventEnvelope) -> None:
    """A worker leaves one company for another: both lose or gain the worker's score."""
    moved = event.parse(worker_events.WorkerTransferred)
    await uow.profiles.set_company(moved.worker_id, moved.to_company_id)
    await companies.changed(uow, [moved.from_company_id, moved.to_company_id])


async def _cards(uow: CreditUnitOfWork, batch: Sequence[EventEnvelope]) -> None:
    """A run of card changes: each worker's last colour."""
    changes = (e.parse(worker_events.CardStatusChanged) for e in batch)
    colours = {
        c.worker_id: workers_pb2.CardColour.Name(c.colour).removeprefix("CARD_COLOUR_") for c in changes
    }
    await uow.profiles.set_card_colours(colours)


async def _granted(uow: CreditUnitOfWork, event: EventEnvelope) -> None:
    g = event.parse(worker_events.ConsentGranted)
    expires = g.expire_time.ToDatetime(tzinfo=event.time.tzinfo)
    await uow.profiles.grant(Grant(g.grant_id, g.worker_id, g.platform_id, g.consumer_ref, expires))


async def _revoked(uow: CreditUnitOfWork, event: EventEnvelope) -> None:
    await uow.profiles.revoke(event.parse(worker_events.ConsentRevoked).grant_id)


def _filed_at(filed: complaint_events.CaseFiled | complaint_events.CaseResolved) -> datetime:
    return filed.file_time.ToDatetime(tzinfo=UTC)


# The effects on companies' complaint handling: each run of events in one statement; the companies
# changed are noted, their regrade timers set when the poll settles.


async def _cases_filed(uow: CreditUnitOfWork, batch: Sequence[EventEnvelope]) -> None:
    cases = _company_cases(e.parse(complaint_events.CaseFiled) for e in batch)
    await uow.companies.cases_filed(cases)
    uow.to_regrade.update(case.company_id for case in cases)


async def _cases_answered(uow: CreditUnitOfWork, batch: Sequence[EventEnvelope]) -> None:
    answered = [e.parse(complaint_events.CaseAnswered) for e in batch]
    changed = await uow.companies.cases_answered([(a.case_id, a.response_seconds) for a in answered])
    uow.to_regrade.update(company_id for company_id in changed if company_id)


async def _cases_resolved(uow: CreditUnitOfWork, batch: Sequence[EventEnvelope]) -> None:
    cases = _company_cases(e.parse(complaint_events.CaseResolved) for e in batch)
    await uow.companies.cases_resolved(cases)
    uow.to_regrade.update(case.company_id for case in cases)


def _company_cases(
    parsed: Iterable[complaint_events.CaseFiled | complaint_events.CaseResolved],
) -> list[CompanyCase]:
    """The cases that name a company."""
    return [CompanyCase(c.case_id, c.company_id, _filed_at(c)) for c in parsed if c.company_id]


def _both(first: Effect[CreditUnitOfWork], second: Effect[CreditUnitOfWork]) -> Effect[CreditUnitOfWork]:
    """One event type with two effects, in one unit of work."""

    async def apply(uow: CreditUnitOfWork, batch: Sequence[EventEnvelope]) -> None:
        await first(uow, batch)
        await second(uow, batch)

    return apply


_KNOWN: Mapping[str, Effect[CreditUnitOfWork]] = {
    event_type_of(order_events.OrderCreated()): _facts_effect(_booked),
    event_type_of(order_events.OrderCompleted()): _facts_effect(_completed),
    event_type_of(order_events.RatingPosted()): _facts_effect(_rated),
    event_type_of(order_events.NoShowReported()): _facts_effect(_no_show),
    event_type_of(complaint_events.CaseFiled()): _cases_filed,
    event_type_of(complaint_events.CaseAnswered()): _cases_answered,
    event_type_of(complaint_events.CaseResolved()): _both(_facts_effect(_complaint), _cases_resolved),
    event_type_of(complaint_events.AgreementFollowedUp()): _facts_effect(_breach),
    event_type_of(complaint_events.WorkerSuspensionRequested()): _facts_effect(_suspension),
    event_type_of(worker_events.TrainingRecorded()): _facts_effect(_training),
    event_type_of(worker_events.SkillCertificateRecorded()): _facts_effect(_certificate),
    event_type_of(worker_events.BackgroundCheckRecorded()): _facts_effect(_background),
    event_type_of(insurance_events.ClaimPaid()): _facts_effect(_claim),
    event_type_of(worker_events.WorkerRegistered()): _profile_effect(_registered),
    event_type_of(worker_events.WorkerTransferred()): _profile_effect(_transferred),
    event_type_of(worker_events.CardStatusChanged()): _cards,
    event_type_of(worker_events.ConsentGranted()): _profile_effect(_granted),
    event_type_of(worker_events.ConsentRevoked()): _profile_effect(_revoked),
}


def _unscored(event: EventEnvelope) -> list[domain.LedgerEntry]:
    """An event about a worker of a type this build does not know (a producer's newer event): kept
    on the record, scoring nothing, so a later model can score it on a rebuild."""
    if not event.subject.startswith("workers/"):
        return []
    worker_id = event.subject.removeprefix("workers/")
    reason = f"{event.type}: not known to model {domain.RULE_VERSION}"
    return _entry(event, worker_id, FactKind.UNSCORED, reason)


# Every event type of the packages credit reads that it knows and does not score.
_IRRELEVANT = frozenset(
    message.full_name
    for module in (order_events, complaint_events, worker_events, insurance_events)
    for message in module.DESCRIPTOR.message_types_by_name.values()
) - set(_KNOWN)


class _Effects(SettledEffects[CreditUnitOfWork]):
    """The effects of the known types; any type credit has never heard of records an unscored fact
    (not dropped); the known types it does not score are ignored. A poll settles by re-evaluating
    each worker its facts scored once (not once per run of one event type), then each company whose
    complaint handling it changed, from its workers' new scores."""

    def __init__(self) -> None:
        self._unknown = _facts_effect(_unscored)

    def __getitem__(self, event_type: str) -> Effect[CreditUnitOfWork]:
        if event_type in _KNOWN:
            return _KNOWN[event_type]
        if event_type in _IRRELEVANT:
            raise KeyError(event_type)
        return self._unknown

    def __contains__(self, event_type: object) -> bool:
        return event_type not in _IRRELEVANT

    def __iter__(self) -> Iterator[str]:
        return iter(_KNOWN)

    def __len__(self) -> int:
        return len(_KNOWN)

    async def settle(self, uow: CreditUnitOfWork) -> None:
        """Each worker rescored once; a level change carries on the call that caused it (a poll may
        mix traces: the trace of the worker's event that counts most toward the new level); then the
        regrade timers of their companies and of those whose complaint handling changed, in one
        statement."""
        await scoring.rescore(uow, uow.to_rescore, causes=uow.to_rescore, regrade=uow.to_regrade)


EFFECTS: SettledEffects[CreditUnitOfWork] = _Effects()
