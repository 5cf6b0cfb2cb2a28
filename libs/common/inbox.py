"""Idempotent consumers: a poll's inbox rows and effects commit together, exactly once in effect.

What decides between waiting and dead-lettering is whether the dependencies answer, not the
exception's class: while the database does not answer, a failure is an outage and the work
is retried, without counting an attempt, until it does; an event that fails while everything
answers is retried a bounded number of times and then goes to the dead-letter topic.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from itertools import groupby, islice
from typing import Generic, Protocol, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from opentelemetry import context as otel_context
from opentelemetry import trace

from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, envelope_from_kafka
from libs.common.kafka import dlq_topic
from libs.common.outages import backoff
from libs.common.telemetry import (
    DLQ_EVENTS,
    EVENTS_CONSUMED,
    context_from,
    span_context_of,
    span_in_trace_of,
    trace_id_of,
    tracer,
)
from libs.common.uow import UnitOfWork

log = logging.getLogger(__name__)

U = TypeVar("U", bound=UnitOfWork)
# Applies consecutive new events of one type inside the unit of work, in their order.
Effect = Callable[[U, Sequence[EventEnvelope]], Awaitable[None]]
Probe = Callable[[], Awaitable[bool]]
# An OpenTelemetry span keeps at most this many links by default.
MAX_SPAN_LINKS = 128

_RECORD_NEW = (
    "INSERT INTO inbox (consumer, event_id, event_type)"
    " SELECT $1, e.id, e.type FROM unnest($2::text[], $3::text[]) AS e(id, type)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


class PgInbox:
    """``libs.common.uow.Inbox`` on the unit of work's connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def record_new(self, consumer: str, events: Sequence[EventEnvelope]) -> set[str]:
        rows = await self._conn.fetch(_RECORD_NEW, consumer, [e.id for e in events], [e.type for e in events])
        return {r["event_id"] for r in rows}


class SettledEffects(Mapping[str, Effect[U]]):
    """Effects that leave part of their work to be done once per poll: ``settle`` runs after all the
    effects of a poll's new events, in the same unit of work, before it commits (credit's effects
    note the workers whose record they scored; its settle step rescores each of them once, however
    many runs of events named them)."""

    @abc.abstractmethod
    async def settle(self, uow: U) -> None: ...


class ConsumedRecord(Protocol):
    """What the consumer reads of a Kafka record (aiokafka's ConsumerRecord is one)."""

    @property
    def topic(self) -> str: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True)
class KafkaRecord:
    """A record built by hand (tests, tools): a ``ConsumedRecord``."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class DeadLetters(Protocol):
    async def send(self, record: ConsumedRecord, error: BaseException, attempts: int) -> None: ...


class KafkaDeadLetters:
    """The consumer's dead-letter topic: the original record plus why and after how many attempts."""

    def __init__(self, producer: AIOKafkaProducer, consumer: str, timeout_s: float) -> None:
        self._producer = producer
        self._consumer = consumer
        self._timeout_s = timeout_s

    async def send(self, record: ConsumedRecord, error: BaseException, attempts: int) -> None:
        headers = [(k, v) for k, v in record.headers if v is not None]
        headers += [
            ("dlq_error", f"{type(error).__name__}: {error}".encode()),
            ("dlq_consumer", self._consumer.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        send = self._producer.send_and_wait(
            dlq_topic(self._consumer), value=record.value, key=record.key, headers=headers
        )
        await asyncio.wait_for(send, self._timeout_s)


@dataclass(frozen=True)
class _Parsed:
    index: int
    record: ConsumedRecord
    event: EventEnvelope


class IdempotentConsumer(Generic[U]):
    """Applies each event's effect exactly once, whatever Kafka redelivers.

    ``effects`` maps a CloudEvents type to the function that applies it; other types are
    acknowledged and ignored. A batch of records (one poll) is applied in one unit of work:
    the inbox rows, then each run of consecutive new events of one type through its effect, then,
    if ``effects`` are ``SettledEffects``, their settle step (once, if any event was new). If
    the batch fails while the database answers, each record is applied on its own, up to
    ``max_attempts`` times, then dead-lettered, so one bad event neither blocks nor takes down
    the others.
    """

    def __init__(
        self,
        name: str,
        uow_factory: Callable[[], U],
        effects: Mapping[str, Effect[U]],
        dead_letters: DeadLetters,
        healthy: Probe,
        max_attempts: int = 3,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.name = name
        self._uow = uow_factory
        self._effects = effects
        self._dead_letters = dead_letters
        self._healthy = healthy
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s

    async def handle_batch(self, records: Sequence[ConsumedRecord]) -> list[str]:
        """Process records in order; one outcome per record (applied, duplicate, ignored, dead_lettered).

        Returns only when every record is settled; it may wait out an outage of the database or
        of the dead-letter topic for as long as it lasts.
        """
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
        if parsed:
            outcomes.update(await self._apply(parsed))
        for outcome, count in Counter(outcomes.values()).items():
            EVENTS_CONSUMED.labels(self.name, outcome).inc(count)
        return [outcomes[i] for i in range(len(records))]

    async def _apply(self, parsed: list[_Parsed]) -> dict[int, str]:
        if len(parsed) > 1:
            try:
                return await self._while_available(parsed)
            except Exception as exc:  # noqa: BLE001 - the records are retried one by one
                log.warning("batch failed; applying one by one", extra={"fields": {"error": repr(exc)}})
        return {p.index: await self._apply_alone(p) for p in parsed}

    async def _apply_alone(self, p: _Parsed) -> str:
        error: Exception | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                return (await self._while_available([p]))[p.index]
            except PermanentEventError as exc:
                return await self._dead_letter(p.record, exc, attempts=attempt)
            except Exception as exc:  # noqa: BLE001 - failed on a healthy system: counts as an attempt
                error = exc
                log.warning(
                    "effect failed",
                    extra={"fields": {"event_id": p.event.id, "attempt": attempt, "error": repr(exc)}},
                )
                await asyncio.sleep(self._backoff_s * attempt)
        assert error is not None
        return await self._dead_letter(p.record, error, attempts=self._max_attempts)

    async def _while_available(self, batch: list[_Parsed]) -> dict[int, str]:
        """Apply ``batch``; while the database does not answer, wait and try again, uncounted."""
        delays = backoff(self._backoff_s, self._max_backoff_s)
        while True:
            try:
                return await self._apply_together(batch)
            except Exception as exc:
                if await self._healthy():
                    raise
                delay = next(delays)
                log.warning(
                    "database unavailable; batch waits",
                    extra={"fields": {"consumer": self.name, "retry_in_s": delay, "error": repr(exc)}},
                )
                await asyncio.sleep(delay)

    async def _apply_together(self, batch: list[_Parsed]) -> dict[int, str]:
        outcomes: dict[int, str] = {}
        with self._span(batch):
            async with self._uow() as uow:
                new = await uow.inbox.record_new(self.name, [p.event for p in batch])
                fresh: list[_Parsed] = []
                for p in batch:
                    if p.event.id in new:
                        new.discard(p.event.id)  # the same event twice in one poll applies once
                        fresh.append(p)
                        outcomes[p.index] = "applied"
                    else:
                        outcomes[p.index] = "duplicate"
                await self._apply_fresh(uow, [p.event for p in fresh], alone=len(batch) == 1)
                await uow.commit()
        return outcomes

    async def _apply_fresh(self, uow: U, fresh: list[EventEnvelope], alone: bool) -> None:
        """Each run of consecutive events of one type through its effect, then the settle step."""
        for event_type, run in groupby(fresh, key=lambda e: e.type):
            events = list(run)
            with _within_trace(events, alone, f"apply {event_type}"):
                await self._effects[event_type](uow, events)
        if fresh and isinstance(self._effects, SettledEffects):
            with _within_trace(fresh, alone, f"settle {self.name}"):
                await self._effects.settle(uow)

    def _span(self, batch: list[_Parsed]) -> AbstractContextManager[trace.Span]:
        """One span per unit of work: a lone event's continues its producer's trace; a batch's
        starts a trace of its own, linked to the events' traces."""
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.destination.name": batch[0].record.topic,
            "messaging.batch.message_count": len(batch),
        }
        if len(batch) == 1:
            attributes["messaging.message.id"] = batch[0].event.id
            parent = context_from(batch[0].event.traceparent)
            links: list[trace.Link] = []
        else:
            parent = otel_context.Context()
            links = _links(batch)
        return tracer.start_as_current_span(
            f"consume {self.name}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        )

    async def _dead_letter(self, record: ConsumedRecord, error: Exception, attempts: int) -> str:
        delays = backoff(self._backoff_s, self._max_backoff_s)
        while True:
            try:
                await self._dead_letters.send(record, error, attempts)
                break
            except Exception as exc:  # noqa: BLE001 - an unreachable DLQ is an outage: wait it out
                delay = next(delays)
                log.warning(
                    "dead-letter topic unavailable; retrying",
                    extra={"fields": {"consumer": self.name, "retry_in_s": delay, "error": repr(exc)}},
                )
                await asyncio.sleep(delay)
        DLQ_EVENTS.labels(self.name).inc()
        log.error("event dead-lettered", extra={"fields": {"topic": record.topic, "error": repr(error)}})
        return "dead_lettered"


def _within_trace(run: list[EventEnvelope], alone: bool, name: str) -> AbstractContextManager[object]:
    """A run of a batch's events that all belong to one trace is applied in a span of that trace,
    so that what its effect publishes (the outbox's traceparent) and logs carries on the call that
    caused it, one hop after another; a run of several traces stays in the batch's span. A lone
    event's batch span already continues its trace. The settle step is a run of all the new events."""
    trace_ids = {trace_id_of(event.traceparent) for event in run}
    if alone or len(trace_ids) != 1:
        return contextlib.nullcontext()
    return span_in_trace_of(run[0].traceparent, name, **{"messaging.batch.message_count": len(run)})


def _links(batch: list[_Parsed]) -> list[trace.Link]:
    contexts = (span_context_of(p.event.traceparent) for p in batch)
    return [trace.Link(c) for c in islice((c for c in contexts if c is not None), MAX_SPAN_LINKS)]
