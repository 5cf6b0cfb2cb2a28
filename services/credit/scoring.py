"""Use cases: a worker's score re-evaluated from the ledger, and level changes published.

Whenever facts that score are recorded for a worker (once per consumed poll, however many of its
events named the worker), and when a durable timer says a fading penalty or a passing window
changes the level with no new fact, the worker is evaluated with the model in force at the unit of
work's clock; a level that differs from the one stored is published as ``CreditLevelChanged``
(workers recolours the card, orders updates matching) in the same transaction, and the next such
instant is scheduled. The companies of the workers whose score changed are to be regraded
(``companies.changed``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from libs.common.events import EventEnvelope
from libs.common.telemetry import span_in_trace_of
from libs.common.timers import DueTimer
from libs.common.uow import Timer
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
    async def facts_of_many(self, worker_ids: Sequence[str]) -> dict[str, list[model.Fact]]:
        """Each worker's facts in ledger order; a worker with none is left out."""
        ...


class Scores(Protocol):
    async def get_many(self, worker_ids: Sequence[str]) -> dict[str, StoredScore]:
        """The stored evaluations (of the workers that have one), their rows locked in worker order
        until the unit of work ends."""
        ...

    async def put_many(self, scores: Mapping[str, StoredScore]) -> None: ...


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
    uow: ScoringUnitOfWork,
    worker_ids: Iterable[str],
    causes: Mapping[str, Mapping[str, str]] | None = None,
    regrade: Collection[str] = (),
) -> list[StoredScore]:
    """Evaluate each worker now; publish the level changes (each in the trace of its cause among
    the events ``causes`` gives the worker, if any: ``_cause``); schedule each next
    re-evaluation, and a regrade of the companies whose workers' scores changed, with the
    companies of ``regrade`` (in the same statement). A few statements for all the workers, not a
    few per worker; none when there are no workers."""
    ids = sorted(set(worker_ids))
    if not ids:
        await companies.changed(uow, regrade)
        return []
    previous = await uow.scores.get_many(ids)  # locks the workers' rows: one evaluation at a time
    facts = await uow.facts.facts_of_many(ids)
    now = uow.clock.now()
    stored: dict[str, StoredScore] = {}
    changes: list[EventEnvelope] = []
    due: list[Timer] = []
    for worker_id in ids:
        worker_facts = facts.get(worker_id, [])
        candidates = (causes or {}).get(worker_id, {})
        stored[worker_id], change = _evaluated(
            worker_id, worker_facts, previous.get(worker_id), now, candidates
        )
        if change is not None:
            changes.append(change)
        following = model.next_change(worker_facts, now)
        if following is not None:
            due.append((worker_id, following, {}))
    await uow.scores.put_many(stored)
    await uow.add_events(events.TOPIC, changes)
    await uow.timers.schedule_many(REEVALUATION_TIMER, due)
    await uow.timers.cancel_many(REEVALUATION_TIMER, sorted(set(ids) - {key for key, _, _ in due}))
    moved = [w for w in ids if w not in previous or previous[w].score != stored[w].score]
    employers = await uow.profiles.companies_of(moved) if moved else set()
    await companies.changed(uow, employers | set(regrade))
    return [stored[w] for w in ids]


def _evaluated(
    worker_id: str,
    facts: list[model.Fact],
    previous: StoredScore | None,
    now: datetime,
    causes: Mapping[str, str],
) -> tuple[StoredScore, EventEnvelope | None]:
    """The worker's score now, and the level change to publish (in its cause's trace), if any."""
    standing = model.score_of(facts, now)  # the lines are made when someone reads the record
    stored = StoredScore(standing.score, standing.level, standing.model_version, now)
    if previous is not None and previous.level is standing.level:
        return stored, None
    moved = standing.score - (previous.score if previous is not None else model.START_SCORE)
    with span_in_trace_of(_cause(facts, now, moved, causes), "rescore worker"):
        return stored, events.level_changed(worker_id, stored, previous, now)


def _cause(facts: list[model.Fact], now: datetime, moved: int, causes: Mapping[str, str]) -> str | None:
    """The traceparent of the event, among ``causes`` (event id -> traceparent), whose fact counts
    the most points in the direction the score ``moved`` (the first of equals): a poll may hold a
    complaint's outcome and an older certificate of the same worker, and the fall to D belongs
    to the mediator's call, whichever of the two came last. None without causes (the current
    trace stays)."""
    if len(causes) < 2:
        return next(iter(causes.values()), None)
    points = {line.fact_id: line.points for line in model.evaluate(facts, now).lines}
    toward = 1 if moved >= 0 else -1
    return causes[max(causes, key=lambda event_id: points.get(event_id, 0) * toward)]


async def reevaluation_due(uow: ScoringUnitOfWork, timer: DueTimer) -> None:
    """A fading penalty or a passing window changes the level today: re-evaluate, no new fact."""
    await rescore(uow, [timer.key])
