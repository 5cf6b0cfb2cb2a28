"""Event handlers: each applies one event's effect inside the consumer's inbox transaction."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC

import asyncpg

from jiazheng.orders.events.v1 import events_pb2 as order_events
from libs.common.events import EventEnvelope, event_type_of
from libs.common.inbox import Effect
from libs.common.telemetry import trace_id_of
from services.credit import domain
from services.credit.store import LedgerRepository

log = logging.getLogger(__name__)


async def on_order_created(conn: asyncpg.Connection, event: EventEnvelope) -> None:
    created = event.parse(order_events.OrderCreated)
    if not created.worker_id:
        return
    entry = domain.order_booked(
        worker_id=created.worker_id,
        order_id=created.order_id,
        event_id=event.id,
        event_type=event.type,
        trace_id=trace_id_of(event.traceparent),
        occurred_at=created.create_time.ToDatetime(tzinfo=UTC),
    )
    await LedgerRepository(conn).add(entry)
    log.debug("ledger entry recorded", extra={"fields": {"event_id": event.id, "worker_id": entry.worker_id}})


EFFECTS: Mapping[str, Effect] = {
    event_type_of(order_events.OrderCreated()): on_order_created,
}
