"""Credit ledger persistence (asyncpg)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.credit.domain import LedgerEntry


@dataclass(frozen=True)
class RecordedEntry:
    seq: int
    entry_id: uuid.UUID
    entry: LedgerEntry
    recorded_at: datetime


class LedgerRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, entry: LedgerEntry) -> None:
        await self._conn.execute(
            "INSERT INTO ledger_entries (entry_id, worker_id, event_id, event_type, score_delta, reason,"
            " rule_version, trace_id, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            uuid.uuid4(),
            entry.worker_id,
            entry.event_id,
            entry.event_type,
            entry.score_delta,
            entry.reason,
            entry.rule_version,
            entry.trace_id,
            entry.occurred_at,
        )

    async def list_for_worker(self, worker_id: str, after_seq: int, limit: int) -> list[RecordedEntry]:
        rows = await self._conn.fetch(
            "SELECT * FROM ledger_entries WHERE worker_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            worker_id,
            after_seq,
            limit,
        )
        return [
            RecordedEntry(
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
            for r in rows
        ]
