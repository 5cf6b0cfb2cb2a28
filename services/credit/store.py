"""Credit ledger persistence on asyncpg: the repository and the service's unit of work."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from libs.common.db import PgUnitOfWork
from services.credit.domain import LedgerEntry

# One statement for a whole batch of entries: the rows travel as arrays.
_ADD_MANY = """
INSERT INTO ledger_entries (worker_id, event_id, event_type, score_delta, reason, rule_version,
                            trace_id, occurred_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[],
                     $7::text[], $8::timestamptz[])
"""


class PgLedgerRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add_many(self, entries: Sequence[LedgerEntry]) -> None:
        if not entries:
            return
        await self._conn.execute(
            _ADD_MANY,
            [e.worker_id for e in entries],
            [e.event_id for e in entries],
            [e.event_type for e in entries],
            [e.score_delta for e in entries],
            [e.reason for e in entries],
            [e.rule_version for e in entries],
            [e.trace_id for e in entries],
            [e.occurred_at for e in entries],
        )


class PgCreditUnitOfWork(PgUnitOfWork):
    ledger: PgLedgerRepository

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.ledger = PgLedgerRepository(conn)
