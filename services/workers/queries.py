"""Workers read paths: what a caller may see, masked, straight from the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

from libs.common.auth import Principal, Role
from libs.common.errors import NotFound, PermissionDenied
from libs.common.paging import Moment, moment_page, uuid_moment
from services.workers import domain as d
from services.workers.service_layer import CardHolder, PublicWorkerView, StoredStatus, may_manage
from services.workers.store import company_from_row, employment_from_row

Registered = tuple[datetime, uuid.UUID]
"""A worker's place in a listing: when they were registered, their id between workers of one instant."""


@dataclass(frozen=True)
class WorkerView:
    """A worker as responses show one: personal data only in masked form."""

    worker_id: uuid.UUID
    company_id: uuid.UUID
    masked_id_number: str
    masked_name: str
    masked_mobile: str
    photo_ref: str
    service_districts: tuple[str, ...]
    trades: tuple[d.Trade, ...]
    origin_province: str | None
    skill_level: d.SkillLevel | None
    colour: d.CardColour | None
    reasons: tuple[d.Reason, ...]
    employments: tuple[d.Employment, ...]
    registered_at: datetime


@dataclass(frozen=True)
class WorkerFilter:
    company_id: uuid.UUID | None  # None: every company (operators)
    district_code: str | None = None
    trade: d.Trade | None = None
    min_skill_level: d.SkillLevel | None = None
    colour: d.CardColour | None = None

    def scope(self) -> str:
        return repr((self.company_id, self.district_code, self.trade, self.min_skill_level, self.colour))


class WorkerReads(Protocol):
    async def company(self, company_id: uuid.UUID) -> d.Company | None: ...

    async def worker(self, worker_id: uuid.UUID) -> WorkerView | None: ...

    async def workers(self, where: WorkerFilter, after: Registered | None, limit: int) -> list[WorkerView]:
        """Up to ``limit`` workers of ``where``, in registration order (oldest first), after ``after``."""
        ...


async def get_company(reads: WorkerReads, principal: Principal, company_id: uuid.UUID) -> d.Company:
    may_manage(principal, company_id)
    company = await reads.company(company_id)
    if company is None:
        raise NotFound(f"companies/{company_id}")
    return company


async def get_worker(reads: WorkerReads, principal: Principal, worker_id: uuid.UUID) -> WorkerView:
    worker = await reads.worker(worker_id)
    if worker is None:
        raise NotFound(f"workers/{worker_id}")
    may_manage(principal, worker.company_id)
    return worker


async def list_workers(
    reads: WorkerReads, principal: Principal, where: WorkerFilter, size: int, token: str
) -> tuple[list[WorkerView], str]:
    """A page of workers, oldest registered first, and the token of the next page ('' after the last)."""
    if where.company_id is None and principal.role is not Role.OPERATOR:
        raise PermissionDenied("only operators list the workers of every company")
    if where.company_id is not None:
        may_manage(principal, where.company_id)

    async def fetch(after: Moment | None, limit: int) -> list[WorkerView]:
        return await reads.workers(where, None if after is None else uuid_moment(after), limit)

    return await moment_page(token, size, where.scope(), fetch, lambda w: (w.registered_at, str(w.worker_id)))


_WORKER = "SELECT w.*, s.colour, s.reasons FROM workers w LEFT JOIN card_status s USING (worker_id)"


class PgWorkerReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def company(self, company_id: uuid.UUID) -> d.Company | None:
        row = await self._pool.fetchrow("SELECT * FROM companies WHERE company_id = $1", company_id)
        return company_from_row(row) if row else None

    async def worker(self, worker_id: uuid.UUID) -> WorkerView | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"{_WORKER} WHERE w.worker_id = $1", worker_id)
            if row is None:
                return None
            return _view(row, await _employments(conn, [worker_id]))

    async def workers(self, where: WorkerFilter, after: Registered | None, limit: int) -> list[WorkerView]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"{_WORKER} WHERE ($1::uuid IS NULL OR w.company_id = $1)"
                " AND ($2::text IS NULL OR $2 = ANY (w.service_districts))"
                " AND ($3::text IS NULL OR $3 = ANY (w.trades))"
                " AND ($4::int IS NULL OR w.skill_level >= $4)"
                " AND ($5::text IS NULL OR s.colour = $5)"
                " AND ($6::timestamptz IS NULL OR (w.registered_at, w.worker_id) > ($6, $7::uuid))"
                " ORDER BY w.registered_at, w.worker_id LIMIT $8",
                where.company_id,
                where.district_code,
                where.trade,
                int(where.min_skill_level) if where.min_skill_level else None,
                where.colour,
                after and after[0],
                after and after[1],
                limit,
            )
            history = await _employments(conn, [r["worker_id"] for r in rows])
        return [_view(r, history) for r in rows]


async def _employments(
    conn: asyncpg.Connection, worker_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[d.Employment, ...]]:
    rows = await conn.fetch(
        "SELECT * FROM employments WHERE worker_id = ANY ($1) ORDER BY worker_id, started_at", worker_ids
    )
    history: dict[uuid.UUID, list[d.Employment]] = {}
    for r in rows:
        history.setdefault(r["worker_id"], []).append(employment_from_row(r))
    return {k: tuple(v) for k, v in history.items()}


def _view(row: asyncpg.Record, history: dict[uuid.UUID, tuple[d.Employment, ...]]) -> WorkerView:
    return WorkerView(
        worker_id=row["worker_id"],
        company_id=row["company_id"],
        masked_id_number=row["id_number_masked"],
        masked_name=row["name_masked"],
        masked_mobile=row["mobile_masked"],
        photo_ref=row["photo_ref"],
        service_districts=tuple(row["service_districts"]),
        trades=tuple(d.Trade(t) for t in row["trades"]),
        origin_province=row["origin_province"],
        skill_level=d.SkillLevel(row["skill_level"]) if row["skill_level"] else None,
        colour=d.CardColour(row["colour"]) if row["colour"] else None,
        reasons=tuple(d.Reason(r) for r in row["reasons"] or ()),
        employments=history.get(row["worker_id"], ()),
        registered_at=row["registered_at"],
    )


_HOLDER = (
    "SELECT c.worker_id, c.revoked_at IS NOT NULL AS revoked, s.colour, s.reasons, s.credit_level,"
    " s.insured_until, w.photo_ref, w.name_masked, w.trades, w.skill_level, co.display_name,"
    " (SELECT max(h.valid_until) FROM health_checks h WHERE h.worker_id = c.worker_id) AS health_until"
    " FROM cards c JOIN workers w USING (worker_id) JOIN card_status s USING (worker_id)"
    " JOIN companies co ON co.company_id = w.company_id WHERE c.card_id = $1"
)


class PgCardHolders:
    """The card a scanned token names, with its holder's colour and public view, in one query."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def holder(self, card_id: uuid.UUID) -> CardHolder | None:
        row = await self._pool.fetchrow(_HOLDER, card_id)
        if row is None:
            return None
        status = StoredStatus(d.CardColour(row["colour"]), tuple(d.Reason(r) for r in row["reasons"]))
        return CardHolder(row["worker_id"], row["revoked"], status, _public_view(row))


def _public_view(row: asyncpg.Record) -> PublicWorkerView:
    return PublicWorkerView(
        photo_ref=row["photo_ref"],
        masked_name=row["name_masked"],
        company_name=row["display_name"],
        trades=tuple(d.Trade(t) for t in row["trades"]),
        skill_level=d.SkillLevel(row["skill_level"]) if row["skill_level"] else None,
        health_check_valid_until=row["health_until"],
        insured_until=row["insured_until"],
        credit_level=row["credit_level"],
    )
