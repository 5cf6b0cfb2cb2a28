"""Workers use cases: each runs in one unit of work, state, events and timers committed together.

A company principal (role ``company``, tenant = its company id) acts only on its own company
and workers; operators act on all; background checks are the operators' alone (api.POLICY).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

from libs.common.auth import Principal, Role
from libs.common.errors import InvalidArgument, NotFound, PermissionDenied
from libs.common.events import EventEnvelope
from libs.common.telemetry import span_in_trace_of
from libs.common.uow import Timer, UnitOfWork
from services.workers import domain as d
from services.workers import events

log = logging.getLogger(__name__)

BEIJING = ZoneInfo("Asia/Shanghai")
CARD_STATUS_TIMER = "workers.card_status"


@dataclass(frozen=True)
class StoredStatus:
    """The colour last published for a worker, and the inputs other services sent."""

    colour: d.CardColour
    reasons: tuple[d.Reason, ...]


class CompanyRepository(Protocol):
    async def add_once(self, company: d.Company, request_id: uuid.UUID, fingerprint: str) -> d.Company:
        """Store ``company`` unless ``request_id`` was used; then what that request created.
        A social credit code registered before is AlreadyExists."""
        ...

    async def exists(self, company_id: uuid.UUID) -> bool: ...


class WorkerRepository(Protocol):
    async def add_once(self, worker: d.Worker, request_id: uuid.UUID, fingerprint: str) -> uuid.UUID:
        """Store ``worker`` (sealing its personal data) unless ``request_id`` was used; the id of
        the worker that request created. An ID number registered before is AlreadyExists."""
        ...

    async def employments(self, worker_id: uuid.UUID) -> tuple[d.Employment, ...]:
        """The worker's employment history, oldest first; empty for an unknown worker."""
        ...

    async def set_employments(self, worker_id: uuid.UUID, employments: tuple[d.Employment, ...]) -> None: ...


class QualificationRepository(Protocol):
    async def add_background_check(
        self, worker_id: uuid.UUID, check: d.BackgroundCheck, at: datetime
    ) -> None: ...

    async def add_health_check(self, worker_id: uuid.UUID, check: d.HealthCheck, at: datetime) -> None: ...

    async def add_training(self, worker_id: uuid.UUID, training: d.Training, at: datetime) -> None: ...

    async def add_certificate(
        self, worker_id: uuid.UUID, certificate: d.SkillCertificate, at: datetime
    ) -> d.SkillLevel:
        """Store the certificate; the worker's highest certified level after it."""
        ...


class CardStatusRepository(Protocol):
    async def inputs_many(self, worker_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, d.CardStatusInputs]:
        """Everything each worker's colour depends on: this service's records and other services'
        events (none yet for a worker without a stored status)."""
        ...

    async def stored_many(self, worker_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredStatus]:
        """The stored statuses of the workers that have one."""
        ...

    async def save_many(self, statuses: Mapping[uuid.UUID, StoredStatus], at: datetime) -> None: ...

    # The inputs other services send, each worker's in one statement for all of them; each answers
    # the workers known here (the others are left out).
    async def set_credit_levels(self, levels: Mapping[uuid.UUID, str | None]) -> set[uuid.UUID]:
        """Remember credit's latest level of each worker."""
        ...

    async def set_suspensions(self, suspended: Mapping[uuid.UUID, bool]) -> set[uuid.UUID]: ...

    async def set_insured_until(self, until: Mapping[uuid.UUID, date | None]) -> set[uuid.UUID]: ...


class WorkersUnitOfWork(UnitOfWork, Protocol):
    @property
    def companies(self) -> CompanyRepository: ...

    @property
    def workers(self) -> WorkerRepository: ...

    @property
    def qualifications(self) -> QualificationRepository: ...

    @property
    def status(self) -> CardStatusRepository: ...


def beijing_today(now: datetime) -> date:
    return now.astimezone(BEIJING).date()


def may_manage(principal: Principal, company_id: uuid.UUID) -> None:
    """Operators manage every company; a company principal only its own."""
    if principal.role is Role.OPERATOR:
        return
    if principal.role is Role.COMPANY and principal.tenant == str(company_id):
        return
    raise PermissionDenied(f"companies/{company_id} is not yours to manage")


def fingerprint(*parts: object) -> str:
    """Same request, same fingerprint: tells a retry from a different request under one request id."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


async def create_company(
    uow: WorkersUnitOfWork, request_id: uuid.UUID, draft: d.CompanyDraft, company_id: uuid.UUID | None = None
) -> d.Company:
    async with uow:
        company = d.register_company(draft, uow.clock.now(), company_id)
        stored = await uow.companies.add_once(company, request_id, fingerprint(draft, company_id))
        if stored.company_id == company.company_id:
            await uow.add_event(events.TOPIC, events.company_registered(company))
            await uow.commit()
        return stored


async def create_worker(
    uow: WorkersUnitOfWork,
    principal: Principal,
    request_id: uuid.UUID,
    company_id: uuid.UUID,
    draft: d.WorkerDraft,
) -> uuid.UUID:
    may_manage(principal, company_id)
    async with uow:
        if not await uow.companies.exists(company_id):
            raise NotFound(f"companies/{company_id}")
        worker = d.register_worker(draft, company_id, uow.clock.now())
        worker_id = await uow.workers.add_once(worker, request_id, fingerprint(company_id, draft))
        if worker_id == worker.worker_id:
            await uow.add_event(events.TOPIC, events.worker_registered(worker))
            await refresh_status(uow, worker_id)
            await uow.commit()
            log.info(
                "worker registered",
                extra={"fields": {"worker_id": str(worker_id), "company_id": str(company_id)}},
            )
        return worker_id


async def managed_history(
    uow: WorkersUnitOfWork, principal: Principal, worker_id: uuid.UUID
) -> tuple[d.Employment, ...]:
    """The worker's employment history, once the caller may manage its current company (inside an
    open unit of work)."""
    history = await uow.workers.employments(worker_id)
    if not history:
        raise NotFound(f"workers/{worker_id}")
    may_manage(principal, history[-1].company_id)
    return history


async def worker_company(uow: WorkersUnitOfWork, principal: Principal, worker_id: uuid.UUID) -> uuid.UUID:
    """The worker's current company, once the caller may manage it (inside an open unit of work)."""
    return (await managed_history(uow, principal, worker_id))[-1].company_id


async def transfer_worker(
    uow: WorkersUnitOfWork, principal: Principal, worker_id: uuid.UUID, to_company: uuid.UUID
) -> None:
    async with uow:
        before = await managed_history(uow, principal, worker_id)
        if not await uow.companies.exists(to_company):
            raise NotFound(f"companies/{to_company}")
        now = uow.clock.now()
        history = d.move_worker_history(before, to_company, now)
        await uow.workers.set_employments(worker_id, history)
        event = events.worker_transferred(worker_id, before[-1].company_id, to_company, now)
        await uow.add_event(events.TOPIC, event)
        await uow.commit()


async def record_background_check(
    uow: WorkersUnitOfWork, principal: Principal, worker_id: uuid.UUID, check: d.BackgroundCheck
) -> d.CardColour:
    async with uow:
        await worker_company(uow, principal, worker_id)
        now = uow.clock.now()
        if check.checked_on > beijing_today(now):
            raise InvalidArgument("check_date", "must not be in the future")
        await uow.qualifications.add_background_check(worker_id, check, now)
        await uow.add_event(events.TOPIC, events.background_check_recorded(worker_id, check, now))
        colour = await refresh_status(uow, worker_id)
        await uow.commit()
        return colour


@dataclass(frozen=True)
class HealthCheckForm:
    tier: d.HealthTier
    issued_on: date
    hospital: str
    certificate_no: str


async def record_health_check(
    uow: WorkersUnitOfWork,
    principal: Principal,
    worker_id: uuid.UUID,
    form: HealthCheckForm,
    validity_months: int,
) -> tuple[d.HealthCheck, d.CardColour]:
    async with uow:
        await worker_company(uow, principal, worker_id)
        now = uow.clock.now()
        check = d.record_health_check(
            form.tier, form.issued_on, form.hospital, form.certificate_no, beijing_today(now), validity_months
        )
        await uow.qualifications.add_health_check(worker_id, check, now)
        await uow.add_event(events.TOPIC, events.health_check_recorded(worker_id, check, now))
        colour = await refresh_status(uow, worker_id)
        await uow.commit()
        return check, colour


async def record_training(
    uow: WorkersUnitOfWork, principal: Principal, worker_id: uuid.UUID, training: d.Training
) -> None:
    async with uow:
        await worker_company(uow, principal, worker_id)
        now = uow.clock.now()
        d.record_training(training, beijing_today(now))
        await uow.qualifications.add_training(worker_id, training, now)
        await uow.add_event(events.TOPIC, events.training_recorded(worker_id, training, now))
        await uow.commit()


async def record_certificate(
    uow: WorkersUnitOfWork, principal: Principal, worker_id: uuid.UUID, certificate: d.SkillCertificate
) -> d.SkillLevel:
    async with uow:
        await worker_company(uow, principal, worker_id)
        now = uow.clock.now()
        d.record_certificate(certificate, beijing_today(now))
        highest = await uow.qualifications.add_certificate(worker_id, certificate, now)
        await uow.add_event(events.TOPIC, events.certificate_recorded(worker_id, certificate, highest, now))
        await uow.commit()
        return highest


async def refresh_status(uow: WorkersUnitOfWork, worker_id: uuid.UUID) -> d.CardColour:
    """``refresh_statuses`` of one worker, in the current trace."""
    return (await refresh_statuses(uow, {worker_id: None}))[worker_id]


async def refresh_statuses(
    uow: WorkersUnitOfWork, traces: Mapping[uuid.UUID, str | None]
) -> dict[uuid.UUID, d.CardColour]:
    """Inside an open unit of work (a use case, a fired timer, consumed events): each worker's
    colour now; when it or its reasons changed, stored and published (a new colour logged) in the
    trace ``traces`` gives the worker, that of what changed it. Each card-status timer is set for
    the next day a validity lapses, so that a lapse needs no call. A few statements for all the
    workers, not a few per worker, in worker order."""
    ids = sorted(traces)
    now = uow.clock.now()
    today = beijing_today(now)
    inputs = await uow.status.inputs_many(ids)
    before = await uow.status.stored_many(ids)
    after = {w: StoredStatus(*d.card_status(inputs[w], today)) for w in ids}
    changed = {w: status for w, status in after.items() if before.get(w) != status}
    await uow.status.save_many(changed, now)
    published = [_status_changed(w, status, before.get(w), now, traces[w]) for w, status in changed.items()]
    await uow.add_events(events.TOPIC, published)
    await _set_lapse_timers(uow, {w: d.next_lapse(inputs[w], today) for w in ids})
    return {w: status.colour for w, status in after.items()}


def _status_changed(
    worker_id: uuid.UUID, status: StoredStatus, before: StoredStatus | None, now: datetime, trace: str | None
) -> EventEnvelope:
    """The CardStatusChanged to publish, and a new colour logged, in ``trace``."""
    previous = before.colour if before else None
    with span_in_trace_of(trace, "card status"):
        if status.colour != previous:
            fields = {
                "worker_id": str(worker_id),
                "colour": status.colour,
                "previous": previous,
                "reasons": status.reasons,
            }
            log.info("card colour changed", extra={"fields": fields})
        return events.card_status_changed(worker_id, status.colour, previous, status.reasons, now)


async def _set_lapse_timers(uow: WorkersUnitOfWork, lapses: Mapping[uuid.UUID, date | None]) -> None:
    """Each worker's card-status timer at Beijing midnight of its lapse; none without a lapse."""
    due: list[Timer] = [
        (str(w), datetime.combine(lapse, time(), BEIJING), {})
        for w, lapse in lapses.items()
        if lapse is not None
    ]
    await uow.timers.schedule_many(CARD_STATUS_TIMER, due)
    await uow.timers.cancel_many(CARD_STATUS_TIMER, [str(w) for w, lapse in lapses.items() if lapse is None])
