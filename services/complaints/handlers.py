"""Event effects: what complaints keeps of orders (to check a complaint's order without a call),
and the disputes that arrive by event (a disputed fee or no-show from orders, a contested claim
denial from insurance), which enter the same workflow; insurance's payments close compensation.

A case opened from an event takes its request id from the event's id, so a redelivery (which the
inbox already stops) could not open it twice either.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.orders.v1 import orders_pb2
from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, event_type_of
from libs.common.inbox import Effect
from services.complaints import domain, events
from services.complaints.service_layer import ComplaintsUnitOfWork, KnownOrder, open_case

EVENT_CASES = uuid.UUID("6f1d9a52-2a0c-4c51-9d65-4a3f0c2b7e11")  # namespace of cases' request ids


async def _order_created(uow: ComplaintsUnitOfWork, event: EventEnvelope) -> None:
    created = event.parse(order_events.OrderCreated)
    await uow.orders.upsert(KnownOrder(created.order_id, created.platform_id, created.district_code))


async def _order_assigned(uow: ComplaintsUnitOfWork, event: EventEnvelope) -> None:
    a = event.parse(order_events.OrderAssigned)
    await uow.orders.upsert(KnownOrder(a.order_id, a.platform_id, a.district_code, a.worker_id, a.company_id))


async def _charge_disputed(uow: ComplaintsUnitOfWork, event: EventEnvelope) -> None:
    """The side charged disputes a cancellation fee or a no-show: the other side answers."""
    d = event.parse(order_events.ChargeDisputed)
    if d.charge not in ("cancellation_fee", "no_show") or not d.order_id:
        raise PermanentEventError(f"{event.type} {event.id}: charge {d.charge!r} of order {d.order_id!r}")
    by_consumer = d.disputed_by == orders_pb2.PARTY_CONSUMER
    filing = domain.Filing(
        kind=domain.CaseKind.CHARGE_DISPUTE,
        category=domain.Category.FEES if d.charge == "cancellation_fee" else domain.Category.NO_SHOW,
        severity=domain.Severity.MINOR,
        complainant=domain.PartyKind.CONSUMER if by_consumer else domain.PartyKind.WORKER,
        respondent=domain.PartyKind.COMPANY if by_consumer else domain.PartyKind.CONSUMER,
        description=d.reason or d.charge,
        platform_id=d.platform_id,
        order_id=d.order_id,
        worker_id=d.worker_id,
        company_id=d.company_id,
        district_code=d.district_code,
        filed_by=d.platform_id,
    )
    await _open(uow, event, filing)


async def _claim_denial_contested(uow: ComplaintsUnitOfWork, event: EventEnvelope) -> None:
    """The insured company contests an insurer's denial: the insurer answers."""
    c = event.parse(insurance_events.ClaimDenialContested)
    if not c.claim_id or not c.company_id:
        raise PermanentEventError(f"{event.type} {event.id}: no claim or company")
    order = await uow.orders.get(c.order_id) if c.order_id else None
    filing = domain.Filing(
        kind=domain.CaseKind.CLAIM_DISPUTE,
        category=domain.Category.CLAIM_DENIED,
        severity=domain.Severity.MAJOR,
        complainant=domain.PartyKind.COMPANY,
        respondent=domain.PartyKind.INSURER,
        description=c.denial_reason or "claim denied",
        platform_id=order.platform_id if order else "",
        order_id=c.order_id,
        worker_id=c.worker_id,
        company_id=c.company_id,
        district_code=order.district_code if order else "",
        filed_by=c.company_id,
    )
    await _open(uow, event, filing)


async def _open(uow: ComplaintsUnitOfWork, event: EventEnvelope, filing: domain.Filing) -> None:
    request_id = uuid.uuid5(EVENT_CASES, event.id)
    case = domain.file_case(uuid.uuid5(EVENT_CASES, f"case:{event.id}"), filing, uow.clock.now())
    await open_case(uow, case, f"event:{event.source}", request_id)


async def _claim_paid(uow: ComplaintsUnitOfWork, event: EventEnvelope) -> None:
    """Insurance paid a case's compensation: published against the case; no state changes."""
    paid = event.parse(insurance_events.ClaimPaid)
    if not paid.case_id:
        return  # a claim that came from no complaint
    try:
        case_id = uuid.UUID(paid.case_id)
    except ValueError as exc:
        raise PermanentEventError(f"{event.type} {event.id}: case_id {paid.case_id!r}") from exc
    case = await uow.cases.get_for_update(case_id)
    if case is not None:
        claim = f"claims/{paid.claim_id}"
        await uow.add_event(
            events.TOPIC, events.compensation_settled(case, claim, paid.paid_fen, uow.clock.now())
        )


def _each(apply: object) -> Effect[ComplaintsUnitOfWork]:
    async def effect(uow: ComplaintsUnitOfWork, batch: Sequence[EventEnvelope]) -> None:
        for event in batch:
            await apply(uow, event)  # type: ignore[operator]

    return effect


EFFECTS: Mapping[str, Effect[ComplaintsUnitOfWork]] = {
    event_type_of(order_events.OrderCreated()): _each(_order_created),
    event_type_of(order_events.OrderAssigned()): _each(_order_assigned),
    event_type_of(order_events.ChargeDisputed()): _each(_charge_disputed),
    event_type_of(insurance_events.ClaimDenialContested()): _each(_claim_denial_contested),
    event_type_of(insurance_events.ClaimPaid()): _each(_claim_paid),
}
