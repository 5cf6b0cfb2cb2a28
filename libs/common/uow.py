"""The unit-of-work seam: what a use case or an event effect may touch inside one transaction.

A unit of work exposes the service's repositories, the outbox (``add_event``), the inbox of
consumed event ids, the durable timers and the clock. Nothing it changes is kept unless ``commit`` is called.
Services extend ``UnitOfWork`` with their repositories (as read-only properties, so that an
implementation may hold a more specific repository type). ``libs.common.db.PgUnitOfWork``
implements it on asyncpg; ``libs.common.testing.FakeUnitOfWork`` in memory, for unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from libs.common.events import EventEnvelope


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetClock:
    """The wall clock shifted by ``offset``: drills and tests run a process "tomorrow" to see what
    time alone changes (a validity lapsing, a deadline passing) without waiting for it."""

    def __init__(self, offset: timedelta) -> None:
        self._offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


class Inbox(Protocol):
    """Which events a consumer has already applied (an idempotent consumer's memory)."""

    async def record_new(self, consumer: str, events: Sequence[EventEnvelope]) -> set[str]:
        """Remember ``events`` for ``consumer``; the ids of those it had not seen before."""
        ...


Timer = tuple[str, datetime, Mapping[str, Any]]  # key, due_at, payload


class Timers(Protocol):
    """Durable timers (定时器): a deadline set with the state change it belongs to, fired by
    ``libs.common.timers.TimerWorker`` through the handler registered for its kind."""

    async def schedule(self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]) -> None:
        """Fire ``kind`` for ``key`` at ``due_at`` if this unit of work commits; replaces the pending one."""
        ...

    async def cancel(self, kind: str, key: str) -> bool:
        """Drop the pending timer of ``kind`` for ``key`` if this unit of work commits; whether there
        was one."""
        ...

    async def schedule_many(self, kind: str, timers: Sequence[Timer]) -> None:
        """``schedule`` of each (key, due_at, payload), in one round trip."""
        ...

    async def cancel_many(self, kind: str, keys: Sequence[str]) -> None:
        """``cancel`` of each key, in one round trip."""
        ...


class UnitOfWork(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def inbox(self) -> Inbox: ...

    @property
    def timers(self) -> Timers: ...

    async def add_event(self, topic: str, event: EventEnvelope) -> None:
        """Publish ``event`` on ``topic`` if and when this unit of work commits."""
        ...

    async def add_events(self, topic: str, events: Sequence[EventEnvelope]) -> None:
        """``add_event`` of each, in order, in one round trip."""
        ...

    async def commit(self) -> None: ...

    def reading(self) -> Self:
        """This unit of work for a use case that only reads: it neither writes nor commits."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
