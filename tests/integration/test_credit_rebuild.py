"""Rebuilding every score from the ledger, on the real stack.

The store on PostgreSQL (credit's migrations in a scratch database): the ledger read worker by
worker in one snapshot, and a batch of rebuilt scores stored only where the live row is still the
one read; a rebuild with apply stores, publishes and sets timers once. The service: after a chain
of events has scored a worker live (registered with a certificate, then a substantiated severe
complaint), RebuildScores replays the session's whole ledger through the model and finds every
live score given back: 0 mismatches, progress streamed batch by batch, and applying it stores and
publishes nothing; only operators may call it (these two need the servicer wired in app.py). A
model-version change: workers scored live, then their live rows stamped as a previous model left
them (as a deploy of a new model finds them); one RebuildScores with apply re-scores exactly them
with the model in force and publishes the level change it causes, and a second finds no mismatch,
stores the same scores and publishes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import asyncpg
import grpc
import pytest

from deploy.local.stack import Endpoints
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from libs.common.events import envelope_from_kafka
from libs.common.kafka import events_topic
from libs.common.testing import FixedClock
from services.credit import app as credit_app
from services.credit import model, scoring
from services.credit.domain import LedgerEntry, recorded
from services.credit.model import FactKind, Level
from services.credit.rebuild import PgLedger, PgRebuildUnitOfWork, Rescored, WorkerLedger, rebuild
from services.credit.scoring import StoredScore
from services.credit.store import PgCreditUnitOfWork
from tests.integration.clients import auth, ledger
from tests.integration.complaints_client import complaints_call, file_worker_complaint
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import read_topic
from tests.integration.workers_client import create_company, ready_worker

pytestmark = pytest.mark.integration


@pytest.fixture
def migrations() -> Path:
    """What the conftest's ``pool`` fixture migrates: the credit service's tables."""
    return credit_app.MIGRATIONS


NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)


def _entry(worker_id: str, kind: FactKind, magnitude: int = 1, detail: str = "") -> LedgerEntry:
    source = (str(uuid.uuid4()), "test.Event", "", NOW - timedelta(days=3))
    return recorded(worker_id, kind, f"{kind.value} (test)", source, magnitude, detail)


LEDGER = [
    _entry("w-1", FactKind.UNSCORED),
    _entry("w-3", FactKind.COMPLAINT_UPHELD, 3, "substantiated"),
    _entry("w-1", FactKind.ORDER_COMPLETED),
    _entry("w-2", FactKind.UNSCORED),
    _entry("w-1", FactKind.RATING, 5),
    _entry("w-2", FactKind.UNSCORED),
]
A_SCORE = StoredScore(607, Level.C, model.MODEL_VERSION, NOW - timedelta(days=1))


async def _seed(pool: asyncpg.Pool, entries: Sequence[LedgerEntry], live: dict[str, StoredScore]) -> None:
    async with PgCreditUnitOfWork(pool, FixedClock(NOW)) as uow:
        await uow.ledger.add_many(entries)
        await uow.scores.put_many(live)
        await uow.commit()


async def test_the_ledger_is_read_worker_by_worker_with_the_live_scores_in_one_snapshot(
    pool: asyncpg.Pool,
) -> None:
    await _seed(pool, LEDGER, {"w-1": A_SCORE})
    batches: list[list[WorkerLedger]] = []

    async with PgLedger(pool, batch_workers=2).scan() as scan:
        async for batch in scan.workers():
            batches.append(list(batch))
            await _seed(pool, [_entry("w-3", FactKind.NO_SHOW)], {"w-3": A_SCORE})  # after the snapshot

    assert scan.workers_total == 3
    assert [[w.worker_id for w in batch] for batch in batches] == [["w-1", "w-2"], ["w-3"]]
    first, bookings, complained = (w for batch in batches for w in batch)
    assert (first.entries, [f.kind for f in first.facts], first.live) == (
        3,
        [FactKind.ORDER_COMPLETED, FactKind.RATING],
        A_SCORE,
    )
    assert (bookings.entries, bookings.facts, bookings.live) == (2, [], None)
    assert (complained.entries, [f.detail for f in complained.facts], complained.live) == (
        1,
        ["substantiated"],
        None,
    )


def _rescored(worker_id: str, read: StoredScore | None) -> Rescored:
    return Rescored(WorkerLedger(worker_id, 1, [], read), StoredScore(640, Level.C, "2027.1", NOW))


async def test_a_batch_replaces_only_the_live_scores_still_as_the_snapshot_read_them(
    pool: asyncpg.Pool,
) -> None:
    moved = StoredScore(590, Level.C, model.MODEL_VERSION, NOW - timedelta(hours=1))
    await _seed(pool, [], {"w-1": A_SCORE, "w-2": moved, "w-4": moved})
    batch = [
        _rescored("w-1", A_SCORE),
        _rescored("w-2", A_SCORE),
        _rescored("w-3", None),
        _rescored("w-4", None),
    ]

    async with PgRebuildUnitOfWork(pool, FixedClock(NOW)) as uow:
        stored = await uow.rebuilt.replace(batch)
        await uow.commit()

    assert stored == {"w-1", "w-3"}  # w-2 was rescored live since, w-4 scored live meanwhile
    rows = {r["worker_id"]: r["model_version"] for r in await pool.fetch("SELECT * FROM worker_scores")}
    assert rows == {"w-1": "2027.1", "w-2": model.MODEL_VERSION, "w-3": "2027.1", "w-4": model.MODEL_VERSION}


async def _published(pool: asyncpg.Pool) -> list[tuple[str, int, int]]:
    rows = await pool.fetch("SELECT aggregate_id, payload FROM outbox ORDER BY seq")
    changes = [(r["aggregate_id"], credit_events.CreditLevelChanged.FromString(r["payload"])) for r in rows]
    return [(key, change.level, change.score) for key, change in changes]


async def test_a_rebuild_with_apply_stores_publishes_and_sets_timers_once(pool: asyncpg.Pool) -> None:
    await _seed(pool, LEDGER, {})
    uow = partial(PgRebuildUnitOfWork, pool, FixedClock(NOW))

    applied = await rebuild(PgLedger(pool), uow, NOW, apply=True)
    again = await rebuild(PgLedger(pool), uow, NOW + timedelta(days=30), apply=True)

    assert (applied.mismatches, again.mismatches) == (2, 0)
    level_c, level_d = credit_events.CREDIT_LEVEL_C, credit_events.CREDIT_LEVEL_D
    assert await _published(pool) == [("workers/w-1", level_c, 607), ("workers/w-3", level_d, 401)]
    timers = await pool.fetch("SELECT kind, key FROM timers WHERE fired_at IS NULL")
    assert [(t["kind"], t["key"]) for t in timers] == [(scoring.REEVALUATION_TIMER, "w-3")]  # the fading


async def _rebuild(credit: RunningService, key: str, apply: bool) -> list[credit_pb2.RebuildScoresResponse]:
    async with credit.channel() as channel:
        stub = credit_pb2_grpc.CreditAdminServiceStub(channel)
        call = stub.RebuildScores(credit_pb2.RebuildScoresRequest(apply=apply), metadata=auth(key))
        return [response async for response in call]


async def _scored_by_a_chain_of_events(
    endpoints: Endpoints,
    harness: ServiceHarness,
    workers: RunningService,
    complaints: RunningService,
    credit: RunningService,
) -> str:
    """A worker credit scored live twice: their certificate (C), then a severe complaint (D); the
    complaint's fact and the worker's score commit together."""
    operator, platform = harness.key("operator"), harness.key("demo-platform")
    company = await create_company(workers, operator)
    worker_id, _ = await ready_worker(endpoints, workers, operator, company.name)
    case = await file_worker_complaint(complaints, platform, worker_id, company.name)
    outcome = c.Outcome(result=c.OUTCOME_RESULT_SUBSTANTIATED, at_fault=c.PARTY_KIND_WORKER)
    resolve = c.ResolveCaseRequest(name=case, outcome=outcome)
    await complaints_call(complaints, operator, "ResolveCase", resolve)

    async def upheld() -> list[credit_pb2.LedgerEntry]:
        return [e for e in await ledger(credit, operator, worker_id) if "complaint" in e.reason]

    await eventually(upheld, within=60)
    return worker_id


async def test_a_rebuild_after_a_chain_of_events_gives_every_live_score_back(
    endpoints: Endpoints,
    harness: ServiceHarness,
    workers: RunningService,
    complaints: RunningService,
    credit: RunningService,
) -> None:
    worker_id = await _scored_by_a_chain_of_events(endpoints, harness, workers, complaints, credit)
    operator = harness.key("operator")

    streamed = await _rebuild(credit, operator, apply=False)

    *progress, last = streamed
    assert progress, "one response per batch before the totals"
    assert not any(p.finished for p in progress)
    assert [p.workers_done for p in progress] == sorted(p.workers_done for p in progress)
    assert last.finished
    assert last.workers_done == last.workers_total >= 1
    assert last.entries_done >= len(await ledger(credit, operator, worker_id))
    assert (last.mismatches, last.model_version) == (0, model.MODEL_VERSION)

    applied = (await _rebuild(credit, operator, apply=True))[-1]
    assert (applied.finished, applied.mismatches) == (True, 0)  # only a mismatch is stored or published


async def test_only_operators_rebuild_scores(harness: ServiceHarness, credit: RunningService) -> None:
    for principal in ("demo-platform", "regulator"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _rebuild(credit, harness.key(principal), apply=False)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


PREVIOUS_MODEL = "2025.4"  # the model a deploy replaced, as its live scores are left


async def _awarded(credit: RunningService, operator: str, worker_id: str) -> credit_pb2.WorkerCredit:
    """The worker scored live by the running service: an award of tier 1 (+20), 620, level C."""
    request = credit_pb2.RecordWorkerAwardRequest(
        name=f"workers/{worker_id}",
        request_id=str(uuid.uuid4()),
        title="北京市家政服务职业技能竞赛 优秀奖",
        tier=1,
        award_date=datetime.now(model.BEIJING).date().isoformat(),
    )
    async with credit.channel() as channel:
        reply = await credit_pb2_grpc.CreditServiceStub(channel).RecordWorkerAward(
            request, metadata=auth(operator)
        )
    return reply.credit


async def _level_changes(bootstrap: str, worker_id: str) -> list[credit_events.CreditLevelChanged]:
    """The worker's level changes on credit's topic, each once (the relay is at least once)."""
    found = {}
    for record in await read_topic(bootstrap, events_topic("credit")):
        event = envelope_from_kafka(record.headers, record.value)
        if record.key == f"workers/{worker_id}".encode() and event.type.endswith(".CreditLevelChanged"):
            found[event.id] = event.parse(credit_events.CreditLevelChanged)
    return list(found.values())


async def _scores_and_outbox(dsn: str, worker_ids: list[str]) -> tuple[list[tuple[object, ...]], int]:
    """The workers' live score rows, and how many events credit's outbox holds of them."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT worker_id, score, level, model_version, evaluated_at FROM worker_scores"
            " WHERE worker_id = ANY($1::text[]) ORDER BY worker_id",
            worker_ids,
        )
        keys = [f"workers/{w}" for w in worker_ids]
        events = await conn.fetchval("SELECT count(*) FROM outbox WHERE aggregate_id = ANY($1::text[])", keys)
    finally:
        await conn.close()
    return [tuple(r.values()) for r in rows], events


async def test_a_model_version_change_is_rescored_once_by_a_rebuild_and_its_level_changes_published(
    endpoints: Endpoints, harness: ServiceHarness, credit: RunningService
) -> None:
    operator, dsn = harness.key("operator"), endpoints.dsn("jz_credit")
    moved, kept = sorted(str(uuid.uuid4()) for _ in range(2))
    for worker_id in (moved, kept):
        assert (await _awarded(credit, operator, worker_id)).score == 620
    for worker_id in (moved, kept):
        await eventually(partial(_level_changes, endpoints.kafka_bootstrap, worker_id), within=60)
    # What a deploy of the model in force finds: scores another model left, one of another level.
    conn = await asyncpg.connect(dsn)
    try:
        for worker_id, score, level in ((moved, 700, "B"), (kept, 610, "C")):
            await conn.execute(
                "UPDATE worker_scores SET score = $2, level = $3, model_version = $4 WHERE worker_id = $1",
                worker_id,
                score,
                level,
                PREVIOUS_MODEL,
            )
    finally:
        await conn.close()

    applied = (await _rebuild(credit, operator, apply=True))[-1]

    assert (applied.finished, applied.mismatches, applied.model_version) == (True, 2, model.MODEL_VERSION)
    rows, events = await _scores_and_outbox(dsn, [moved, kept])
    assert [row[:4] for row in rows] == [(w, 620, "C", model.MODEL_VERSION) for w in (moved, kept)]

    async def republished() -> list[credit_events.CreditLevelChanged]:
        changes = await _level_changes(endpoints.kafka_bootstrap, moved)
        return changes if len(changes) == 2 else []

    live, rebuilt = await eventually(republished, within=60)
    assert (live.level, live.previous_level) == (
        credit_events.CREDIT_LEVEL_C,
        credit_events.CREDIT_LEVEL_UNSPECIFIED,
    )
    assert (rebuilt.level, rebuilt.previous_level, rebuilt.score, rebuilt.model_version) == (
        credit_events.CREDIT_LEVEL_C,
        credit_events.CREDIT_LEVEL_B,
        620,
        model.MODEL_VERSION,
    )
    assert len(await _level_changes(endpoints.kafka_bootstrap, kept)) == 1  # the same level: no event

    again = (await _rebuild(credit, operator, apply=True))[-1]

    assert (again.finished, again.mismatches) == (True, 0)
    assert await _scores_and_outbox(dsn, [moved, kept]) == (rows, events)  # the same scores, nothing new
