"""Durable timers (定时器): deadlines kept in PostgreSQL and fired once in effect.

A use case schedules a timer in its unit of work (``uow.timers.schedule``), so that a state
change and its deadline commit together. ``TimerWorker`` claims due timers with
``FOR UPDATE SKIP LOCKED``, calls the handler registered for each timer's kind with that same
unit of work, and marks the timers fired in it: the consequence, its outbox events and the fired
mark commit together, across restarts and replicas. A timer that fell due while no worker ran is
simply found due when one starts. Kinds are named ``<service>.<what>``, e.g.
``workers.health_check_expiry``; the key names the aggregate the timer concerns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from prometheus_client import Counter, Histogram

from libs.common.inbox import Probe
from libs.common.outages import backoff, is_outage
from libs.common.outbox import Notifications
from libs.common.settings import ServiceSettings
from libs.common.uow import Clock, Timer, Timers, UnitOfWork

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "jiazheng_timers"
# While the database is away the worker retries, backing off up to this (as the relay does).
_FIRST_RETRY_S = 0.2
_LAST_RETRY_S = 5.0

TIMERS_FIRED = Counter("jz_timers_fired_total", "Durable timers fired", ["service", "kind"])
TIMER_FAILURES = Counter(
    "jz_timer_failures_total",
    "Failed firings of durable timers (retry or parked)",
    ["service", "kind", "outcome"],
)
TIMER_LAG = Histogram(
    "jz_timer_lag_seconds",
    "How long after its due time a timer fired",
    ["service", "kind"],
    buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600),
)


@dataclass(frozen=True)
class DueTimer:
    """A pending timer as the worker claimed it: what fires (``kind``), for which aggregate (``key``)."""

    timer_id: uuid.UUID
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int  # failed firings so far


_INSERT = (
    "INSERT INTO timers (timer_id, kind, key, due_at, payload) VALUES ($1, $2, $3, $4, $5::jsonb)"
    " ON CONFLICT (kind, key) WHERE fired_at IS NULL"
)
_NOTIFY = f" RETURNING 1) SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM stored"
# A timer scheduled again as it stands (due, payload, never failed) is left alone: no new row
# version, and no notification that would wake every worker to find nothing new.
_SCHEDULE = (
    f"WITH stored AS ({_INSERT} DO UPDATE SET due_at = EXCLUDED.due_at, payload = EXCLUDED.payload,"
    " attempts = 0, last_error = NULL, parked_at = NULL"
    " WHERE (timers.due_at, timers.payload, timers.attempts, timers.parked_at)"
    f" IS DISTINCT FROM (EXCLUDED.due_at, EXCLUDED.payload, 0, NULL){_NOTIFY}"
)
# DO NOTHING takes no lock: a pending timer being fired (locked by its worker) is not waited for.
_SCHEDULE_IF_ABSENT = f"WITH stored AS ({_INSERT} DO NOTHING{_NOTIFY}"
_CLAIM = (
    "SELECT timer_id, kind, key, due_at, payload, attempts FROM timers"
    " WHERE fired_at IS NULL AND parked_at IS NULL AND due_at <= $2"
    " ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED"
)
# Only the timer's state as claimed is charged: a timer rescheduled meanwhile is a new intent.
_RECORD_FAILURE = (
    "UPDATE timers SET attempts = attempts + 1, last_error = $4,"
    " due_at = $7::timestamptz + make_interval(secs => $5), parked_at = CASE WHEN $6 THEN $7::timestamptz END"
    " WHERE timer_id = $1 AND fired_at IS NULL AND attempts = $2 AND due_at = $3"
)
# FOR KEY SHARE SKIP LOCKED passes over timers another worker is firing, so that a worker does
# not spin on them while they are due; it does not block other workers asking the same.
_NEXT_DUE = (
    "SELECT extract(epoch FROM due_at - $1)::float8 FROM timers"
    " WHERE fired_at IS NULL AND parked_at IS NULL ORDER BY due_at LIMIT 1 FOR KEY SHARE SKIP LOCKED"
)


async def schedule(
    conn: asyncpg.Connection, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]
) -> None:
    """Store the timer in the caller's transaction, replacing the pending one of ``kind`` for
    ``key`` (and un-parking it); workers are woken when it commits."""
    await conn.execute(_SCHEDULE, uuid.uuid4(), kind, key, due_at, json.dumps(payload))


async def schedule_if_absent(
    conn: asyncpg.Connection, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]
) -> bool:
    """Store the timer in the caller's transaction unless one of ``kind`` for ``key`` is pending
    (parked included), which keeps its due time; whether it was stored.

    Changes that each call it make one firing, at the ``due_at`` of the first: a debounce that a
    steady stream of changes cannot push back. A timer being fired right now is still pending and
    is not waited for, so a change that commits after its handler read is not seen by that firing.
    """
    stored = await conn.fetchrow(_SCHEDULE_IF_ABSENT, uuid.uuid4(), kind, key, due_at, json.dumps(payload))
    return stored is not None


async def schedule_many(
    conn: asyncpg.Connection, kind: str, timers: Sequence[Timer], if_absent: bool = False
) -> None:
    """``schedule`` (or ``schedule_if_absent``) of each timer, pipelined: one round trip."""
    if timers:
        rows = [(uuid.uuid4(), kind, key, due_at, json.dumps(payload)) for key, due_at, payload in timers]
        await conn.executemany(_SCHEDULE_IF_ABSENT if if_absent else _SCHEDULE, rows)


async def cancel_many(conn: asyncpg.Connection, kind: str, keys: Sequence[str]) -> None:
    """``cancel`` of each key, in one statement (rows locked in key order, as one by one would)."""
    if keys:
        await conn.execute(
            "DELETE FROM timers WHERE timer_id IN (SELECT timer_id FROM timers WHERE kind = $1"
            " AND key = ANY($2::text[]) AND fired_at IS NULL ORDER BY key FOR UPDATE)",
            kind,
            list(keys),
        )


async def cancel(conn: asyncpg.Connection, kind: str, key: str) -> bool:
    """Delete the pending timer of ``kind`` for ``key`` in the caller's transaction; whether there was one.

    One being fired meanwhile is waited for, and then is no longer pending.
    """
    deleted = await conn.fetchval(
        "DELETE FROM timers WHERE kind = $1 AND key = $2 AND fired_at IS NULL RETURNING true", kind, key
    )
    return bool(deleted)


class CoalescingTimers(Timers, Protocol):
    """Timers that a stream of changes can also set once: the first change sets the due time and
    the later ones, until it fires, join it."""

    async def schedule_if_absent(
        self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]
    ) -> bool:
        """Fire ``kind`` for ``key`` at ``due_at`` if this unit of work commits, unless a timer of
        ``kind`` for ``key`` is pending (then it keeps its own due time); whether it was set."""
        ...

    async def schedule_many_if_absent(self, kind: str, timers: Sequence[Timer]) -> None:
        """``schedule_if_absent`` of each (key, due_at, payload), in one round trip."""
        ...


class TimerQueue(Timers, Protocol):
    """The worker's side of the timers, in the unit of work's transaction."""

    async def claim_due(self, limit: int) -> list[DueTimer]:
        """Lock up to ``limit`` due timers, oldest due first, passing over those another worker holds."""
        ...

    async def mark_fired(self, timers: Sequence[DueTimer]) -> None:
        """Mark the timers fired as claimed; one its handler rescheduled (a new due time or payload
        under the same kind and key, e.g. the next deadline of the same case) stays pending."""
        ...

    async def record_failure(self, timer: DueTimer, error: str, retry_in_s: float, park: bool) -> None:
        """Count a failed firing of ``timer`` if it is still as claimed: due again in ``retry_in_s``, or
        parked (kept pending, no longer claimed) when ``park``."""
        ...

    async def seconds_until_due(self) -> float | None:
        """Until the next pending timer is due (≤ 0: one is due now); None when none is pending."""
        ...


class TimerUnitOfWork(UnitOfWork, Protocol):
    @property
    def timers(self) -> TimerQueue: ...


class PgTimers:
    """``TimerQueue`` on the unit of work's connection; due means due on the unit of work's clock."""

    def __init__(self, conn: asyncpg.Connection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    async def schedule(self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]) -> None:
        await schedule(self._conn, kind, key, due_at, payload)

    async def schedule_if_absent(
        self, kind: str, key: str, due_at: datetime, payload: Mapping[str, Any]
    ) -> bool:
        return await schedule_if_absent(self._conn, kind, key, due_at, payload)

    async def cancel(self, kind: str, key: str) -> bool:
        return await cancel(self._conn, kind, key)

    async def schedule_many(self, kind: str, timers: Sequence[Timer]) -> None:
        await schedule_many(self._conn, kind, timers)

    async def schedule_many_if_absent(self, kind: str, timers: Sequence[Timer]) -> None:
        await schedule_many(self._conn, kind, timers, if_absent=True)

    async def cancel_many(self, kind: str, keys: Sequence[str]) -> None:
        await cancel_many(self._conn, kind, keys)

    async def claim_due(self, limit: int) -> list[DueTimer]:
        rows = await self._conn.fetch(_CLAIM, limit, self._clock.now())
        return [DueTimer(**{**r, "payload": json.loads(r["payload"])}) for r in rows]

    async def mark_fired(self, timers: Sequence[DueTimer]) -> None:
        await self._conn.execute(
            "UPDATE timers SET fired_at = now()"
            " FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[]) AS c(id, due, payload)"
            " WHERE timer_id = c.id AND due_at = c.due AND timers.payload = c.payload",
            [t.timer_id for t in timers],
            [t.due_at for t in timers],
            [json.dumps(t.payload) for t in timers],
        )

    async def record_failure(self, timer: DueTimer, error: str, retry_in_s: float, park: bool) -> None:
        await self._conn.execute(
            _RECORD_FAILURE,
            timer.timer_id,
            timer.attempts,
            timer.due_at,
            error,
            retry_in_s,
            park,
            self._clock.now(),  # due is judged on this clock, not the database's
        )

    async def seconds_until_due(self) -> float | None:
        seconds: float | None = await self._conn.fetchval(_NEXT_DUE, self._clock.now())
        return seconds


U = TypeVar("U", bound=TimerUnitOfWork)
# Applies the consequence of ``timer`` inside the unit of work that marks it fired.
TimerHandler = Callable[[U, DueTimer], Awaitable[None]]


class _HandlerFailed(Exception):
    def __init__(self, timer: DueTimer, error: Exception) -> None:
        super().__init__(f"timer {timer.kind} {timer.key}: {error!r}")
        self.timer = timer
        self.error = error


class TimerWorker(Generic[U]):
    """Fires due timers through ``handlers`` (kind → handler), as a service's background task.

    A failure while the database does not answer is an outage: waited out, never charged to a
    timer. Any other failure of a handler (or a kind without one: a bug, not dropped) rolls its
    batch back and is charged to its timer alone, which is retried with backoff and parked after
    ``timer_max_attempts``.
    """

    def __init__(
        self,
        uow_factory: Callable[[], U],
        handlers: Mapping[str, TimerHandler[U]],
        settings: ServiceSettings,
        healthy: Probe,
    ) -> None:
        self._uow = uow_factory
        self._handlers = handlers
        self._settings = settings
        self._healthy = healthy
        self._notifications = Notifications(settings.database_url, NOTIFY_CHANNEL)

    async def run(self) -> None:
        """Fire timers until cancelled; an error that is not an outage ends it (and the process)."""
        delays = backoff(_FIRST_RETRY_S, _LAST_RETRY_S)
        try:
            while True:
                try:
                    await self._notifications.listen()
                    if await self.fire_due() < self._settings.timer_batch_size:
                        await self._idle()
                    delays = backoff(_FIRST_RETRY_S, _LAST_RETRY_S)
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    delay = next(delays)
                    log.warning(
                        "timers unavailable; retrying",
                        extra={"fields": {"error": repr(exc), "retry_in_s": delay}},
                    )
                    await asyncio.sleep(delay)
        finally:
            self._notifications.close()

    async def fire_due(self) -> int:
        """Fire up to a batch of due timers in one unit of work; how many fired."""
        try:
            return await self._fire_batch()
        except _HandlerFailed as failed:
            if is_outage(failed.error) or not await self._healthy():
                raise ConnectionError("the database did not answer while a timer fired") from failed.error
            await self._charge(failed.timer, failed.error)
            return 0  # the rest of the batch is still due

    async def _fire_batch(self) -> int:
        async with self._uow() as uow:
            due = await uow.timers.claim_due(self._settings.timer_batch_size)
            if not due:
                return 0
            for timer in due:
                await self._fire(uow, timer)
            await uow.timers.mark_fired(due)
            await uow.commit()
            now = uow.clock.now()
        for timer in due:
            TIMERS_FIRED.labels(self._settings.service_name, timer.kind).inc()
            TIMER_LAG.labels(self._settings.service_name, timer.kind).observe(
                max(0.0, (now - timer.due_at).total_seconds())
            )
        return len(due)

    async def _fire(self, uow: U, timer: DueTimer) -> None:
        handler = self._handlers.get(timer.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for timer kind {timer.kind!r}")
            await handler(uow, timer)
        except Exception as exc:
            raise _HandlerFailed(timer, exc) from exc

    async def _charge(self, timer: DueTimer, error: Exception) -> None:
        """Count the failure in a transaction of its own: due again after a backoff, or parked."""
        settings = self._settings
        park = timer.attempts + 1 >= settings.timer_max_attempts
        delays = backoff(settings.timer_retry_backoff_s, settings.timer_max_backoff_s)
        retry_in_s = next(islice(delays, timer.attempts, None))
        async with self._uow() as uow:
            await uow.timers.record_failure(timer, f"{type(error).__name__}: {error}", retry_in_s, park)
            await uow.commit()
        outcome = "parked" if park else "retry"
        TIMER_FAILURES.labels(settings.service_name, timer.kind, outcome).inc()
        fields = {"kind": timer.kind, "key": timer.key, "attempts": timer.attempts + 1, "error": repr(error)}
        if park:
            log.error("timer parked: its handler kept failing", extra={"fields": fields})
        else:
            log.warning(
                "timer handler failed; retrying", extra={"fields": {**fields, "retry_in_s": retry_in_s}}
            )

    async def _idle(self) -> None:
        """Until the next timer is due (at most a poll interval), or a newly scheduled one wakes us."""
        async with self._uow() as uow:
            until = await uow.timers.seconds_until_due()
        poll = self._settings.timer_poll_interval_s
        wait = poll if until is None else min(until, poll)
        if wait > 0:
            await self._notifications.wait(wait)
