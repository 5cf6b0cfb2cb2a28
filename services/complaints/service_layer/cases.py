"""Use cases: filing a complaint or a worker's dispute, the respondent's answers, resolution and
withdrawal. Each runs in one unit of work, the case's row locked before its events are written,
its deadline kept on a durable timer."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from libs.common.auth import Principal, Role
from libs.common.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from services.complaints import domain, events
from services.complaints.service_layer.ports import ComplaintsUnitOfWork, Rules

DEADLINE_TIMER = "complaints.deadline"
REFERRAL_TIMER = "complaints.referral"


async def schedule_deadline(uow: ComplaintsUnitOfWork, case: domain.Case) -> None:
    """One timer per case, on its running deadline (none: the timer is cancelled)."""
    if case.deadline is None:
        await uow.timers.cancel(DEADLINE_TIMER, str(case.case_id))
        return
    payload = {"kind": case.deadline.kind.value, "due_at": case.deadline.due_at.isoformat()}
    await uow.timers.schedule(DEADLINE_TIMER, str(case.case_id), case.deadline.due_at, payload)


async def open_case(
    uow: ComplaintsUnitOfWork,
    case: domain.Case,
    filer: str,
    request_id: uuid.UUID,
    submitted: domain.Filing | None = None,
) -> domain.Case:
    """Store a new case (or answer the one this request made), its first deadline and CaseFiled.
    ``submitted`` is the filing as the caller sent it, before the order filled it in."""
    earlier = await uow.cases.add_once(case, filer, request_id)
    if earlier is not None:
        if not _same_request(earlier.filing, submitted or case.filing):
            raise AlreadyExists(f"request_id {request_id} was used for {earlier.name}")
        return earlier
    await schedule_deadline(uow, case)
    await uow.add_event(events.TOPIC, events.case_filed(case))
    return case


def _same_request(stored: domain.Filing, submitted: domain.Filing) -> bool:
    """Whether a retry asks for what the first request did: every field the caller gave is the
    stored one (fields the order filled in later, e.g. once it was assigned, do not count)."""
    given = {f.name: getattr(submitted, f.name) for f in dataclasses.fields(submitted)}
    return all(getattr(stored, name) == value for name, value in given.items() if value not in ("", (), None))


async def file_complaint(
    uow: ComplaintsUnitOfWork, platform_id: str, request_id: uuid.UUID, filing: domain.Filing
) -> domain.Case:
    """A consumer's complaint through ``platform_id``; its order must be one of the platform's."""
    async with uow:
        completed = await _with_order(uow, platform_id, filing)
        if not (
            completed.worker_id if completed.respondent is domain.PartyKind.WORKER else completed.company_id
        ):
            field = "worker" if completed.respondent is domain.PartyKind.WORKER else "company"
            raise InvalidArgument(field, "is required: name it, or give an order whose worker is known")
        case = domain.file_case(uuid.uuid4(), completed, uow.clock.now())
        stored = await open_case(uow, case, platform_id, request_id, filing)
        await uow.commit()
    return stored


async def _with_order(uow: ComplaintsUnitOfWork, platform_id: str, filing: domain.Filing) -> domain.Filing:
    """The filing completed from its order (platform, worker, company, district), which must be the
    platform's: the order's platform answers for a consumer respondent."""
    if not filing.order_id:
        return filing
    order = await uow.orders.get(filing.order_id)
    if order is None or order.platform_id != platform_id:
        raise NotFound(f"orders/{filing.order_id}")
    return dataclasses.replace(
        filing,
        platform_id=filing.platform_id or order.platform_id,
        worker_id=filing.worker_id or order.worker_id,
        company_id=filing.company_id or order.company_id,
        district_code=order.district_code,
    )


async def file_worker_dispute(
    uow: ComplaintsUnitOfWork, principal: Principal, request_id: uuid.UUID, filing: domain.Filing
) -> domain.Case:
    """A worker's dispute, filed by the worker's platform, the worker's company (an outlet) or a union."""
    if filing.respondent is domain.PartyKind.COMPANY and not filing.company_id:
        raise InvalidArgument("company", "is required against a company")
    against_another = filing.company_id and filing.company_id != principal.tenant
    if principal.role is Role.COMPANY and filing.respondent is domain.PartyKind.COMPANY and against_another:
        raise PermissionDenied("a company files a dispute against a company only as that company")
    async with uow:
        platform = principal.tenant if principal.role is Role.PLATFORM else ""
        completed = filing
        if filing.order_id:
            completed = await _with_order(
                uow, platform or (await _order_platform(uow, filing.order_id)), filing
            )
        case = domain.file_case(uuid.uuid4(), completed, uow.clock.now())
        stored = await open_case(uow, case, principal.tenant, request_id, filing)
        await uow.commit()
    return stored


async def _order_platform(uow: ComplaintsUnitOfWork, order_id: str) -> str:
    order = await uow.orders.get(order_id)
    if order is None:
        raise NotFound(f"orders/{order_id}")
    return order.platform_id


# -- who may see and answer a case -----------------------------------------------------------


def may_see(case: domain.Case, principal: Principal) -> bool:
    """Operators see all; a platform its own cases; a company the cases about it or filed by it;
    a mediator the cases of its body; an insurer claim disputes; a union the disputes it filed."""
    f = case.filing
    role, tenant = principal.role, principal.tenant
    return (
        role is Role.OPERATOR
        or (role is Role.PLATFORM and tenant in (f.platform_id, f.filed_by))
        or (role is Role.COMPANY and tenant in (f.company_id, f.filed_by))
        or (role is Role.MEDIATOR and case.body is not None and tenant == case.body.value)
        or (role is Role.INSURER and f.kind is domain.CaseKind.CLAIM_DISPUTE)
        or (role is Role.UNION and tenant == f.filed_by)
    )


def answers_for_respondent(case: domain.Case, principal: Principal) -> bool:
    """Who answers for the respondent: the company (also for its worker), the consumer's
    platform, an insurer; or an operator."""
    f, role, tenant = case.filing, principal.role, principal.tenant
    if role is Role.OPERATOR:
        return True
    if f.respondent in (domain.PartyKind.COMPANY, domain.PartyKind.WORKER):
        return role is Role.COMPANY and tenant == f.company_id
    if f.respondent is domain.PartyKind.CONSUMER:
        return role is Role.PLATFORM and tenant == f.platform_id
    return role is Role.INSURER


async def visible_case(
    uow: ComplaintsUnitOfWork, principal: Principal, case_id: uuid.UUID, for_update: bool = True
) -> domain.Case:
    """The case as ``principal`` may see it (locked for a writer); NOT_FOUND otherwise."""
    case = await (uow.cases.get_for_update(case_id) if for_update else uow.cases.get(case_id))
    if case is None or not may_see(case, principal):
        raise NotFound(f"cases/{case_id}")
    return case


async def get_case(uow: ComplaintsUnitOfWork, principal: Principal, case_id: uuid.UUID) -> domain.Case:
    async with uow:
        return await visible_case(uow, principal, case_id, for_update=False)


async def _respondents_case(
    uow: ComplaintsUnitOfWork, principal: Principal, case_id: uuid.UUID
) -> domain.Case:
    case = await visible_case(uow, principal, case_id)
    if not answers_for_respondent(case, principal):
        raise PermissionDenied("only the respondent's side answers this case")
    return case


async def respond(
    uow: ComplaintsUnitOfWork, rules: Rules, principal: Principal, case_id: uuid.UUID
) -> domain.Case:
    """The respondent's first response (within 24 hours)."""
    async with uow:
        case = await _respondents_case(uow, principal, case_id)
        now = uow.clock.now()
        responded = domain.respond(case, now, rules.calendar)
        await _store(uow, responded)
        await uow.add_event(events.TOPIC, events.case_answered(responded, now))
        await uow.commit()
    return responded


async def decide(
    uow: ComplaintsUnitOfWork, rules: Rules, principal: Principal, case_id: uuid.UUID, accept: bool
) -> domain.Case:
    """The respondent accepts (and must resolve by the decision deadline) or rejects (mediation)."""
    async with uow:
        case = await _respondents_case(uow, principal, case_id)
        now = uow.clock.now()
        if accept:
            decided = domain.accept(case, now, rules.calendar)
            await uow.add_event(events.TOPIC, events.case_answered(decided, now))
        else:
            decided = domain.to_mediation(case, now, rules.calendar)
            await uow.add_event(events.TOPIC, events.to_mediation(decided, "rejected", now))
        await _store(uow, decided)
        await uow.commit()
    return decided


async def _store(uow: ComplaintsUnitOfWork, case: domain.Case) -> None:
    await uow.cases.update(case)
    await schedule_deadline(uow, case)


async def resolve(
    uow: ComplaintsUnitOfWork, principal: Principal, case_id: uuid.UUID, outcome: domain.Outcome
) -> domain.Case:
    """The outcome: by the company of a case it accepted, the mediator holding it, or an operator."""
    async with uow:
        case = await visible_case(uow, principal, case_id)
        now = uow.clock.now()
        _check_resolver(case, principal, now)
        resolved = domain.resolve(case, outcome, principal.id)
        await _store(uow, resolved)
        await publish_resolution(uow, resolved)
        await uow.commit()
    return resolved


def _check_resolver(case: domain.Case, principal: Principal, now: datetime) -> None:
    if principal.role is Role.OPERATOR or case.state not in domain.OPEN:
        return  # an operator may; a closed case fails in the domain with its state
    if case.state is domain.CaseState.ACCEPTED and answers_for_respondent(case, principal):
        return
    if case.state is domain.CaseState.IN_MEDIATION and principal.role is Role.MEDIATOR:
        domain.require_holder(case, principal.id, now, "resolve")  # as every holder step
        return
    raise PermissionDenied(f"you cannot resolve a case that is {case.state}")


async def publish_resolution(uow: ComplaintsUnitOfWork, case: domain.Case) -> None:
    now = uow.clock.now()
    published = [events.case_resolved(case, now)]
    if domain.requests_suspension(case):
        published.append(events.suspension_requested(case, now))
    await uow.add_events(events.TOPIC, published)


async def withdraw(uow: ComplaintsUnitOfWork, principal: Principal, case_id: uuid.UUID) -> domain.Case:
    """The complainant's side (the platform or principal that filed it) withdraws the case."""
    async with uow:
        case = await visible_case(uow, principal, case_id)
        if principal.role is not Role.OPERATOR and principal.tenant != case.filing.filed_by:
            raise PermissionDenied("only the side that filed the case withdraws it")
        withdrawn = domain.withdraw(case)
        await _store(uow, withdrawn)
        await uow.add_event(events.TOPIC, events.case_withdrawn(withdrawn, uow.clock.now()))
        await uow.commit()
    return withdrawn
