"""Use cases: the mediation queues (claims under leases, release, reassignment, workload), the
mediation agreement and its follow-up, escalation, and the legal-aid referral queue; and what the
deadline timers do when a deadline passes."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from libs.common.auth import Principal, Role
from libs.common.errors import InvalidArgument, NotFound, PermissionDenied
from libs.common.timers import DueTimer
from services.complaints import domain, events
from services.complaints.service_layer.cases import (
    REFERRAL_TIMER,
    publish_resolution,
    schedule_deadline,
    visible_case,
)
from services.complaints.service_layer.ports import ComplaintsUnitOfWork, Rules, Workload


def mediator_body(principal: Principal) -> domain.MediationBody:
    """A mediator's body is its key's tenant (e.g. consumer_association)."""
    try:
        return domain.MediationBody(principal.tenant)
    except ValueError:
        raise PermissionDenied(f"{principal.id} is not a mediator of a known mediation body") from None


def body_for(principal: Principal, asked: domain.MediationBody | None) -> domain.MediationBody:
    """The body a listing is about: the mediator's own, or the one an operator names."""
    if principal.role is Role.MEDIATOR:
        return mediator_body(principal)
    if asked is None:
        raise InvalidArgument("body", "operators name the mediation body")
    return asked


async def queue(uow: ComplaintsUnitOfWork, body: domain.MediationBody, limit: int) -> list[domain.Case]:
    async with uow:
        return await uow.cases.queue(body, limit)


async def workload(uow: ComplaintsUnitOfWork, body: domain.MediationBody) -> list[Workload]:
    async with uow:
        return await uow.cases.workload(body, uow.clock.now())


async def claim_next(uow: ComplaintsUnitOfWork, rules: Rules, principal: Principal) -> domain.Case:
    """The first free case of the mediator's body's queue, under a fresh lease."""
    async with uow:
        now = uow.clock.now()
        case = await uow.cases.next_claimable(mediator_body(principal), now)
        if case is None:
            raise NotFound("no case waits in your body's queue")
        claimed = domain.claim(case, principal.id, now, rules.lease)
        await uow.cases.update(claimed)
        await uow.add_event(events.TOPIC, events.mediation_assigned(claimed, case.mediator, now))
        await uow.commit()
    return claimed


async def _mediators_case(uow: ComplaintsUnitOfWork, principal: Principal, case_id: uuid.UUID) -> domain.Case:
    case = await visible_case(uow, principal, case_id)
    if principal.role is not Role.MEDIATOR:
        raise PermissionDenied("only a mediator of the case's body does this")
    return case


async def release(uow: ComplaintsUnitOfWork, principal: Principal, case_id: uuid.UUID) -> domain.Case:
    async with uow:
        case = await _mediators_case(uow, principal, case_id)
        released = domain.release(case, principal.id, uow.clock.now())
        await uow.cases.update(released)
        await uow.commit()
    return released


async def reassign(
    uow: ComplaintsUnitOfWork, rules: Rules, principal: Principal, case_id: uuid.UUID, mediator: str
) -> domain.Case:
    """An operator gives the case to ``mediator``, with a fresh lease."""
    async with uow:
        case = await visible_case(uow, principal, case_id)
        now = uow.clock.now()
        reassigned = domain.reassign(case, mediator, now, rules.lease)
        await uow.cases.update(reassigned)
        await uow.add_event(events.TOPIC, events.mediation_assigned(reassigned, case.mediator, now))
        await uow.commit()
    return reassigned


async def record_agreement(
    uow: ComplaintsUnitOfWork,
    principal: Principal,
    case_id: uuid.UUID,
    agreement: domain.Agreement,
    outcome: domain.Outcome,
) -> domain.Case:
    """The mediation agreement of a held case; its follow-up deadline starts."""
    async with uow:
        case = await _mediators_case(uow, principal, case_id)
        now = uow.clock.now()
        agreed = domain.record_agreement(case, principal.id, agreement, outcome, now)
        await uow.cases.update(agreed)
        await schedule_deadline(uow, agreed)
        await uow.add_event(events.TOPIC, events.agreement_reached(agreed, now))
        await uow.commit()
    return agreed


async def record_performance(
    uow: ComplaintsUnitOfWork,
    rules: Rules,
    principal: Principal,
    case_id: uuid.UUID,
    performed: bool,
    breached_by: domain.PartyKind | None,
) -> domain.Case:
    """Performed: the case is resolved with the agreement's outcome. Breached: recorded,
    published, and the case escalated by its default route."""
    if principal.role not in (Role.MEDIATOR, Role.OPERATOR):
        raise PermissionDenied("mediators and operators record an agreement's performance")
    if not performed and breached_by is None:
        raise InvalidArgument("breached_by", "name the party in breach")
    async with uow:
        case = await visible_case(uow, principal, case_id)
        now = uow.clock.now()
        followed = domain.follow_up(case, performed)
        await uow.cases.update(followed)
        await schedule_deadline(uow, followed)
        await uow.add_event(events.TOPIC, events.agreement_followed_up(followed, performed, breached_by, now))
        if performed:
            await publish_resolution(uow, followed)
        else:
            await _escalated(uow, rules, followed, "agreement_breached")
        await uow.commit()
    return followed


async def end_mediation(
    uow: ComplaintsUnitOfWork,
    rules: Rules,
    principal: Principal,
    case_id: uuid.UUID,
    route: domain.EscalationRoute,
) -> domain.Case:
    """The mediator ends the mediation without agreement; the case goes by ``route``."""
    async with uow:
        case = await _mediators_case(uow, principal, case_id)
        ended = domain.end_mediation(case, principal.id, route, uow.clock.now())
        await uow.cases.update(ended)
        await schedule_deadline(uow, ended)
        await _escalated(uow, rules, ended, "no_agreement")
        await uow.commit()
    return ended


async def _escalated(uow: ComplaintsUnitOfWork, rules: Rules, case: domain.Case, reason: str) -> None:
    """Publish the escalation; a case escalated to legal aid joins the referral queue."""
    now = uow.clock.now()
    await uow.add_event(events.TOPIC, events.escalated_externally(case, reason, now))
    if case.route is domain.EscalationRoute.LEGAL_AID:
        referral = domain.refer_to_legal_aid(case, now, rules.calendar)
        await uow.referrals.add(referral)
        await uow.timers.schedule(REFERRAL_TIMER, str(case.case_id), referral.deadline, {})
        await uow.add_event(events.TOPIC, events.legal_aid_referral(case, referral, now))


async def referrals(uow: ComplaintsUnitOfWork, limit: int) -> list[domain.Referral]:
    async with uow:
        return await uow.referrals.listing(limit)


async def accept_referral(uow: ComplaintsUnitOfWork, case_id: uuid.UUID) -> domain.Referral:
    """A legal-aid centre took the referral."""
    async with uow:
        case = await uow.cases.get_for_update(case_id)
        referral = await uow.referrals.get_for_update(case_id)
        if case is None or referral is None:
            raise NotFound(f"cases/{case_id}")
        now = uow.clock.now()
        accepted = dataclasses.replace(referral, accepted_at=referral.accepted_at or now)
        await uow.referrals.update(accepted)
        await uow.timers.cancel(REFERRAL_TIMER, str(case_id))
        await uow.add_event(events.TOPIC, events.legal_aid_referral(case, accepted, now))
        await uow.commit()
    return accepted


# -- deadlines -------------------------------------------------------------------------------


async def deadline_due(uow: ComplaintsUnitOfWork, rules: Rules, timer: DueTimer) -> None:
    """A case's deadline passed (in the timer worker's unit of work): a breach is published and
    the case moves on by the clock alone. A timer for a deadline the case no longer runs does
    nothing."""
    case = await uow.cases.get_for_update(uuid.UUID(timer.key))
    if case is None or case.deadline is None or case.deadline.kind.value != timer.payload.get("kind"):
        return
    if case.deadline.due_at > uow.clock.now():
        return  # rescheduled later meanwhile; its own timer fires then
    now, deadline = uow.clock.now(), case.deadline
    moved = _moved_on(case, rules, now)
    await uow.cases.update(moved)
    await schedule_deadline(uow, moved)
    if deadline.kind is not domain.DeadlineKind.MEDIATION:
        await uow.add_event(
            events.TOPIC, events.sla_breached(case, deadline.kind.value, deadline.due_at, now)
        )
    await _publish_move(uow, rules, case, moved, now)


def _moved_on(case: domain.Case, rules: Rules, now: datetime) -> domain.Case:
    kind = case.deadline.kind if case.deadline else None
    if kind is domain.DeadlineKind.FIRST_RESPONSE:
        return domain.first_response_missed(case, rules.calendar)
    if kind is domain.DeadlineKind.DECISION:
        return domain.to_mediation(case, now, rules.calendar)
    if kind is domain.DeadlineKind.MEDIATION:
        return domain.escalate(case, domain.default_route(case.filing))
    return dataclasses.replace(case, deadline=None)  # the agreement's follow-up is overdue


async def _publish_move(
    uow: ComplaintsUnitOfWork, rules: Rules, before: domain.Case, after: domain.Case, now: datetime
) -> None:
    if after.state is domain.CaseState.IN_MEDIATION and before.state is not domain.CaseState.IN_MEDIATION:
        await uow.add_event(events.TOPIC, events.to_mediation(after, "decision_breached", now))
    elif after.state is domain.CaseState.ESCALATED:
        await _escalated(uow, rules, after, "mediation_deadline")


async def referral_due(uow: ComplaintsUnitOfWork, timer: DueTimer) -> None:
    """A legal-aid referral nobody took by its deadline: marked overdue, the breach published."""
    case_id = uuid.UUID(timer.key)
    case = await uow.cases.get_for_update(case_id)
    referral = await uow.referrals.get_for_update(case_id)
    if case is None or referral is None or referral.accepted_at is not None:
        return
    await uow.referrals.update(dataclasses.replace(referral, overdue=True))
    await uow.add_event(
        events.TOPIC, events.sla_breached(case, "legal_aid_referral", referral.deadline, uow.clock.now())
    )
