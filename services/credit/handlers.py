"""Event effects: each applies a run of consumed events inside the consumer's unit of work."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from jiazheng.orders.events.v1 import events_pb2 as order_events
from libs.common.events import EventEnvelope, event_type_of
from libs.common.inbox import Effect
from libs.common.telemetry import trace_id_of
from libs.common.uow import UnitOfWork
from services.credit import domain

log = logging.getLogger(__name__)


class LedgerRepository(Protocol):
    async def add_many(self, entries: Sequence[domain.LedgerEntry]) -> None: ...


class CreditUnitOfWork(UnitOfWork, Protocol):
    @property
    def ledger(self) -> LedgerRepository: ...


async def on_orders_created(uow: CreditUnitOfWork, events: Sequence[EventEnvelope]) -> None:
    entries = [entry for event in events if (entry := _booking(event)) is not None]
    await uow.ledger.add_many(entries)
    if log.isEnabledFor(logging.DEBUG):
        for entry in entries:
            log.debug(
                "ledger entry recorded",
                extra={
                    "fields": {
                        "event_id": entry.event_id,
                        "worker_id": entry.worker_id,
                        "trace_id": entry.trace_id,
                    }
                },
            )


def _booking(event: EventEnvelope) -> domain.LedgerEntry | None:
    created = event.parse(order_events.OrderCreated)
    if not created.worker_id:
        return None
    return domain.order_booked(
        worker_id=created.worker_id,
        order_id=created.order_id,
        event_id=event.id,
        event_type=event.type,
        trace_id=trace_id_of(event.traceparent),
        occurred_at=event.time,
    )


EFFECTS: Mapping[str, Effect[CreditUnitOfWork]] = {
    event_type_of(order_events.OrderCreated()): on_orders_created,
}
