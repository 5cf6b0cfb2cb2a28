"""Event effects: credit's, insurance's and complaints' events set a card-status input, then the colour
is refreshed.

Each effect remembers what each event of its run says (credit level, suspension, last day of
insurance cover), then re-evaluates the colours of the run's workers at once, each worker once, in
the consumer's unit of work, so the inputs, the CardStatusChanged events and the card-status
timers commit together with the inbox rows.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date

from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, event_type_of
from libs.common.inbox import Effect
from services.workers import service_layer
from services.workers.service_layer import WorkersUnitOfWork
from services.workers.service_layer.workers import CardStatusRepository

log = logging.getLogger(__name__)

# Sets one input of a worker's colour; False when the worker is not known here.
SetInput = Callable[[CardStatusRepository], Awaitable[bool]]
# What an event says: whose input it sets, and how.
Reading = tuple[uuid.UUID, SetInput]


def _card_status_effect(read: Callable[[EventEnvelope], Reading]) -> Effect[WorkersUnitOfWork]:
    async def apply(uow: WorkersUnitOfWork, events: Sequence[EventEnvelope]) -> None:
        traces: dict[uuid.UUID, str | None] = {}  # each worker's colour in the trace of its last event
        for event in events:
            worker_id, set_input = read(event)
            if await set_input(uow.status):
                traces[worker_id] = event.traceparent
            else:  # e.g. a worker of another environment sharing the broker
                fields = {"event_id": event.id, "event_type": event.type, "worker_id": str(worker_id)}
                log.info("card status input for an unknown worker skipped", extra={"fields": fields})
        if traces:
            await service_layer.refresh_statuses(uow, traces)

    return apply


def _credit_level(event: EventEnvelope) -> Reading:
    changed = event.parse(credit_events.CreditLevelChanged)
    if changed.level == credit_events.CREDIT_LEVEL_UNSPECIFIED:
        raise PermanentEventError(f"{event.type} {event.id}: no credit level")
    worker = _worker_id(event, changed.worker_id)
    level = credit_events.CreditLevel.Name(changed.level).removeprefix("CREDIT_LEVEL_")
    return worker, lambda status: status.set_credit_level(worker, level)


def _suspension(event: EventEnvelope) -> Reading:
    changed = event.parse(credit_events.WorkerSuspensionChanged)
    worker = _worker_id(event, changed.worker_id)
    return worker, lambda status: status.set_suspended(worker, changed.suspended)


def _suspension_requested(event: EventEnvelope) -> Reading:
    """A substantiated severe complaint: the worker is suspended pending review (RED); credit's
    WorkerSuspensionChanged ends it after the review."""
    requested = event.parse(complaint_events.WorkerSuspensionRequested)
    worker = _worker_id(event, requested.worker_id)
    return worker, lambda status: status.set_suspended(worker, True)


def _coverage(event: EventEnvelope) -> Reading:
    changed = event.parse(insurance_events.WorkerCoverageChanged)
    worker = _worker_id(event, changed.worker_id)
    until = _last_day_of_cover(event, changed.valid_until) if changed.covered else None
    return worker, lambda status: status.set_insured_until(worker, until)


def _worker_id(event: EventEnvelope, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise PermanentEventError(f"{event.type} {event.id}: worker_id {value!r} is not a UUID") from exc


def _last_day_of_cover(event: EventEnvelope, value: str) -> date:
    """``value`` exactly as the contract writes it, YYYY-MM-DD (not the other ISO 8601 forms)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or day.isoformat() != value:
        raise PermanentEventError(f"{event.type} {event.id}: valid_until {value!r} is not YYYY-MM-DD")
    return day


EFFECTS: Mapping[str, Effect[WorkersUnitOfWork]] = {
    event_type_of(credit_events.CreditLevelChanged()): _card_status_effect(_credit_level),
    event_type_of(credit_events.WorkerSuspensionChanged()): _card_status_effect(_suspension),
    event_type_of(insurance_events.WorkerCoverageChanged()): _card_status_effect(_coverage),
    event_type_of(complaint_events.WorkerSuspensionRequested()): _card_status_effect(_suspension_requested),
}
