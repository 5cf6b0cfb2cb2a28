"""The unit-of-work seam: what a use case or an event effect may touch inside one transaction.

A unit of work exposes the service's repositories, the outbox (``add_event``), the inbox of
consumed event ids and the clock. Nothing it changes is kept unless ``commit`` is called.
Services extend ``UnitOfWork`` with their repositories (as read-only properties, so that an
implementation may hold a more specific repository type). ``libs.common.db.PgUnitOfWork``
implements it on asyncpg; ``libs.common.testing.FakeUnitOfWork`` in memory, for unit tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self

from libs.common.events import EventEnvelope


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Inbox(Protocol):
    """Which events a consumer has already applied (an idempotent consumer's memory)."""

    async def record_new(self, consumer: str, events: Sequence[EventEnvelope]) -> set[str]:
        """Remember ``events`` for ``consumer``; the ids of those it had not seen before."""
        ...


class UnitOfWork(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def inbox(self) -> Inbox: ...

    async def add_event(self, topic: str, event: EventEnvelope) -> None:
        """Publish ``event`` on ``topic`` if and when this unit of work commits."""
        ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
