"""Credit read paths: a worker's ledger, a page at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

from libs.common.paging import decode_token, encode_token, page_size
from services.credit.domain import LedgerEntry


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
