"""Idempotent consumers: the inbox row and the effect commit together; failures go to a DLQ."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from opentelemetry import trace

from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, envelope_from_kafka
from libs.common.kafka import dlq_topic
from libs.common.telemetry import DLQ_EVENTS, EVENTS_CONSUMED, context_from, tracer

log = logging.getLogger(__name__)

Effect = Callable[[asyncpg.Connection, EventEnvelope], Awaitable[None]]

_RECORD_NEW = (
    "INSERT INTO inbox (consumer, event_id, event_type)"
    " SELECT $1, e.id, e.type FROM unnest($2::text[], $3::text[]) AS e(id, type)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


@dataclass(frozen=True)
class KafkaRecord:
    """One consumed record, as the consumer needs it."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True)
class _Parsed:
    index: int
    record: KafkaRecord
    event: EventEnvelope


class IdempotentConsumer:
    """Applies each event's effect exactly once, whatever Kafka redelivers.

    ``effects`` maps a CloudEvents type to the function that applies it inside the inbox
    transaction; other types are acknowledged and ignored. A batch of records (one poll) is
    applied in one transaction; if that fails, each record is applied on its own, retried
    ``max_attempts`` times, then sent to the dead-letter topic with the error, so one bad event
    neither blocks nor takes down the others.
    """

    def __init__(
        self,
        name: str,
        pool: asyncpg.Pool,
        dlq_producer: AIOKafkaProducer,
        effects: Mapping[str, Effect],
        max_attempts: int = 3,
        backoff_s: float = 0.2,
    ) -> None:
        self.name = name
        self._pool = pool
        self._dlq = dlq_producer
        self._effects = effects
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s

    async def handle_batch(self, records: Sequence[KafkaRecord]) -> list[str]:
        """Process records in order; returns one outcome per record
        (applied, duplicate, ignored, dead_lettered)."""
        outcomes: dict[int, str] = {}
        parsed: list[_Parsed] = []
        for index, record in enumerate(records):
            try:
                event = envelope_from_kafka(record.headers, record.value)
            except PermanentEventError as exc:
                outcomes[index] = await self._dead_letter(record, exc, attempts=1)
                continue
            if event.type in self._effects:
                parsed.append(_Parsed(index, record, event))
            else:
                outcomes[index] = "ignored"
        if len(parsed) == 1:
            outcomes[parsed[0].index] = await self._apply_alone(parsed[0])
        elif parsed:
            try:
                outcomes.update(await self._apply_together(parsed))
            except Exception as exc:  # noqa: BLE001 - the records are retried one by one
                log.warning("batch failed; applying one by one", extra={"fields": {"error": repr(exc)}})
                for p in parsed:
                    outcomes[p.index] = await self._apply_alone(p)
        for outcome in outcomes.values():
            EVENTS_CONSUMED.labels(self.name, outcome).inc()
        return [outcomes[i] for i in range(len(records))]

    async def _apply_together(self, batch: list[_Parsed]) -> dict[int, str]:
        outcomes: dict[int, str] = {}
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                _RECORD_NEW, self.name, [p.event.id for p in batch], [p.event.type for p in batch]
            )
            new = {r["event_id"] for r in rows}
            for p in batch:
                if p.event.id not in new:
                    outcomes[p.index] = "duplicate"
                    continue
                new.discard(p.event.id)  # the same event twice in one poll applies once
                with self._span(p):
                    await self._effects[p.event.type](conn, p.event)
                outcomes[p.index] = "applied"
        return outcomes

    async def _apply_alone(self, p: _Parsed) -> str:
        error: Exception | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                outcomes = await self._apply_together([p])
                return outcomes[p.index]
            except PermanentEventError as exc:
                return await self._dead_letter(p.record, exc, attempts=attempt)
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered
                error = exc
                log.warning(
                    "effect failed",
                    extra={"fields": {"event_id": p.event.id, "attempt": attempt, "error": repr(exc)}},
                )
                await asyncio.sleep(self._backoff_s * attempt)
        assert error is not None
        return await self._dead_letter(p.record, error, attempts=self._max_attempts)

    def _span(self, p: _Parsed) -> AbstractContextManager[trace.Span]:
        """A consumer span in the trace of the request that caused the event."""
        return tracer.start_as_current_span(
            f"consume {p.event.type}",
            context=context_from(p.event.traceparent),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": p.record.topic,
                "messaging.message.id": p.event.id,
            },
        )

    async def _dead_letter(self, record: KafkaRecord, error: Exception, attempts: int) -> str:
        headers = [(k, v) for k, v in record.headers if v is not None]
        headers += [
            ("dlq_error", f"{type(error).__name__}: {error}".encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        await self._dlq.send_and_wait(
            dlq_topic(self.name), value=record.value, key=record.key, headers=headers
        )
        DLQ_EVENTS.labels(self.name).inc()
        log.error("event dead-lettered", extra={"fields": {"topic": record.topic, "error": repr(error)}})
        return "dead_lettered"
