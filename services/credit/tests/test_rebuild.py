"""Rebuilding scores from the ledger: after events scored live, the rebuild gives every live score
back (0 mismatches, whatever the batch size and however the penalties faded since); rebuilt from the
ledger alone at the same instant it stores what live scoring stored; a changed model is reported,
and applied once, its level changes published once; live scoring during a rebuild wins."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from google.protobuf.message import Message

from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.credit.v1 import credit_pb2
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.orders.v1 import orders_pb2
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2
from libs.common.auth import Role
from libs.common.events import EventEnvelope, new_event
from libs.common.inbox import IdempotentConsumer, KafkaRecord
from libs.common.testing import FakeDeadLetters, FixedClock
from services.credit import companies, model, scoring
from services.credit.admin_api import POLICY, SERVICE, Context, CreditAdminServicer
from services.credit.domain import LedgerEntry
from services.credit.events import LEVEL_TO_PROTO
from services.credit.handlers import EFFECTS
from services.credit.model import FactKind, Level, v1
from services.credit.rebuild import Progress, Rescored, WorkerLedger, rebuild
from services.credit.scoring import StoredScore
from services.credit.tests.fakes import FakeCreditUnitOfWork, FakeScores

NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)
BOOKED, ORDERS, NO_SHOWS, FLAGGED, COMPLAINED = "w-a", "w-b", "w-c", "w-d", "w-e"  # in ledger order


class FakeRebuiltScores:
    def __init__(self, scores: FakeScores) -> None:
        self._scores = scores

    async def replace(self, rescored: Sequence[Rescored]) -> set[str]:
        still = [r for r in rescored if self._scores.by_worker.get(r.worker.worker_id) == r.worker.live]
        for r in still:
            self._scores.by_worker[r.worker.worker_id] = r.new
        return {r.worker.worker_id for r in still}


class FakeRebuildUnitOfWork(FakeCreditUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.rebuilt = FakeRebuiltScores(self.scores)


class FakeScan:
    def __init__(self, workers: list[WorkerLedger], batch_workers: int, fails_after: int | None) -> None:
        self._workers = workers
        self._batch_workers = batch_workers
        self._fails_after = fails_after
        self.workers_total = len(workers)

    async def workers(self) -> AsyncGenerator[Sequence[WorkerLedger], None]:
        for n, start in enumerate(range(0, len(self._workers), self._batch_workers)):
            if n == self._fails_after:
                raise ConnectionError("the database went away")
            yield self._workers[start : start + self._batch_workers]


class FakeLedger:
    """The fake unit of work's ledger and live scores, read in one snapshot as PgLedger reads them."""

    def __init__(
        self, uow: FakeCreditUnitOfWork, batch_workers: int = 2, fails_after: int | None = None
    ) -> None:
        self._uow = uow
        self._batch_workers = batch_workers
        self._fails_after = fails_after  # batches read before the database goes away

    @contextlib.asynccontextmanager
    async def scan(self) -> AsyncIterator[FakeScan]:
        live = dict(self._uow.scores.by_worker)
        entries: dict[str, list[LedgerEntry]] = {}
        for entry in self._uow.ledger.entries:
            entries.setdefault(entry.worker_id, []).append(entry)
        workers = [
            WorkerLedger(w, len(es), [e.fact() for e in es if e.kind is not FactKind.UNSCORED], live.get(w))
            for w, es in sorted(entries.items())
        ]
        yield FakeScan(workers, self._batch_workers, self._fails_after)


async def _healthy() -> bool:
    return True


def _event(message: Message, worker_id: str, days_ago: int, n: int = 0) -> EventEnvelope:
    when = NOW - timedelta(days=days_ago, minutes=n)
    return new_event(message, source="/jiazheng/test", subject=f"workers/{worker_id}", time=when)


def _history() -> list[EventEnvelope]:
    """Five workers' records: bookings alone; orders and ratings; two no-shows and a training; a
    flagged background check and a certificate; a severe complaint today."""
    upheld = c.Outcome(result=c.OUTCOME_RESULT_SUBSTANTIATED, at_fault=c.PARTY_KIND_WORKER)
    resolved = complaint_events.CaseResolved(
        case_id="k", severity=c.SEVERITY_SEVERE, outcome=upheld, worker_id=COMPLAINED
    )
    consumer, worker = orders_pb2.PARTY_CONSUMER, orders_pb2.PARTY_WORKER
    flagged = worker_events.BackgroundCheckRecorded(worker_id=FLAGGED, passed=False, flags=["x"])
    certified = worker_events.SkillCertificateRecorded(worker_id=FLAGGED, level=workers_pb2.SKILL_LEVEL_4)
    return [
        *[
            _event(order_events.OrderCreated(order_id=f"b{i}", worker_id=BOOKED), BOOKED, 3, i)
            for i in range(2)
        ],
        *[
            _event(order_events.OrderCompleted(order_id=f"o{i}", worker_id=ORDERS), ORDERS, 40, i)
            for i in range(3)
        ],
        _event(
            order_events.RatingPosted(order_id="o1", worker_id=ORDERS, rater=consumer, stars=5), ORDERS, 39
        ),
        _event(
            order_events.RatingPosted(order_id="o2", worker_id=ORDERS, rater=consumer, stars=2), ORDERS, 38
        ),
        *[
            _event(
                order_events.NoShowReported(order_id=f"n{i}", worker_id=NO_SHOWS, at_fault=worker),
                NO_SHOWS,
                20 - i,
            )
            for i in range(2)
        ],
        _event(worker_events.TrainingRecorded(worker_id=NO_SHOWS, hours=24, exam_passed=True), NO_SHOWS, 5),
        _event(flagged, FLAGGED, 300),
        _event(certified, FLAGGED, 2),
        _event(resolved, COMPLAINED, 0),
    ]


async def _live(uow: FakeCreditUnitOfWork, events: Sequence[EventEnvelope]) -> None:
    """The events through credit's consumer, as in production: facts recorded, workers scored live."""
    consumer = IdempotentConsumer("credit", lambda: uow, EFFECTS, FakeDeadLetters(), _healthy)
    records = [KafkaRecord("t", e.key, e.data, e.kafka_headers()) for e in events]
    for record in records:
        assert await consumer.handle_batch([record]) == ["applied"]


def _levels(uow: FakeCreditUnitOfWork) -> list[tuple[str, int, int, int]]:
    """(worker, level, previous level, score) of each CreditLevelChanged published."""
    name = credit_events.CreditLevelChanged.DESCRIPTOR.full_name
    changes = [p.event.parse(credit_events.CreditLevelChanged) for p in uow.published if p.event.type == name]
    return [(e.worker_id, e.level, e.previous_level, e.score) for e in changes]


def _due(uow: FakeCreditUnitOfWork) -> dict[tuple[str, str], datetime]:
    return {key: timer.due_at for key, timer in uow.timers.pending.items()}


@pytest.fixture
async def live() -> FakeRebuildUnitOfWork:
    uow = FakeRebuildUnitOfWork(FixedClock(NOW))
    await _live(uow, _history())
    return uow


@pytest.mark.parametrize("batch_workers", [1, 2, 1000])
async def test_the_rebuild_gives_every_live_score_back_after_the_penalties_faded(
    live: FakeRebuildUnitOfWork, batch_workers: int
) -> None:
    live.clock.advance(timedelta(days=200))
    complained = (await live.facts.facts_of_many([COMPLAINED]))[COMPLAINED]
    faded = model.evaluate(complained, live.clock.now())
    assert faded.score != live.scores.by_worker[COMPLAINED].score  # the live score is from before
    before, published = dict(live.scores.by_worker), list(live.published)

    reports: list[Progress] = []

    async def report(progress: Progress) -> None:
        reports.append(progress)

    final = await rebuild(FakeLedger(live, batch_workers), lambda: live, live.clock.now(), True, report)

    entries = len(live.ledger.entries)
    assert final == Progress(5, 5, entries, 0, model.MODEL_VERSION, finished=True)
    assert reports[-1] == Progress(5, 5, entries, 0)
    assert [r.workers_done for r in reports] == sorted(r.workers_done for r in reports)
    assert (live.scores.by_worker, live.published) == (before, published)


@pytest.mark.parametrize("batch_workers", [1, 3, 1000])
async def test_rebuilt_from_the_ledger_alone_at_the_same_instant_it_stores_what_live_scoring_stored(
    live: FakeRebuildUnitOfWork, batch_workers: int
) -> None:
    fresh = FakeRebuildUnitOfWork(FixedClock(NOW))
    fresh.ledger.entries = list(live.ledger.entries)

    final = await rebuild(FakeLedger(fresh, batch_workers), lambda: fresh, NOW, True)

    assert final.mismatches == 4  # every worker but the one with bookings alone was never scored
    assert fresh.scores.by_worker == live.scores.by_worker
    assert BOOKED not in fresh.scores.by_worker
    unspecified = credit_events.CREDIT_LEVEL_UNSPECIFIED
    assert _levels(fresh) == [
        (w, LEVEL_TO_PROTO[s.level], unspecified, s.score) for w, s in sorted(live.scores.by_worker.items())
    ]
    assert _due(fresh) == _due(live)


def _severe_costs(monkeypatch: pytest.MonkeyPatch, points: int) -> None:
    monkeypatch.setitem(v1.COMPLAINT_PENALTIES, 3, ("severe", points))


async def test_a_changed_model_is_reported_then_applied_once_with_its_level_change(
    live: FakeRebuildUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert live.scores.by_worker[COMPLAINED].level is Level.D  # 600 - 200
    assert (scoring.REEVALUATION_TIMER, COMPLAINED) in live.timers.pending  # back to C when half faded
    _severe_costs(monkeypatch, 100)
    ledger, published = FakeLedger(live), len(live.published)

    dry = await rebuild(ledger, lambda: live, NOW, False)
    assert (dry.mismatches, len(live.published)) == (1, published)
    assert live.scores.by_worker[COMPLAINED].level is Level.D

    applied = await rebuild(ledger, lambda: live, NOW, True)
    again = await rebuild(ledger, lambda: live, NOW, True)

    assert (applied.mismatches, again.mismatches) == (1, 0)
    assert live.scores.by_worker[COMPLAINED] == StoredScore(500, Level.C, model.MODEL_VERSION, NOW)
    level_d, level_c = credit_events.CREDIT_LEVEL_D, credit_events.CREDIT_LEVEL_C
    assert _levels(live)[published:] == [(COMPLAINED, level_c, level_d, 500)]
    assert (scoring.REEVALUATION_TIMER, COMPLAINED) not in live.timers.pending  # C until it ends


async def test_a_score_of_another_model_version_is_stored_again_its_unchanged_level_not_published(
    live: FakeRebuildUnitOfWork,
) -> None:
    stored = live.scores.by_worker[ORDERS]
    live.scores.by_worker[ORDERS] = replace(stored, model_version="2025.4")
    published = len(live.published)

    final = await rebuild(FakeLedger(live), lambda: live, NOW, True)

    assert final.mismatches == 1
    assert live.scores.by_worker[ORDERS] == stored
    assert len(live.published) == published


async def test_applying_a_changed_model_has_the_companies_of_the_workers_it_moved_regraded(
    live: FakeRebuildUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    for worker_id, company_id in ((COMPLAINED, "co-moved"), (ORDERS, "co-restamped")):
        registered = worker_events.WorkerRegistered(worker_id=worker_id, company_id=company_id)
        await _live(live, [_event(registered, worker_id, 50)])
    live.timers.pending.clear()  # the registrations' own regrades
    live.scores.by_worker[ORDERS] = replace(live.scores.by_worker[ORDERS], model_version="2025.4")
    _severe_costs(monkeypatch, 100)

    await rebuild(FakeLedger(live), lambda: live, NOW, True)

    assert _due(live)[(companies.REGRADE_TIMER, "co-moved")] == NOW + companies.REGRADE_DELAY
    assert (companies.REGRADE_TIMER, "co-restamped") not in live.timers.pending  # its score did not move


async def test_a_worker_scored_live_during_the_rebuild_keeps_the_live_score(
    live: FakeRebuildUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    _severe_costs(monkeypatch, 100)
    completed = _event(order_events.OrderCompleted(order_id="o9", worker_id=COMPLAINED), COMPLAINED, 0)

    async def live_meanwhile(progress: Progress) -> None:
        if progress.workers_done == 1:
            await _live(live, [completed])  # after the snapshot was read, before the worker is stored

    ledger = FakeLedger(live, batch_workers=1)
    final = await rebuild(ledger, lambda: live, NOW, True, live_meanwhile)

    assert final.mismatches == 1  # as the snapshot had it
    assert live.scores.by_worker[COMPLAINED].score == 502  # live's 600 - 100 + 2, not the rebuild's 500
    level_d, level_c = credit_events.CREDIT_LEVEL_D, credit_events.CREDIT_LEVEL_C
    assert [change[1:] for change in _levels(live) if change[0] == COMPLAINED] == [
        (level_d, credit_events.CREDIT_LEVEL_UNSPECIFIED, 400),
        (level_c, level_d, 502),
    ]


NO_CONTEXT = cast(Context, None)


async def test_the_servicer_streams_one_response_per_batch_then_the_finished_totals(
    live: FakeRebuildUnitOfWork,
) -> None:
    servicer = CreditAdminServicer(FakeLedger(live, batch_workers=2), lambda: live, live.clock)

    request = credit_pb2.RebuildScoresRequest()
    streamed = [response async for response in servicer.RebuildScores(request, NO_CONTEXT)]

    assert [(m.workers_done, m.finished) for m in streamed] == [(2, False), (4, False), (5, False), (5, True)]
    assert streamed[-1] == credit_pb2.RebuildScoresResponse(
        workers_done=5,
        workers_total=5,
        entries_done=len(live.ledger.entries),
        mismatches=0,
        model_version=model.MODEL_VERSION,
        finished=True,
    )


async def test_a_rebuild_that_fails_ends_the_stream_with_its_error(live: FakeRebuildUnitOfWork) -> None:
    servicer = CreditAdminServicer(FakeLedger(live, batch_workers=2, fails_after=1), lambda: live, live.clock)
    streamed: list[credit_pb2.RebuildScoresResponse] = []

    async def read() -> None:
        async for response in servicer.RebuildScores(credit_pb2.RebuildScoresRequest(), NO_CONTEXT):
            streamed.append(response)

    with pytest.raises(ConnectionError):
        await read()
    assert [(m.workers_done, m.finished) for m in streamed] == [(2, False)]


def test_only_operators_rebuild_and_the_policy_names_every_method() -> None:
    assert set(POLICY) == {f"/{SERVICE.full_name}/{m.name}" for m in SERVICE.methods}
    assert set(POLICY.values()) == {frozenset({Role.OPERATOR})}
