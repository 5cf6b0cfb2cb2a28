"""Workers' eligibility on asyncpg: the repository of a unit of work, and the feed the index reads.

Revisions come from a sequence, and a sequence hands out numbers in the order transactions ask,
not in the order they commit: a reader could see revision 11 committed while 10 is still to come,
and skip 10 for good. So every writer takes one transaction-scoped advisory lock before its first
revision and keeps it until it commits or rolls back; revisions then become visible in their order.
Use cases should touch the eligibility last in their unit of work, as the consumer's effects do.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

import asyncpg

from libs.common.uow import Clock, SystemClock
from services.orders.domain.matching import Interval, WeeklySlot, WorkerEligibility
from services.orders.domain.vocabulary import CardColour, CreditLevel, HealthTier, SkillLevel, Trade
from services.orders.eligibility import CardOnFile, EligibilityRecord, beijing_today, eligibility_of

_REVISION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('jiazheng.worker_eligibility'), 0)"
_NEXT_REVISION = "nextval('worker_eligibility_revision')"
# A worker's bookings: their orders assigned or checked in, from the start for the booked hours.
_CHANGED_SINCE = """
SELECT w.worker_id, w.company_id, w.home_district, w.districts, w.trades, w.skill_level, w.health_tier,
       w.health_valid_until, w.card_id, w.card_colour, w.card_revoked, w.credit_level, w.rating_total,
       w.rating_count, w.weekly_slots, w.leaves, w.revision, b.starts, b.ends
  FROM worker_eligibility w
  LEFT JOIN LATERAL (
    SELECT array_agg(o.scheduled_start ORDER BY o.scheduled_start) AS starts,
           array_agg(o.scheduled_start + make_interval(hours => o.duration_hours) ORDER BY o.scheduled_start)
             AS ends
      FROM orders o
     WHERE o.assigned_worker_id = w.worker_id AND o.state IN ('assigned', 'checked_in')
  ) b ON true
 WHERE w.revision > $1
 ORDER BY w.revision
 LIMIT $2
"""


def _upsert(*columns: str, update: str = "", where: str = "") -> str:
    """Insert the worker's row ($1) with ``columns`` ($2, ...) or, when it exists, set them (or do
    ``update``) where ``where`` holds; the row gets a new revision either way."""
    values = ", ".join(f"${i}" for i in range(2, len(columns) + 2))
    sets = update or ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
    return (
        f"INSERT INTO worker_eligibility AS w (worker_id, {', '.join(columns)}, revision)"
        f" VALUES ($1, {values}, {_NEXT_REVISION}) ON CONFLICT (worker_id) DO UPDATE"
        f" SET {sets}, revision = EXCLUDED.revision, updated_at = now()"
    ) + (f" WHERE {where}" if where else "")


def _upsert_all(**types: str) -> str:
    """``_upsert`` of the columns named, for many workers at once: one array per column ($1 the
    workers' ids), one worker at most once (a row cannot be updated twice in one statement)."""
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types.values(), start=2))
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in types)
    return (
        f"INSERT INTO worker_eligibility AS w (worker_id, {', '.join(types)}, revision)"
        f" SELECT e.*, {_NEXT_REVISION} FROM unnest($1::text[], {arrays}) AS e"
        f" ON CONFLICT (worker_id) DO UPDATE SET {sets}, revision = EXCLUDED.revision, updated_at = now()"
    )


@dataclass(frozen=True, eq=False)  # one object per statement: equal when the same
class _Statement:
    """A write of one worker's row: ``one`` for a worker; ``each``, when the last write of a worker
    is all that counts, for many workers in one statement; writes of one ``columns`` group keep
    their order, writes of different groups set different columns and so commute."""

    one: str
    columns: str
    each: str | None = None


def _setter(**types: str) -> _Statement:
    return _Statement(_upsert(*types), columns=" ".join(types), each=_upsert_all(**types))


_SET_REGISTRATION = _Statement(_upsert("company_id", "home_district", "districts", "trades"), "company")
_SET_COMPANY = _Statement(_upsert("company_id"), "company", _upsert_all(company_id="text"))
_SET_HEALTH_CHECK = _setter(health_tier="integer", health_valid_until="date")
_SET_SKILL_LEVEL = _setter(skill_level="integer")
_SET_AVAILABILITY = _setter(weekly_slots="jsonb", leaves="jsonb")
_ISSUE_CARD = _Statement(_upsert("card_id", "card_revoked"), "card")
_REVOKE_CARD = _Statement(
    _upsert("card_id", "card_revoked", update="card_revoked = true", where="w.card_id = EXCLUDED.card_id"),
    "card",
)
_SET_CARD_COLOUR = _setter(card_colour="text")
_SET_CREDIT_LEVEL = _setter(credit_level="text")
_RECORD_RATING = _Statement(
    _upsert(
        "rating_total",
        "rating_count",
        update="rating_total = w.rating_total + EXCLUDED.rating_total, rating_count = w.rating_count + 1",
    ),
    "rating",
)
_TOUCH = _Statement(
    f"UPDATE worker_eligibility SET revision = {_NEXT_REVISION}, updated_at = now() WHERE worker_id = $1",
    "revision",
    f"UPDATE worker_eligibility SET revision = {_NEXT_REVISION}, updated_at = now()"
    " WHERE worker_id = ANY($1::text[])",
)
_Write = tuple[_Statement, tuple[Any, ...]]


class PgEligibilityRepository:
    """``services.orders.eligibility.EligibilityRepository`` on the unit of work's connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._holds_revision_lock = False
        self._held: list[_Write] | None = None

    async def _lock_revisions(self) -> None:
        if not self._holds_revision_lock:
            await self._conn.execute(_REVISION_LOCK)
            self._holds_revision_lock = True

    async def _write(self, statement: _Statement, *args: Any) -> None:
        if self._held is not None:
            self._held.append((statement, args))
            return
        await self._lock_revisions()
        await self._conn.execute(statement.one, *args)

    def hold(self) -> None:
        if self._held is None:
            self._held = []

    async def flush(self) -> None:
        """The held writes, a few statements in all: each group of columns in its order, a run of
        one statement as one statement (the last write of each worker) or one pipelined
        ``executemany`` (every write, in order)."""
        held, self._held = self._held, None
        if not held:
            return
        await self._lock_revisions()
        by_columns: dict[str, list[_Write]] = {}
        for write in held:
            by_columns.setdefault(write[0].columns, []).append(write)
        for writes in by_columns.values():
            for statement, run in groupby(writes, key=itemgetter(0)):
                await self._send(statement, [args for _, args in run])

    async def _send(self, statement: _Statement, rows: list[tuple[Any, ...]]) -> None:
        if statement.each is None:
            await self._conn.executemany(statement.one, rows)
            return
        latest = {args[0]: args for args in rows}
        await self._conn.execute(
            statement.each, *(list(column) for column in zip(*latest.values(), strict=True))
        )

    async def set_registration(
        self, worker_id: str, company_id: str, districts: Sequence[str], trades: Sequence[Trade]
    ) -> None:
        trade_names = [trade.value for trade in trades]
        await self._write(
            _SET_REGISTRATION, worker_id, company_id, districts[0], list(districts), trade_names
        )

    async def set_company(self, worker_id: str, company_id: str) -> None:
        await self._write(_SET_COMPANY, worker_id, company_id)

    async def set_health_check(self, worker_id: str, tier: HealthTier, valid_until: date) -> None:
        await self._write(_SET_HEALTH_CHECK, worker_id, int(tier), valid_until)

    async def set_skill_level(self, worker_id: str, level: SkillLevel) -> None:
        await self._write(_SET_SKILL_LEVEL, worker_id, int(level))

    async def set_availability(
        self, worker_id: str, weekly_slots: Sequence[WeeklySlot], leaves: Sequence[Interval]
    ) -> None:
        await self._write(_SET_AVAILABILITY, worker_id, _slots_json(weekly_slots), _leaves_json(leaves))

    async def issue_card(self, worker_id: str, card_id: str) -> None:
        await self._write(_ISSUE_CARD, worker_id, card_id, False)

    async def revoke_card(self, worker_id: str, card_id: str) -> None:
        await self._write(_REVOKE_CARD, worker_id, card_id, True)

    async def set_card_colour(self, worker_id: str, colour: CardColour) -> None:
        await self._write(_SET_CARD_COLOUR, worker_id, colour.value)

    async def set_credit_level(self, worker_id: str, level: CreditLevel) -> None:
        await self._write(_SET_CREDIT_LEVEL, worker_id, level.value)

    async def record_rating(self, worker_id: str, stars: int) -> None:
        await self._write(_RECORD_RATING, worker_id, stars, 1)

    async def touch(self, worker_id: str) -> None:
        await self._write(_TOUCH, worker_id)

    async def company_of(self, worker_id: str) -> str | None:
        company: str | None = await self._conn.fetchval(
            "SELECT company_id FROM worker_eligibility WHERE worker_id = $1", worker_id
        )
        return company

    async def card_on_file(self, worker_id: str) -> CardOnFile | None:
        row = await self._conn.fetchrow(
            "SELECT card_id, card_colour, card_revoked FROM worker_eligibility WHERE worker_id = $1",
            worker_id,
        )
        if row is None or row["card_id"] is None:
            return None
        return CardOnFile(row["card_id"], CardColour(row["card_colour"]), row["card_revoked"])


class PgEligibilityFeed:
    """``services.orders.eligibility.EligibilityFeed`` on the pool: rows and bookings in one query,
    so one snapshot; health checks judged on the Beijing day of the query."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock | None = None) -> None:
        self._pool = pool
        self._clock = clock or SystemClock()

    async def changed_since(self, revision: int, limit: int) -> list[tuple[int, WorkerEligibility]]:
        rows = await self._pool.fetch(_CHANGED_SINCE, revision, limit)
        today = beijing_today(self._clock)
        return [(row["revision"], eligibility_of(_record(row), _bookings(row), today)) for row in rows]


def _record(row: asyncpg.Record) -> EligibilityRecord:
    return EligibilityRecord(
        worker_id=row["worker_id"],
        company_id=row["company_id"],
        home_district=row["home_district"],
        districts=tuple(row["districts"]),
        trades=_trades(tuple(row["trades"])),
        skill_level=row["skill_level"],
        health_tier=None if row["health_tier"] is None else _HEALTH_TIERS[row["health_tier"]],
        health_valid_until=row["health_valid_until"],
        card_id=row["card_id"],
        card_colour=_CARD_COLOURS[row["card_colour"]],
        card_revoked=row["card_revoked"],
        credit_level=None if row["credit_level"] is None else _CREDIT_LEVELS[row["credit_level"]],
        rating_total=row["rating_total"],
        rating_count=row["rating_count"],
        weekly_slots=_weekly_slots(row["weekly_slots"]),
        leaves=_leaves(row["leaves"]),
    )


# Decoding a row is most of a catch-up's work, and most rows share their slots, trades and enums:
# each distinct value is decoded once (all of them immutable, so shared safely).
_HEALTH_TIERS = {int(tier): tier for tier in HealthTier}
_CARD_COLOURS = {colour.value: colour for colour in CardColour}
_CREDIT_LEVELS = {level.value: level for level in CreditLevel}


@functools.lru_cache(maxsize=1024)
def _trades(names: tuple[str, ...]) -> tuple[Trade, ...]:
    return tuple(Trade(name) for name in names)


@functools.lru_cache(maxsize=4096)
def _weekly_slots(text: str) -> tuple[WeeklySlot, ...]:
    return tuple(WeeklySlot(*slot) for slot in json.loads(text))


@functools.lru_cache(maxsize=4096)
def _leaves(text: str) -> tuple[Interval, ...]:
    return tuple(
        Interval(datetime.fromisoformat(start), datetime.fromisoformat(end))
        for start, end in json.loads(text)
    )


def _bookings(row: asyncpg.Record) -> list[Interval]:
    starts = row["starts"]
    if starts is None:  # most workers: no booking
        return []
    return [Interval(start, end) for start, end in zip(starts, row["ends"], strict=True)]


def _slots_json(slots: Sequence[WeeklySlot]) -> str:
    return json.dumps([list(slot) for slot in slots])


def _leaves_json(leaves: Sequence[Interval]) -> str:
    return json.dumps([[leave.start.isoformat(), leave.end.isoformat()] for leave in leaves])
