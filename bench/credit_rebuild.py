"""Benchmark: rebuilding every worker's score from the credit ledger (services/credit/rebuild.py).

A fresh database gets ``entries`` ledger entries over up to 100,000 workers (ten entries each on
average), written as the ledger is (in time order over three years, the workers interleaved, a
few workers far busier than most) with the kinds a real record holds: bookings, completed orders
and ratings above all, then training, certificates, awards, no-shows, upheld complaints, breached
agreements, suspensions, flagged background checks and at-fault claims, each with a valid
magnitude; then the live scores as live scoring leaves them (each scored worker evaluated when
their last fact occurred). Then, in this process, on a pool made like the service's:

- ``baseline``: a bare read of the same ledger through the same cursor and batches
  (``PgLedger.scan``: the snapshot, the worker count, each worker's facts that score decoded
  with their live score), nothing evaluated. Run first and again last; the ratio is against
  the mean of the two.
- ``model unchanged``: ``rebuild(apply=False)``, every worker evaluated and compared with the
  live score. The headline: entries/s, target >= 100,000/s; it must find no mismatch.
- ``model changed``: the same with a new model (2026.1 with a severe complaint costing 150
  instead of 200): the workers it moves are found; then ``apply=True`` stores them, publishes
  their level changes and sets their timers; then a last pass must find no mismatch.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import asyncpg

from bench.common import BenchEnv, CpuWindow, Target, cpu_ms_per_unit, figure, mean
from deploy.local.stack import scratch_database
from libs.common.db import create_pool, migrate
from libs.common.settings import ServiceSettings
from services.credit.app import MIGRATIONS
from services.credit.model import FactKind, Substantiation, v1
from services.credit.rebuild import PgLedger, PgRebuildUnitOfWork, rebuild, rescore

TARGET_RATE = 100_000.0
WORKERS, ENTRIES_PER_WORKER = 100_000, 10  # at most; a --quick ledger has fewer workers
SEVERE, NEW_SEVERE_PENALTY = 3, 150  # the new model of the bench: a severe complaint costs 150, not 200
HISTORY = timedelta(days=3 * 365)
COPY_CHUNK = 50_000
# kind: (share of the entries, source event type, a magnitude, a detail)
Draw = Callable[[random.Random], int]
KINDS: dict[FactKind, tuple[float, str, Draw]] = {
    FactKind.UNSCORED: (0.38, "jiazheng.orders.events.v1.OrderCreated", lambda r: 1),
    FactKind.ORDER_COMPLETED: (0.34, "jiazheng.orders.events.v1.OrderCompleted", lambda r: 1),
    FactKind.RATING: (
        0.20,
        "jiazheng.orders.events.v1.RatingPosted",
        lambda r: r.choices((5, 4, 3, 2, 1), (60, 25, 8, 4, 3))[0],
    ),
    FactKind.TRAINING_COMPLETED: (
        0.02,
        "jiazheng.workers.events.v1.TrainingRecorded",
        lambda r: r.choice((8, 16, 40)),
    ),
    FactKind.CERTIFICATE_GRANTED: (
        0.01,
        "jiazheng.workers.events.v1.SkillCertificateRecorded",
        lambda r: r.randint(1, 4),
    ),
    FactKind.AWARD: (0.005, "operator", lambda r: r.randint(1, 3)),
    FactKind.NO_SHOW: (0.015, "jiazheng.orders.events.v1.NoShowReported", lambda r: 1),
    FactKind.COMPLAINT_UPHELD: (
        0.01,
        "jiazheng.complaints.events.v1.CaseResolved",
        lambda r: r.randint(1, 3),
    ),
    FactKind.AGREEMENT_BREACHED: (0.002, "jiazheng.complaints.events.v1.AgreementFollowedUp", lambda r: 1),
    FactKind.SUSPENSION_REQUESTED: (
        0.002,
        "jiazheng.complaints.events.v1.WorkerSuspensionRequested",
        lambda r: 1,
    ),
    FactKind.BACKGROUND_FLAGGED: (
        0.003,
        "jiazheng.workers.events.v1.BackgroundCheckRecorded",
        lambda r: r.randint(1, 2),
    ),
    FactKind.CLAIM_PAID_AT_FAULT: (
        0.003,
        "jiazheng.insurance.events.v1.ClaimPaid",
        lambda r: r.randrange(5_000, 800_000, 100),
    ),
}
SUBSTANTIATIONS = tuple(s.value for s in Substantiation)
_COLUMNS = [
    "worker_id",
    "event_id",
    "event_type",
    "score_delta",
    "reason",
    "rule_version",
    "trace_id",
    "occurred_at",
    "kind",
    "magnitude",
    "detail",
]

Row = tuple[str, str, str, int, str, str, str, datetime, str, int, str]


def ledger_rows(entries: int, workers: int, now: datetime, seed: int = 9) -> Iterator[Row]:
    """``entries`` rows in time order over ``HISTORY``; a worker's share of the entries follows a
    Pareto law (a few workers far busier than most)."""
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(workers)]
    activity = list(itertools.accumulate(rng.paretovariate(1.5) for _ in range(workers)))
    kinds = rng.choices(list(KINDS), [share for share, _, _ in KINDS.values()], k=entries)
    owners = rng.choices(ids, cum_weights=activity, k=entries)
    start, step = now - HISTORY, HISTORY / entries
    for i, (kind, worker_id) in enumerate(zip(kinds, owners, strict=True)):
        _, event_type, magnitude = KINDS[kind]
        detail = rng.choice(SUBSTANTIATIONS) if kind is FactKind.COMPLAINT_UPHELD else ""
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        reason = f"{kind.value} (bench)"
        yield (
            worker_id,
            event_id,
            event_type,
            0,
            reason,
            "2026.1",
            "",
            start + step * i,
            kind,
            magnitude(rng),
            detail,
        )


async def seed_ledger(dsn: str, entries: int, workers: int, now: datetime) -> float:
    """Migrate ``dsn`` and copy the ledger in; the seconds it took (vacuumed and analysed, as
    autovacuum would leave a ledger that old)."""
    t0 = time.perf_counter()
    await migrate(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        rows = ledger_rows(entries, workers, now)
        while chunk := [row for _, row in zip(range(COPY_CHUNK), rows, strict=False)]:
            await conn.copy_records_to_table("ledger_entries", records=chunk, columns=_COLUMNS)
        await conn.execute("VACUUM ANALYZE ledger_entries")
    finally:
        await conn.close()
    return time.perf_counter() - t0


@dataclass
class Pass:
    """One pass over the ledger: what it was, how fast, and what it found."""

    what: str
    entries: int
    workers: int
    elapsed_s: float
    cpu: dict[str, float]
    mismatches: int | None = None
    effect: dict[str, int] = field(default_factory=dict)

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def cpu_ms_per_1000_entries(self) -> float | None:
        return cpu_ms_per_unit(self.cpu, self.entries // 1000)

    def summary(self) -> dict[str, object]:
        return {
            "what": self.what,
            "entries": self.entries,
            "workers": self.workers,
            "elapsed_s": round(self.elapsed_s, 3),
            "events_per_s": round(self.entries_per_s, 1),  # the runner's table reads these two
            "cpu_ms_per_event": cpu_ms_per_unit(self.cpu, self.entries),
            "cpu_ms_per_1000_entries": self.cpu_ms_per_1000_entries,
            "mismatches": self.mismatches,
            "cpu": self.cpu,
            "effect": self.effect,
        }


async def bare_read(pool: asyncpg.Pool) -> Pass:
    """The ledger through the rebuild's cursor and batches, decoded, nothing evaluated."""
    cpu = CpuWindow()
    cpu.start()
    entries = 0
    async with PgLedger(pool).scan() as scan, contextlib.aclosing(scan.workers()) as batches:
        async for batch in batches:
            entries += sum(worker.entries for worker in batch)
    cpu.stop()
    return Pass("baseline: bare read", entries, scan.workers_total, cpu.result["wall_s"], cpu.result)


async def seed_live_scores(pool: asyncpg.Pool) -> float:
    """The scores as live scoring leaves them: each scored worker evaluated when their last fact
    occurred (the rebuild's own evaluation, stored without events or timers); the seconds it took."""
    t0 = time.perf_counter()
    async with PgLedger(pool).scan() as scan, contextlib.aclosing(scan.workers()) as batches:
        async for batch in batches:
            live = [rescore(w, max(f.occurred_at for f in w.facts)) for w in batch if w.facts]
            async with PgRebuildUnitOfWork(pool) as uow:
                await uow.rebuilt.replace([r for r in live if r is not None])
                await uow.commit()
    return time.perf_counter() - t0


@contextlib.contextmanager
def severe_complaints_cost(points: int) -> Iterator[None]:
    """A new model for the bench: model 2026.1 with another penalty for a severe complaint."""
    before = v1.COMPLAINT_PENALTIES[SEVERE]
    v1.COMPLAINT_PENALTIES[SEVERE] = ("severe", points)
    try:
        yield
    finally:
        v1.COMPLAINT_PENALTIES[SEVERE] = before


async def rebuild_pass(pool: asyncpg.Pool, what: str, apply: bool) -> Pass:
    cpu = CpuWindow()
    cpu.start()
    done = await rebuild(PgLedger(pool), partial(PgRebuildUnitOfWork, pool), datetime.now(UTC), apply)
    cpu.stop()
    return Pass(what, done.entries_done, done.workers_done, cpu.result["wall_s"], cpu.result, done.mismatches)


async def _published(pool: asyncpg.Pool) -> dict[str, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM outbox) AS level_changes,"
        " (SELECT count(*) FROM timers WHERE fired_at IS NULL) AS timers"
    )
    return {k: int(v) for k, v in dict(row).items()}


def _figures(passes: dict[str, Pass], baselines: list[Pass]) -> list[dict[str, object]]:
    base_rate = mean(*(b.entries_per_s for b in baselines))
    base_cpu = mean(*(b.cpu_ms_per_1000_entries for b in baselines))
    same, found, applied, again = (passes[k] for k in ("same", "found", "applied", "again"))
    once = (
        same.mismatches == 0
        and found.mismatches == applied.mismatches
        and 0 < applied.effect["level_changes"] <= (applied.mismatches or 0)
        and again.mismatches == 0
    )
    return [
        figure(
            "credit rebuild, model unchanged",
            "entries/s",
            round(same.entries_per_s, 1),
            base_rate,
            Target(at_least=TARGET_RATE),
        ),
        figure("credit rebuild: CPU per 1,000 entries", "CPU ms", same.cpu_ms_per_1000_entries, base_cpu),
        figure(
            "credit rebuild, a model change applied",
            "entries/s",
            round(applied.entries_per_s, 1),
            base_rate,
        ),
        figure("credit rebuild: workers a model change moved", "workers", applied.mismatches),
        figure(
            "credit rebuild: a model change found, then applied once",
            "yes/no",
            once,
            target=Target(holds="0 mismatches unchanged; the change's mismatches stored, published, then 0"),
        ),
    ]


async def _passes(pool: asyncpg.Pool) -> dict[str, Pass]:
    passes = {"before": await bare_read(pool)}
    passes["same"] = await rebuild_pass(pool, "rebuild, model unchanged", apply=False)
    with severe_complaints_cost(NEW_SEVERE_PENALTY):
        passes["found"] = await rebuild_pass(pool, "rebuild, model changed", apply=False)
        passes["applied"] = await rebuild_pass(pool, "rebuild, model changed, with apply", apply=True)
        passes["applied"].effect = await _published(pool)
        passes["again"] = await rebuild_pass(pool, "rebuild, model changed, after apply", apply=False)
    passes["after"] = await bare_read(pool)
    passes["after"].what = "baseline again"
    return passes


async def run(env: BenchEnv, entries: int = 1_000_000) -> dict[str, object]:
    """Seed a scratch database (the ledger, the live scores), then the passes over it."""
    workers = min(WORKERS, entries // ENTRIES_PER_WORKER)
    async with scratch_database(env.endpoints, "jzbench_rebuild") as db:
        dsn = env.endpoints.dsn(db)
        seeded_s = await seed_ledger(dsn, entries, workers, datetime.now(UTC))
        pool = await create_pool(dsn, 2, ServiceSettings().db_pool_max)
        try:
            seeded_s += await seed_live_scores(pool)
            passes = await _passes(pool)
        finally:
            await pool.close()
    return {
        "entries": entries,
        "workers": workers,
        "seed_s": round(seeded_s, 1),
        "figures": _figures(passes, [passes["before"], passes["after"]]),
        "runs": [p.summary() for p in passes.values()],
    }
