"""Credit read paths: a worker's ledger, a page at a time; what a lookup reads (the worker's profile,
the employer's grade and the facts, in one read; consent grants); and the request ids of operators'
entries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

from libs.common.paging import decode_token, encode_token, page_size
from services.credit.domain import LedgerEntry
from services.credit.lookups import Profile
from services.credit.model import Fact, FactKind


@dataclass(frozen=True)
class RecordedEntry:
    """A ledger entry as recorded: its position, id and when credit recorded it."""

    seq: int
    entry_id: uuid.UUID
    entry: LedgerEntry
    recorded_at: datetime


class LedgerReads(Protocol):
    async def list_for_worker(self, worker_id: str, after_seq: int, limit: int) -> list[RecordedEntry]: ...


async def ledger_page(
    reads: LedgerReads, worker_id: str, page_token: str, requested_size: int
) -> tuple[list[RecordedEntry], str]:
    """A page of the worker's entries, oldest first, and the token of the next page ('' at the end)."""
    after, limit = decode_token(page_token), page_size(requested_size)
    page = await reads.list_for_worker(worker_id, after, limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return page, encode_token(page[-1].seq) if more else ""


class PgLedgerReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list_for_worker(self, worker_id: str, after_seq: int, limit: int) -> list[RecordedEntry]:
        rows = await self._pool.fetch(
            "SELECT * FROM ledger_entries WHERE worker_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            worker_id,
            after_seq,
            limit,
        )
        return [_recorded(r) for r in rows]


def _recorded(r: asyncpg.Record) -> RecordedEntry:
    return RecordedEntry(
        seq=r["seq"],
        entry_id=r["entry_id"],
        recorded_at=r["recorded_at"],
        entry=LedgerEntry(
            worker_id=r["worker_id"],
            event_id=r["event_id"],
            event_type=r["event_type"],
            score_delta=r["score_delta"],
            reason=r["reason"],
            rule_version=r["rule_version"],
            trace_id=r["trace_id"],
            occurred_at=r["occurred_at"],
        ),
    )


def fact_of(row: asyncpg.Record) -> Fact:
    """A ledger entry's row as the model reads it."""
    return Fact(
        row["event_id"],
        row["worker_id"],
        FactKind(row["kind"]),
        row["occurred_at"],
        row["magnitude"],
        row["detail"],
        row["event_type"],
    )


# A worker credit knows of has a profile (from the workers service), a score or a ledger entry. One
# row per ledger entry of the worker (in ledger order), or one row with no entry: the profile and
# the facts in one read, of one snapshot.
_RECORD = """
SELECT p.company_id, p.card_colour, g.grade,
       p.worker_id IS NOT NULL
       OR EXISTS (SELECT 1 FROM worker_scores WHERE worker_id = $1)
       OR e.worker_id IS NOT NULL AS known,
       e.event_id, e.worker_id, e.kind, e.occurred_at, e.magnitude, e.detail, e.event_type
FROM (SELECT $1::text AS worker_id) AS asked
LEFT JOIN worker_profiles p USING (worker_id)
LEFT JOIN company_grades g ON g.company_id = p.company_id
LEFT JOIN ledger_entries e ON e.worker_id = asked.worker_id
ORDER BY e.seq
"""
_GRANT_VALID = """
SELECT EXISTS (SELECT 1 FROM consent_grants WHERE worker_id = $1 AND platform_id = $2
               AND consumer_ref = $3 AND NOT revoked AND expires_at > $4)
"""


class PgWorkerLookups:
    """``lookups.WorkerLookups`` in the unit of work's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def record_of(self, worker_id: str) -> tuple[Profile, list[Fact]] | None:
        rows = await self._conn.fetch(_RECORD, worker_id)
        first = rows[0]
        if not first["known"]:
            return None
        profile = Profile(first["company_id"] or "", first["card_colour"] or "", first["grade"] or "")
        return profile, [fact_of(r) for r in rows if r["event_id"] is not None]

    async def grant_valid(self, worker_id: str, platform_id: str, consumer_ref: str, at: datetime) -> bool:
        return bool(await self._conn.fetchval(_GRANT_VALID, worker_id, platform_id, consumer_ref, at))


class PgOperatorEntries:
    """``lookups.OperatorEntries``: one row per operator's request (operator_entries)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def claim(self, request_id: uuid.UUID, worker_id: str, at: datetime) -> str | None:
        # A concurrent claim of the same id waits for the first to commit, then finds its row.
        claimed = await self._conn.fetchval(
            "INSERT INTO operator_entries (request_id, worker_id, recorded_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
            request_id,
            worker_id,
            at,
        )
        if claimed is not None:
            return None
        earlier: str = await self._conn.fetchval(
            "SELECT worker_id FROM operator_entries WHERE request_id = $1", request_id
        )
        return earlier
