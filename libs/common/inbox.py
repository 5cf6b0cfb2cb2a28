"""Idempotent consumers: the inbox row and the effect commit together; failures go to a DLQ."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import asyncpg
from aiokafka import AIOKafkaProducer
from opentelemetry import trace

from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, envelope_from_kafka
from libs.common.kafka import dlq_topic
from libs.common.telemetry import DLQ_EVENTS, EVENTS_CONSUMED, context_from, tracer

log = logging.getLogger(__name__)

Effect = Callable[[asyncpg.Connection, EventEnvelope], Awaitable[None]]


class IdempotentConsumer:
    """Applies each event's effect exactly once, whatever Kafka redelivers.

    ``effects`` maps a CloudEvents type to the function that applies it inside the inbox
    transaction; other types are acknowledged and ignored. A failing effect is retried
    ``max_attempts`` times, then the record goes to the dead-letter topic with the error.
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

    async def handle_record(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | Mapping[str, bytes],
    ) -> str:
        """Process one Kafka record; returns the outcome (applied, duplicate, ignored, dead_lettered)."""
        try:
            event = envelope_from_kafka(headers, value)
        except PermanentEventError as exc:
            return await self._dead_letter(topic, key, value, headers, exc, attempts=1)
        with tracer.start_as_current_span(
            f"consume {event.type}",
            context=context_from(event.traceparent),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.message.id": event.id,
            },
        ):
            outcome = await self._handle(topic, key, value, headers, event)
        EVENTS_CONSUMED.labels(self.name, outcome).inc()
        return outcome

    async def _handle(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | Mapping[str, bytes],
        event: EventEnvelope,
    ) -> str:
        effect = self._effects.get(event.type)
        if effect is None:
            return "ignored"
        error: Exception | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await self._apply_once(effect, event)
            except PermanentEventError as exc:
                return await self._dead_letter(topic, key, value, headers, exc, attempts=attempt)
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered
                error = exc
                log.warning(
                    "effect failed",
                    extra={"fields": {"event_id": event.id, "attempt": attempt, "error": repr(exc)}},
                )
                await asyncio.sleep(self._backoff_s * attempt)
        assert error is not None
        return await self._dead_letter(topic, key, value, headers, error, attempts=self._max_attempts)

    async def _apply_once(self, effect: Effect, event: EventEnvelope) -> str:
        async with self._pool.acquire() as conn, conn.transaction():
            first_time = await conn.fetchval(
                "INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING true",
                self.name,
                event.id,
                event.type,
            )
            if not first_time:
                return "duplicate"
            await effect(conn, event)
        return "applied"

    async def _dead_letter(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | Mapping[str, bytes],
        error: Exception,
        attempts: int,
    ) -> str:
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        items += [
            ("dlq_error", f"{type(error).__name__}: {error}".encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_original_topic", topic.encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        await self._dlq.send_and_wait(dlq_topic(self.name), value=value, key=key, headers=items)
        DLQ_EVENTS.labels(self.name).inc()
        log.error("event dead-lettered", extra={"fields": {"topic": topic, "error": repr(error)}})
        return "dead_lettered"
