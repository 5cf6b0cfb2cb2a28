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
from typing import TypeVar

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

V = TypeVar("V")
# Sets one input of the workers' colours (each worker's value); answers the workers known here.
SetInputs = Callable[[CardStatusRepository, dict[uuid.UUID, V]], Awaitable[set[uuid.UUID]]]


def _card_status_effect(
    read: Callable[[EventEnvelope], tuple[uuid.UUID, V]], set_inputs: SetInputs[V]
) -> Effect[WorkersUnitOfWork]:
    """What each event of a run says of one input (its worker's last event wins), set for all of
    them at once, then the colours of the known workers refreshed."""

    async def apply(uow: WorkersUnitOfWork, events: Sequence[EventEnvelope]) -> None:
        values: dict[uuid.UUID, V] = {}
        last: dict[uuid.UUID, EventEnvelope] = {}
        for event in events:
            worker_id, values[worker_id] = read(event)
            last[worker_id] = event
        known = await set_inputs(uow.status, values)
        for worker_id in values.keys() - known:  # e.g. a worker of another environment sharing the broker
            event = last[worker_id]
            fields = {"event_id": event.id, "event_type": event.type, "worker_id": str(worker_id)}
            log.info("card status input for an unknown worker skipped", extra={"fields": fields})
        if known:
            # each worker's colour in the trace of its last event
            await service_layer.refresh_statuses(
                uow, {w: e.traceparent for w, e in last.items() if w in known}
            )

    return apply


def _credit_level(event: EventEnvelope) -> tuple[uuid.UUID, str | None]:
    changed = event.parse(credit_events.CreditLevelChanged)
    if changed.level == credit_events.CREDIT_LEVEL_UNSPECIFIED:
        raise PermanentEventError(f"{event.type} {event.id}: no credit level")
    level = credit_events.CreditLevel.Name(changed.level).removeprefix("CREDIT_LEVEL_")
    return _worker_id(event, changed.worker_id), level


def _suspension(event: EventEnvelope) -> tuple[uuid.UUID, bool]:
    changed = event.parse(credit_events.WorkerSuspensionChanged)
    return _worker_id(event, changed.worker_id), changed.suspended


def _suspension_requested(event: EventEnvelope) -> tuple[uuid.UUID, bool]:
    """A substantiated severe complaint: the worker is suspended pending review (RED); credit's
    WorkerSuspensionChanged ends it after the review."""
    requested = event.parse(complaint_events.WorkerSuspensionRequested)
    return _worker_id(event, requested.worker_id), True


def _coverage(event: EventEnvelope) -> tuple[uuid.UUID, date | None]:
    changed = event.parse(insurance_events.WorkerCoverageChanged)
    until = _last_day_of_cover(event, changed.valid_until) if changed.covered else None
    return _worker_id(event, changed.worker_id), until


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
    event_type_of(credit_events.CreditLevelChanged()): _card_status_effect(
        _credit_level, lambda status, levels: status.set_credit_levels(levels)
    ),
    event_type_of(credit_events.WorkerSuspensionChanged()): _card_status_effect(
        _suspension, lambda status, suspended: status.set_suspensions(suspended)
    ),
    event_type_of(insurance_events.WorkerCoverageChanged()): _card_status_effect(
        _coverage, lambda status, until: status.set_insured_until(until)
    ),
    event_type_of(complaint_events.WorkerSuspensionRequested()): _card_status_effect(
        _suspension_requested, lambda status, suspended: status.set_suspensions(suspended)
    ),
}
