"""In-memory stand-ins for unit tests of use cases and event effects (never for integration tests).

``FakeUnitOfWork`` satisfies ``libs.common.uow.UnitOfWork``: a service's fake subclasses it and
lists its fake repositories in ``_stores``; what a unit of work changed in them is undone unless
it commits, as a database transaction would be. One instance plays the database across calls.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from libs.common.events import EventEnvelope
from libs.common.inbox import ConsumedRecord


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


class FakeInbox:
    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {}

    async def record_new(self, consumer: str, events: Sequence[EventEnvelope]) -> set[str]:
        seen = self.seen.setdefault(consumer, set())
        new = {e.id for e in events} - seen
        seen |= new
        return new


@dataclass(frozen=True)
class Published:
    topic: str
    event: EventEnvelope


class FakeUnitOfWork:
    def __init__(self, clock: FixedClock | None = None) -> None:
        self.clock = clock or FixedClock()
        self.inbox = FakeInbox()
        self.published: list[Published] = []
        self.commits = 0
        self._pending: list[Published] = []
        self._snapshot: list[dict[str, object]] = []
        self._open = False

    def _stores(self) -> list[object]:
        """The fake repositories whose changes a rollback undoes; subclasses add theirs."""
        return [self.inbox]

    async def add_event(self, topic: str, event: EventEnvelope) -> None:
        assert self._open, "add_event outside 'async with'"
        self._pending.append(Published(topic, event))

    async def commit(self) -> None:
        assert self._open, "commit outside 'async with'"
        self.published += self._pending
        self._pending = []
        self._snapshot = self._take_snapshot()
        self.commits += 1

    async def __aenter__(self) -> Self:
        assert not self._open, "unit of work entered twice"
        self._open = True
        self._pending = []
        self._snapshot = self._take_snapshot()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for store, state in zip(self._stores(), self._snapshot, strict=True):
            store.__dict__ = state
        self._pending = []
        self._open = False

    def _take_snapshot(self) -> list[dict[str, object]]:
        return [copy.deepcopy(store.__dict__) for store in self._stores()]


@dataclass
class FakeDeadLetters:
    """Remembers what was dead-lettered; ``failures`` sends fail first (an unreachable topic)."""

    failures: int = 0
    sent: list[tuple[ConsumedRecord, str, int]] = field(default_factory=list)

    async def send(self, record: ConsumedRecord, error: BaseException, attempts: int) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("dead-letter topic unreachable")
        self.sent.append((record, f"{type(error).__name__}: {error}", attempts))
