"""Event effects: insurance's copy of orders from the orders service's events (an accepted order's
cover is looked for and published; check-in, check-out and cancellation keep the copy current),
and the automatic professional-liability claim for a complaint's compensation (complaints'
CaseResolved). Applied exactly once in effect through libs/common's inbox; an event that cannot
be parsed or lacks its ids raises PermanentEventError (dead-lettered)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

from google.protobuf.message import Message

from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.complaints.v1 import complaints_pb2
from jiazheng.orders.events.v1 import events_pb2 as order_events
from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, event_type_of
from libs.common.inbox import Effect
from services.insurance.domain.claims import CompensationAward
from services.insurance.domain.orders import Order
from services.insurance.domain.vocabulary import ServiceType
from services.insurance.service_layer import claims, coverage
from services.insurance.service_layer.claim_ports import ClaimRules, InsuranceUnitOfWork

SUBSTANTIATED = (
    complaints_pb2.OUTCOME_RESULT_SUBSTANTIATED,
    complaints_pb2.OUTCOME_RESULT_PARTLY_SUBSTANTIATED,
)
Apply = Callable[[InsuranceUnitOfWork, EventEnvelope], Awaitable[None]]


def _time(message: Message, field: str, event: EventEnvelope) -> datetime:
    """A timestamp field of the event, or the event's own time when it is unset."""
    if not message.HasField(field):
        return event.time
    value: datetime = getattr(message, field).ToDatetime(tzinfo=UTC)
    return value


def _require(event: EventEnvelope, **ids: str) -> None:
    missing = [name for name, value in ids.items() if not value]
    if missing:
        raise PermanentEventError(f"{event.type} {event.id}: no {', '.join(missing)}")


async def _order_assigned(uow: InsuranceUnitOfWork, event: EventEnvelope) -> None:
    a = event.parse(order_events.OrderAssigned)
    _require(event, order_id=a.order_id, worker_id=a.worker_id)
    try:
        service_type = ServiceType(a.service_type)
    except ValueError as exc:
        raise PermanentEventError(f"{event.type} {event.id}: service type {a.service_type}") from exc
    start = _time(a, "scheduled_start_time", event)
    order = Order(
        order_id=a.order_id,
        platform_id=a.platform_id,
        company_id=a.company_id,
        worker_id=a.worker_id,
        service_type=service_type,
        district_code=a.district_code,
        scheduled_start=start,
        scheduled_end=max(start, _time(a, "scheduled_end_time", event)),
    )
    await coverage.accept_order(uow, order)


async def _worker_replaced(uow: InsuranceUnitOfWork, event: EventEnvelope) -> None:
    r = event.parse(order_events.WorkerReplaced)
    _require(event, order_id=r.order_id)
    await coverage.worker_left(uow, r.order_id, r.worker_id, _time(r, "time", event))


async def _checked_in(uow: InsuranceUnitOfWork, event: EventEnvelope) -> None:
    c = event.parse(order_events.OrderCheckedIn)
    _require(event, order_id=c.order_id)
    await coverage.update_order(uow, c.order_id, check_in=_time(c, "check_in_time", event))


async def _completed(uow: InsuranceUnitOfWork, event: EventEnvelope) -> None:
    c = event.parse(order_events.OrderCompleted)
    _require(event, order_id=c.order_id)
    check_in, check_out = _time(c, "check_in_time", event), _time(c, "check_out_time", event)
    await coverage.update_order(uow, c.order_id, check_in=check_in, check_out=max(check_in, check_out))


async def _cancelled(uow: InsuranceUnitOfWork, event: EventEnvelope) -> None:
    c = event.parse(order_events.OrderCancelled)
    _require(event, order_id=c.order_id)
    await coverage.update_order(uow, c.order_id, cancelled=True)


def _award(event: EventEnvelope) -> CompensationAward | None:
    """The compensation a resolved case awards against an order, if it is substantiated."""
    r = event.parse(complaint_events.CaseResolved)
    _require(event, case_id=r.case_id)
    o = r.outcome
    if o.result not in SUBSTANTIATED or not r.order_id or o.compensation_fen <= 0:
        return None
    at_fault = o.at_fault == complaints_pb2.PARTY_KIND_WORKER
    return CompensationAward(
        r.case_id,
        r.order_id,
        r.worker_id,
        r.company_id,
        o.compensation_fen,
        at_fault,
        _time(r, "file_time", event),
    )


def _each(apply: Apply) -> Effect[InsuranceUnitOfWork]:
    async def effect(uow: InsuranceUnitOfWork, batch: Sequence[EventEnvelope]) -> None:
        for event in batch:
            await apply(uow, event)

    return effect


def effects(rules: ClaimRules) -> Mapping[str, Effect[InsuranceUnitOfWork]]:
    """The effects of the events insurance consumes, by event type."""

    async def case_resolved(uow: InsuranceUnitOfWork, event: EventEnvelope) -> None:
        award = _award(event)
        if award is not None:
            await claims.file_from_award(uow, rules, award)

    return {
        event_type_of(order_events.OrderAssigned()): _each(_order_assigned),
        event_type_of(order_events.WorkerReplaced()): _each(_worker_replaced),
        event_type_of(order_events.OrderCheckedIn()): _each(_checked_in),
        event_type_of(order_events.OrderCompleted()): _each(_completed),
        event_type_of(order_events.OrderCancelled()): _each(_cancelled),
        event_type_of(complaint_events.CaseResolved()): _each(case_resolved),
    }
