"""Use cases: a worker's score re-evaluated from the ledger, and level changes published.

Whenever facts that score are recorded for a worker (once per consumed poll, however many of its
events named the worker), and when a durable timer says a fading penalty or a passing window
changes the level with no new fact, the worker is evaluated with the model in force at the unit of
work's clock; a level that differs from the one stored is published as ``CreditLevelChanged``
(workers recolours the card, orders updates matching) in the same transaction, and the next such
instant is scheduled. The companies of the workers whose score changed are to be regraded
(``companies.workers_changed``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from libs.common.telemetry import span_in_trace_of
from libs.common.timers import DueTimer
from services.credit import companies, events, model

REEVALUATION_TIMER = "credit.reevaluation"


@dataclass(frozen=True)
class StoredScore:
    score: int
    level: model.Level
    model_version: str
    evaluated_at: datetime


@dataclass(frozen=True)
class Grant:
    """A worker's consent (授权查询) for a platform's consumer to see the full record."""

    grant_id: str
    worker_id: str
    platform_id: str
    consumer_ref: str
    expires_at: datetime


class FactReads(Protocol):
    async def facts_of(self, worker_id: str) -> list[model.Fact]: ...


class Scores(Protocol):
    async def get(self, worker_id: str) -> StoredScore | None:
        """The stored evaluation, its row locked until the unit of work ends."""
        ...

    async def put(self, worker_id: str, score: StoredScore) -> None: ...


class Employers(Protocol):
    async def companies_of(self, worker_ids: Collection[str]) -> set[str]:
        """The companies that employ any of the workers (a worker with none adds nothing)."""
        ...


class ScoringUnitOfWork(companies.RegradeScheduling, Protocol):
    @property
    def facts(self) -> FactReads: ...

    @property
    def scores(self) -> Scores: ...

    @property
    def profiles(self) -> Employers: ...


async def rescore(
    uow: ScoringUnitOfWork, worker_ids: Iterable[str], traces: Mapping[str, str] | None = None
) -> list[StoredScore]:
    """Evaluate each worker now (in the trace ``traces`` gives them, if any); publish the level
    changes; schedule each next re-evaluation, and a regrade of the companies whose workers'
    scores changed."""
    stored, moved = [], []
    for worker_id in sorted(set(worker_ids)):
        with span_in_trace_of((traces or {}).get(worker_id), "rescore worker"):
            before, after = await _rescore_one(uow, worker_id)
        stored.append(after)
        if before is None or before.score != after.score:
            moved.append(worker_id)
    if moved:
        await companies.workers_changed(uow, await uow.profiles.companies_of(moved))
    return stored


async def _rescore_one(uow: ScoringUnitOfWork, worker_id: str) -> tuple[StoredScore | None, StoredScore]:
    """The worker's stored score before and after."""
    previous = await uow.scores.get(worker_id)  # locks the worker's row: one evaluation at a time
    facts = await uow.facts.facts_of(worker_id)
    now = uow.clock.now()
    standing = model.score_of(facts, now)  # the lines are made when someone reads the record
    stored = StoredScore(standing.score, standing.level, standing.model_version, now)
    await uow.scores.put(worker_id, stored)
    if previous is None or previous.level is not standing.level:
        await uow.add_event(events.TOPIC, events.level_changed(worker_id, stored, previous, now))
    following = model.next_change(facts, now)
    if following is None:
        await uow.timers.cancel(REEVALUATION_TIMER, worker_id)
    else:
        await uow.timers.schedule(REEVALUATION_TIMER, worker_id, following, {})
    return previous, stored


async def reevaluation_due(uow: ScoringUnitOfWork, timer: DueTimer) -> None:
    """A fading penalty or a passing window changes the level today: re-evaluate, no new fact."""
    await rescore(uow, [timer.key])
