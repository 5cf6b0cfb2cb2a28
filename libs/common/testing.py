"""In-memory stand-ins for unit tests of use cases and event effects (never for integration tests).

``FakeUnitOfWork`` satisfies ``libs.common.uow.UnitOfWork``: a service's fake subclasses it and
lists its fake repositories in ``_stores``; what a unit of work changed in them is undone unless
it commits, as a database transaction would be. One instance plays the database across calls.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from libs.common.events import EventEnvelope
from libs.common.inbox import ConsumedRecord
from libs.common.timers import DueTimer
from libs.common.uow import Timer


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


class FakeTimers:
    """``libs.common.timers.TimerQueue`` in memory, on the unit of work's clock.

    ``pending`` holds the parked timers too, as the table does; ``fired`` is in firing order.
    """

    def __init__(self, clock: FixedClock) -> None:
        self._clock = clock
        self.pending: dict[tuple[str, str], DueTimer] = {}
        self.parked: set[uuid.UUID] = set()
        self.last_errors: dict[uuid.UUID, str] = {}
        self.fired: list[DueTimer] = []

    async def schedule(self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]) -> None:
        old = self.pending.get((kind, key))
        timer_id = old.timer_id if old else uuid.uuid4()
        self.pending[kind, key] = DueTimer(timer_id, kind, key, due_at, dict(payload), attempts=0)
        self.parked.discard(timer_id)
        self.last_errors.pop(timer_id, None)

    async def schedule_if_absent(
        self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]
    ) -> bool:
        """As ``libs.common.timers.schedule_if_absent``: a pending timer (parked too) is kept."""
        if (kind, key) in self.pending:
            return False
        await self.schedule(kind, key, due_at, payload)
        return True

    async def cancel(self, kind: str, key: str) -> bool:
        timer = self.pending.pop((kind, key), None)
        if timer is None:
            return False
        self.parked.discard(timer.timer_id)
        return True

    async def schedule_many(self, kind: str, timers: Sequence[Timer]) -> None:
        for key, due_at, payload in timers:
            await self.schedule(kind, key, due_at, payload)

    async def schedule_many_if_absent(self, kind: str, timers: Sequence[Timer]) -> None:
        for key, due_at, payload in timers:
            await self.schedule_if_absent(kind, key, due_at, payload)

    async def cancel_many(self, kind: str, keys: Sequence[str]) -> None:
        for key in keys:
            await self.cancel(kind, key)

    async def claim_due(self, limit: int) -> list[DueTimer]:
        now = self._clock.now()
        due = [t for t in self.pending.values() if t.due_at <= now and t.timer_id not in self.parked]
        return sorted(due, key=lambda t: t.due_at)[:limit]

    async def mark_fired(self, timers: Sequence[DueTimer]) -> None:
        for claimed in timers:
            pending = self.pending.get((claimed.kind, claimed.key))
            if pending is not None and (pending.due_at, pending.payload) == (claimed.due_at, claimed.payload):
                self.fired.append(self.pending.pop((claimed.kind, claimed.key)))

    async def record_failure(self, timer: DueTimer, error: str, retry_in_s: float, park: bool) -> None:
        if self.pending.get((timer.kind, timer.key)) != timer:
            return  # rescheduled, cancelled or fired since it was claimed
        due_at = self._clock.now() + timedelta(seconds=retry_in_s)
        self.pending[timer.kind, timer.key] = dataclasses.replace(
            timer, attempts=timer.attempts + 1, due_at=due_at
        )
        self.last_errors[timer.timer_id] = error
        if park:
            self.parked.add(timer.timer_id)

    async def seconds_until_due(self) -> float | None:
        waiting = [t.due_at for t in self.pending.values() if t.timer_id not in self.parked]
        return (min(waiting) - self._clock.now()).total_seconds() if waiting else None


@dataclass(frozen=True)
class Published:
    topic: str
    event: EventEnvelope


class FakeUnitOfWork:
    def __init__(self, clock: FixedClock | None = None) -> None:
        self.clock = clock or FixedClock()
        self.inbox = FakeInbox()
        self.timers = FakeTimers(self.clock)
        self.published: list[Published] = []
        self.commits = 0
        self._pending: list[Published] = []
        self._snapshot: list[dict[str, object]] = []
        self._open = False
        self.reads_only = False

    def _stores(self) -> list[object]:
        """The fake repositories whose changes a rollback undoes; subclasses add theirs."""
        return [self.inbox, self.timers]

    async def add_event(self, topic: str, event: EventEnvelope) -> None:
        assert self._open, "add_event outside 'async with'"
        assert not self.reads_only, "add_event in a unit of work that only reads"
        self._pending.append(Published(topic, event))

    async def add_events(self, topic: str, events: Sequence[EventEnvelope]) -> None:
        for event in events:
            await self.add_event(topic, event)

    def reading(self) -> Self:
        """For the next ``async with`` only, as a new PgUnitOfWork is for each use case."""
        self.reads_only = True
        return self

    async def commit(self) -> None:
        assert self._open, "commit outside 'async with'"
        assert not self.reads_only, "commit in a unit of work that only reads"
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
        self.reads_only = False

    def _take_snapshot(self) -> list[dict[str, object]]:
        shared = {id(self.clock): self.clock}  # time is not rolled back
        return [copy.deepcopy(store.__dict__, dict(shared)) for store in self._stores()]


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
