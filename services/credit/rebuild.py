"""Rebuilding scores from the ledger (重算信用分): every worker's facts replayed through the model in
force and compared with the live scores; after a model change, the new scores stored and the level
changes they make published.

The ledger is read in one snapshot, worker by worker in worker order, a batch of workers at a time
(a server-side cursor: the national record is tens of millions of entries and is never held
whole), each worker with their live score. A fact of no kind (a booking) scores nothing in any
model, so only the facts that score are decoded (as the ledger holds them, not checked again) and
evaluated, for the score and level alone (no line explained); a record of bookings alone was never
scored live and is not scored here. A live score is a mismatch when the model in force, evaluated
at the instant the live score was evaluated, does not give it back: penalties fade day by day, so
comparing it with an evaluation of another day would flag every fading penalty under an unchanged
model.

With ``apply``, each batch's mismatched workers are stored in one transaction, evaluated at the
rebuild's start: the new score, its level change published as live scoring publishes it, the
re-evaluation timer set again. A worker whose live score changed after the snapshot was read is
left alone: live scoring evaluated them since, with the same model.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

import asyncpg

from services.credit import companies, events, model, scoring
from services.credit.model import Fact, FactKind
from services.credit.scoring import StoredScore
from services.credit.store import PgCreditUnitOfWork

BATCH_WORKERS = 1_000  # workers per fetch (about ten thousand entries)
COUNT_TIMEOUT_S = 600.0  # counting the workers reads the whole ledger once


@dataclass(frozen=True)
class Progress:
    """How far a rebuild is: workers and ledger entries done, and the mismatches found so far."""

    workers_done: int
    workers_total: int
    entries_done: int
    mismatches: int
    model_version: str = model.MODEL_VERSION
    finished: bool = False


@dataclass(frozen=True)
class WorkerLedger:
    """One worker's ledger as the rebuild reads it: how many entries it holds, the facts among them
    that score (every kind but ``UNSCORED``), and the live score (None: never scored)."""

    worker_id: str
    entries: int
    facts: Sequence[Fact]
    live: StoredScore | None


@dataclass(frozen=True)
class Rescored:
    """A worker whose live score the model does not give back, and their evaluation at the
    rebuild's start."""

    worker: WorkerLedger
    new: StoredScore


class LedgerScan(Protocol):
    """One consistent read of the whole ledger and of the live scores."""

    @property
    def workers_total(self) -> int: ...

    def workers(self) -> AsyncGenerator[Sequence[WorkerLedger], None]:
        """Every worker of the ledger in worker order, each whole, a batch at a time."""
        ...


class Ledger(Protocol):
    def scan(self) -> AbstractAsyncContextManager[LedgerScan]: ...


class RebuiltScores(Protocol):
    async def replace(self, rescored: Sequence[Rescored]) -> set[str]:
        """Store each new score whose live row is still the one read; the workers stored."""
        ...


class RebuildUnitOfWork(companies.RegradeScheduling, Protocol):
    @property
    def rebuilt(self) -> RebuiltScores: ...

    @property
    def profiles(self) -> scoring.Employers: ...


ProgressReport = Callable[[Progress], Awaitable[None]]


async def _quiet(progress: Progress) -> None:
    """No one is told."""


async def rebuild(
    ledger: Ledger,
    uow: Callable[[], RebuildUnitOfWork],
    at: datetime,
    apply: bool,
    progress: ProgressReport = _quiet,
) -> Progress:
    """Replay the whole ledger through the model at ``at``; report after every batch; the totals."""
    async with ledger.scan() as scan, contextlib.aclosing(scan.workers()) as batches:
        done = Progress(0, scan.workers_total, 0, 0)
        async for workers in batches:
            rescored = [r for worker in workers if (r := rescore(worker, at)) is not None]
            if apply and rescored:
                await _store(uow, rescored, at)
            done = Progress(
                done.workers_done + len(workers),
                done.workers_total,
                done.entries_done + sum(worker.entries for worker in workers),
                done.mismatches + len(rescored),
            )
            await progress(done)
    return replace(done, finished=True)


def rescore(worker: WorkerLedger, at: datetime) -> Rescored | None:
    """The worker evaluated at ``at`` when the model does not give back the live score; else None."""
    live = worker.live
    if live is None and not worker.facts:
        return None
    if live is not None and live.model_version == model.MODEL_VERSION:
        then = model.score_of(worker.facts, live.evaluated_at)
        if (then.score, then.level) == (live.score, live.level):
            return None
    now = model.score_of(worker.facts, at)
    return Rescored(worker, StoredScore(now.score, now.level, now.model_version, at))


async def _store(
    uow_factory: Callable[[], RebuildUnitOfWork], rescored: Sequence[Rescored], at: datetime
) -> None:
    """One transaction for a batch: the scores, their level changes, their timers, and a regrade of
    the companies whose workers' scores moved."""
    following = {r.worker.worker_id: model.next_change(r.worker.facts, at) for r in rescored}
    async with uow_factory() as uow:
        stored = await uow.rebuilt.replace(rescored)
        for r in rescored:
            if r.worker.worker_id in stored:
                await _follow_up(uow, r, following[r.worker.worker_id], at)
        moved = {r.worker.worker_id for r in rescored if r.worker.worker_id in stored and _moved(r)}
        if moved:
            await companies.changed(uow, await uow.profiles.companies_of(moved))
        await uow.commit()


def _moved(r: Rescored) -> bool:
    return r.worker.live is None or r.worker.live.score != r.new.score


async def _follow_up(uow: RebuildUnitOfWork, r: Rescored, following: datetime | None, at: datetime) -> None:
    worker_id, live = r.worker.worker_id, r.worker.live
    if live is None or live.level is not r.new.level:
        await uow.add_event(events.TOPIC, events.level_changed(worker_id, r.new, live, at))
    if following is None:
        await uow.timers.cancel(scoring.REEVALUATION_TIMER, worker_id)
    else:
        await uow.timers.schedule(scoring.REEVALUATION_TIMER, worker_id, following, {})


# -- PostgreSQL ------------------------------------------------------------------------------

# Each worker once, their facts that score as parallel arrays (one aggregate node feeds every array
# the rows in the same order; the model does not depend on it), and the live score: a merge of the
# (worker_id, seq) index with worker_scores' key, streamed as the cursor fetches.
_SCORING = "FILTER (WHERE kind <> 'unscored')"
_WORKERS = f"""
SELECT l.*, s.score, s.level, s.model_version, s.evaluated_at
  FROM (SELECT worker_id, count(*) AS entries,
               array_agg(event_id) {_SCORING} AS event_ids, array_agg(kind) {_SCORING} AS kinds,
               array_agg(occurred_at) {_SCORING} AS occurred, array_agg(magnitude) {_SCORING} AS magnitudes,
               array_agg(detail) {_SCORING} AS details, array_agg(event_type) {_SCORING} AS sources
          FROM ledger_entries GROUP BY worker_id) l
  LEFT JOIN worker_scores s USING (worker_id)
 ORDER BY l.worker_id
"""
_KINDS = {kind.value: kind for kind in FactKind}


class PgLedger:
    """The ledger read through a server-side cursor in a read-only REPEATABLE READ transaction: the
    worker count, the facts and the live scores all come from one snapshot (held for the whole
    rebuild, as any long read holds back vacuum meanwhile)."""

    def __init__(self, pool: asyncpg.Pool, batch_workers: int = BATCH_WORKERS) -> None:
        self._pool = pool
        self._batch_workers = batch_workers

    @contextlib.asynccontextmanager
    async def scan(self) -> AsyncIterator[PgLedgerScan]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            total = await conn.fetchval(
                "SELECT count(*) FROM (SELECT DISTINCT worker_id FROM ledger_entries) w",
                timeout=COUNT_TIMEOUT_S,
            )
            yield PgLedgerScan(conn, int(total), self._batch_workers)


class PgLedgerScan:
    def __init__(self, conn: asyncpg.Connection, workers_total: int, batch_workers: int) -> None:
        self._conn = conn
        self.workers_total = workers_total
        self._batch_workers = batch_workers

    async def workers(self) -> AsyncGenerator[Sequence[WorkerLedger], None]:
        """Each batch is asked for before the previous one is handed over, so that PostgreSQL
        reads and aggregates it while this process evaluates the previous one."""
        cursor = await self._conn.cursor(_WORKERS)
        following = asyncio.ensure_future(cursor.fetch(self._batch_workers))
        try:
            while rows := await following:
                following = asyncio.ensure_future(cursor.fetch(self._batch_workers))
                await asyncio.sleep(0)  # the request leaves before the evaluation takes the loop
                yield [_worker_ledger(row) for row in rows]
        finally:
            await asyncio.gather(following, return_exceptions=True)  # one call at a time on a connection


_FACT_COLUMNS = ("event_ids", "kinds", "occurred", "magnitudes", "details", "sources")


def _worker_ledger(row: asyncpg.Record) -> WorkerLedger:
    worker_id = row["worker_id"]
    columns = [row[column] or () for column in _FACT_COLUMNS]  # NULL: no fact that scores
    facts = [
        Fact.from_ledger(event_id, worker_id, _KINDS[kind], occurred, magnitude, detail, source)
        for event_id, kind, occurred, magnitude, detail, source in zip(*columns, strict=True)
    ]
    return WorkerLedger(worker_id, row["entries"], facts, _live(row))


def _live(row: asyncpg.Record) -> StoredScore | None:
    if row["score"] is None:
        return None
    return StoredScore(row["score"], model.Level(row["level"]), row["model_version"], row["evaluated_at"])


# The rows of the batch, locked in worker order (as live scoring locks them: no deadlock between
# the two), then each replaced only if it is still what the snapshot read, or inserted if there
# was none and still is none.
_LOCK = "SELECT 1 FROM worker_scores WHERE worker_id = ANY($1::text[]) ORDER BY worker_id FOR UPDATE"
_REPLACE = """
WITH rebuilt AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::timestamptz[],
                         $6::int[], $7::text[], $8::text[], $9::timestamptz[])
        AS r(worker_id, score, level, model_version, evaluated_at,
             read_score, read_level, read_version, read_at)
), updated AS (
    UPDATE worker_scores s
       SET score = r.score, level = r.level, model_version = r.model_version, evaluated_at = r.evaluated_at
      FROM rebuilt r
     WHERE s.worker_id = r.worker_id
       AND (s.score, s.level, s.model_version, s.evaluated_at)
           = (r.read_score, r.read_level, r.read_version, r.read_at)
    RETURNING s.worker_id
), inserted AS (
    INSERT INTO worker_scores (worker_id, score, level, model_version, evaluated_at)
    SELECT worker_id, score, level, model_version, evaluated_at FROM rebuilt WHERE read_at IS NULL
    ON CONFLICT (worker_id) DO NOTHING
    RETURNING worker_id
)
SELECT worker_id FROM updated UNION ALL SELECT worker_id FROM inserted
"""


class PgRebuiltScores:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def replace(self, rescored: Sequence[Rescored]) -> set[str]:
        worker_ids = [r.worker.worker_id for r in rescored]
        await self._conn.execute(_LOCK, worker_ids)
        reads = [r.worker.live for r in rescored]
        rows = await self._conn.fetch(
            _REPLACE,
            worker_ids,
            [r.new.score for r in rescored],
            [r.new.level.value for r in rescored],
            [r.new.model_version for r in rescored],
            [r.new.evaluated_at for r in rescored],
            [read.score if read else None for read in reads],
            [read.level.value if read else None for read in reads],
            [read.model_version if read else None for read in reads],
            [read.evaluated_at if read else None for read in reads],
        )
        return {row["worker_id"] for row in rows}


class PgRebuildUnitOfWork(PgCreditUnitOfWork):
    """Credit's unit of work with the rebuild's batch writes of scores."""

    rebuilt: PgRebuiltScores

    def _bind(self, conn: asyncpg.Connection) -> None:
        super()._bind(conn)
        self.rebuilt = PgRebuiltScores(conn)
