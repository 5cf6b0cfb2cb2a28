"""Credit ledger persistence on asyncpg: the repository and the service's unit of work."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta

import asyncpg

from libs.common.db import PgUnitOfWork
from libs.common.uow import Clock
from services.credit.companies import REGRADE_DELAY
from services.credit.company_store import PgCompanies
from services.credit.domain import LedgerEntry
from services.credit.model import Fact, Level
from services.credit.queries import PgOperatorEntries, PgWorkerLookups, fact_of
from services.credit.scoring import Grant, StoredScore

# One statement for a whole batch of entries: the rows travel as arrays.
_ADD_MANY = """
INSERT INTO ledger_entries (worker_id, event_id, event_type, score_delta, reason, rule_version,
                            trace_id, occurred_at, kind, magnitude, detail)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[],
                     $7::text[], $8::timestamptz[], $9::text[], $10::int[], $11::text[])
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
            [e.kind.value for e in entries],
            [e.magnitude for e in entries],
            [e.detail for e in entries],
        )


class PgFactReads:
    """A worker's facts, for evaluation (in the unit of work's transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def facts_of_many(self, worker_ids: Sequence[str]) -> dict[str, list[Fact]]:
        rows = await self._conn.fetch(
            "SELECT event_id, worker_id, kind, occurred_at, magnitude, detail, event_type FROM ledger_entries"
            " WHERE worker_id = ANY($1::text[]) ORDER BY worker_id, seq",
            list(worker_ids),
        )
        facts: dict[str, list[Fact]] = {}
        for row in rows:
            facts.setdefault(row["worker_id"], []).append(fact_of(row))
        return facts


class PgScores:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def get_many(self, worker_ids: Sequence[str]) -> dict[str, StoredScore]:
        rows = await self._conn.fetch(
            "SELECT * FROM worker_scores WHERE worker_id = ANY($1::text[]) ORDER BY worker_id FOR UPDATE",
            list(worker_ids),
        )
        return {
            row["worker_id"]: StoredScore(
                row["score"], Level(row["level"]), row["model_version"], row["evaluated_at"]
            )
            for row in rows
        }

    async def put_many(self, scores: Mapping[str, StoredScore]) -> None:
        if not scores:
            return
        stored = list(scores.values())
        await self._conn.execute(
            "INSERT INTO worker_scores (worker_id, score, level, model_version, evaluated_at)"
            " SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::timestamptz[])"
            " ON CONFLICT (worker_id) DO UPDATE SET score = EXCLUDED.score,"
            " level = EXCLUDED.level, model_version = EXCLUDED.model_version,"
            " evaluated_at = EXCLUDED.evaluated_at",
            list(scores),
            [s.score for s in stored],
            [s.level.value for s in stored],
            [s.model_version for s in stored],
            [s.evaluated_at for s in stored],
        )


class PgProfiles:
    """The employer and the card colour of each worker, from the workers service's events; and the
    workers' consent grants."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def set_company(self, worker_id: str, company_id: str) -> None:
        await self._conn.execute(
            "INSERT INTO worker_profiles (worker_id, company_id) VALUES ($1, $2)"
            " ON CONFLICT (worker_id) DO UPDATE SET company_id = EXCLUDED.company_id",
            worker_id,
            company_id,
        )

    async def companies_of(self, worker_ids: Collection[str]) -> set[str]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT company_id FROM worker_profiles WHERE worker_id = ANY($1::text[])"
            " AND company_id <> ''",
            list(worker_ids),
        )
        return {r["company_id"] for r in rows}

    async def set_card_colours(self, colours: Mapping[str, str]) -> None:
        ids = sorted(colours)  # rows locked in one order
        await self._conn.execute(
            "INSERT INTO worker_profiles (worker_id, card_colour)"
            " SELECT * FROM unnest($1::text[], $2::text[])"
            " ON CONFLICT (worker_id) DO UPDATE SET card_colour = EXCLUDED.card_colour",
            ids,
            [colours[w] for w in ids],
        )

    async def grant(self, grant: Grant) -> None:
        await self._conn.execute(
            "INSERT INTO consent_grants (grant_id, worker_id, platform_id, consumer_ref, expires_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (grant_id) DO NOTHING",
            grant.grant_id,
            grant.worker_id,
            grant.platform_id,
            grant.consumer_ref,
            grant.expires_at,
        )

    async def revoke(self, grant_id: str) -> None:
        await self._conn.execute("UPDATE consent_grants SET revoked = true WHERE grant_id = $1", grant_id)


class PgCreditUnitOfWork(PgUnitOfWork):
    """Credit's unit of work; ``company_regrade_delay`` is how soon a company whose workers changed
    is regraded."""

    ledger: PgLedgerRepository
    facts: PgFactReads
    scores: PgScores
    profiles: PgProfiles
    companies: PgCompanies
    lookups: PgWorkerLookups
    operator_entries: PgOperatorEntries
    # What this transaction's effects leave to the poll's settle step (services.credit.handlers).
    to_rescore: dict[str, dict[str, str]]
    to_regrade: set[str]

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock | None = None,
        acquire_timeout_s: float = 5.0,
        company_regrade_delay: timedelta = REGRADE_DELAY,
    ) -> None:
        super().__init__(pool, clock, acquire_timeout_s)
        self.company_regrade_delay = company_regrade_delay

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.ledger = PgLedgerRepository(conn)
        self.facts = PgFactReads(conn)
        self.scores = PgScores(conn)
        self.profiles = PgProfiles(conn)
        self.companies = PgCompanies(conn)
        self.lookups = PgWorkerLookups(conn)
        self.operator_entries = PgOperatorEntries(conn)
        self.to_rescore = {}
        self.to_regrade = set()
