"""Companies' credit on asyncpg (migration 0004: company_decisions, company_complaints,
company_grades), with the company's workers read from worker_profiles and worker_scores."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

import asyncpg

from services.credit import model
from services.credit.companies import CaseHandling, CompanyCase, Decision, DecisionKind, RecordedDecision

T = TypeVar("T")

_ADD_DECISION = """
INSERT INTO company_decisions (decision_id, company_id, request_id, kind, reason, decision_date, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (request_id) DO NOTHING RETURNING true
"""
_KNOWN = """
SELECT EXISTS (SELECT 1 FROM company_decisions WHERE company_id = $1)
    OR EXISTS (SELECT 1 FROM company_complaints WHERE company_id = $1)
    OR EXISTS (SELECT 1 FROM worker_profiles WHERE company_id = $1)
    OR EXISTS (SELECT 1 FROM company_grades WHERE company_id = $1)
"""
_CASE_FILED = (
    "INSERT INTO company_complaints (case_id, company_id, filed_at) VALUES ($1, $2, $3)"
    " ON CONFLICT (case_id) DO NOTHING"
)
_CASE_RESOLVED = (
    "INSERT INTO company_complaints (case_id, company_id, filed_at, resolved)"
    " VALUES ($1, $2, $3, true) ON CONFLICT (case_id) DO UPDATE SET resolved = true"
)
_PUT_GRADES = """
INSERT INTO company_grades (company_id, grade, points, model_version, graded_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::timestamptz[])
ON CONFLICT (company_id) DO UPDATE SET grade = EXCLUDED.grade, points = EXCLUDED.points,
    model_version = EXCLUDED.model_version, graded_at = EXCLUDED.graded_at
"""


def _by_company(rows: Iterable[asyncpg.Record], item: Callable[[asyncpg.Record], T]) -> dict[str, list[T]]:
    """Each row's ``item`` under its ``company_id``, in the rows' order."""
    grouped: dict[str, list[T]] = {}
    for row in rows:
        grouped.setdefault(row["company_id"], []).append(item(row))
    return grouped


def _decision(row: asyncpg.Record) -> RecordedDecision:
    decision = Decision(DecisionKind(row["kind"]), row["reason"], row["decision_date"])
    return RecordedDecision(
        row["decision_id"], row["company_id"], row["request_id"], decision, row["recorded_at"]
    )


class PgCompanies:
    """``services.credit.companies.CompanyRepository`` in the unit of work's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock(self, company_ids: Sequence[str]) -> None:
        # Transaction-scoped advisory locks (a company may have no row to lock yet), taken row by
        # row in the array's order: no ORDER BY, which may evaluate the locks before sorting.
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('credit.company:' || c, 0))"
            " FROM unnest($1::text[]) AS c",
            list(company_ids),
        )

    async def decision_by_request(self, request_id: uuid.UUID) -> RecordedDecision | None:
        row = await self._conn.fetchrow("SELECT * FROM company_decisions WHERE request_id = $1", request_id)
        return _decision(row) if row else None

    async def add_decision(self, decision: RecordedDecision) -> RecordedDecision | None:
        d = decision.decision
        inserted = await self._conn.fetchval(
            _ADD_DECISION,
            decision.decision_id,
            decision.company_id,
            decision.request_id,
            d.kind.value,
            d.reason,
            d.decided_on,
            decision.recorded_at,
        )
        return None if inserted else await self.decision_by_request(decision.request_id)

    async def decisions_of(self, company_ids: Sequence[str]) -> dict[str, list[RecordedDecision]]:
        rows = await self._conn.fetch(
            "SELECT * FROM company_decisions WHERE company_id = ANY($1::text[])"
            " ORDER BY company_id, decision_date, recorded_at",
            list(company_ids),
        )
        return _by_company(rows, _decision)

    async def cases_filed(self, cases: Sequence[CompanyCase]) -> None:
        await self._store_cases(_CASE_FILED, cases)

    async def cases_answered(self, answers: Sequence[tuple[str, int]]) -> list[str | None]:
        if not answers:
            return []
        # One row for each answer, in order, whether the case is known or not.
        rows = await self._conn.fetchmany(
            "WITH answered AS (UPDATE company_complaints"
            " SET response_seconds = COALESCE(response_seconds, $2)"
            " WHERE case_id = $1 RETURNING company_id)"
            " SELECT (SELECT company_id FROM answered) AS company_id",
            answers,
        )
        return [r["company_id"] for r in rows]

    async def cases_resolved(self, cases: Sequence[CompanyCase]) -> None:
        await self._store_cases(_CASE_RESOLVED, cases)

    async def _store_cases(self, sql: str, cases: Sequence[CompanyCase]) -> None:
        """``sql`` for each case (its id, company and filing time), pipelined: one round trip."""
        if cases:
            await self._conn.executemany(sql, [(c.case_id, c.company_id, c.filed_at) for c in cases])

    async def cases_of(self, company_ids: Sequence[str]) -> dict[str, list[CaseHandling]]:
        rows = await self._conn.fetch(
            "SELECT company_id, case_id, filed_at, response_seconds, resolved FROM company_complaints"
            " WHERE company_id = ANY($1::text[])",
            list(company_ids),
        )
        return _by_company(
            rows, lambda r: CaseHandling(r["case_id"], r["filed_at"], r["response_seconds"], r["resolved"])
        )

    async def worker_scores(self, company_ids: Sequence[str]) -> dict[str, list[int]]:
        rows = await self._conn.fetch(
            "SELECT p.company_id, s.score FROM worker_profiles p"
            " JOIN worker_scores s ON s.worker_id = p.worker_id WHERE p.company_id = ANY($1::text[])",
            list(company_ids),
        )
        return _by_company(rows, lambda r: int(r["score"]))

    async def put_grades(self, grades: Mapping[str, model.CompanyGrade]) -> None:
        if grades:
            ids = sorted(grades)
            graded = [grades[c] for c in ids]
            await self._conn.execute(
                _PUT_GRADES,
                ids,
                [g.grade.value for g in graded],
                [g.points for g in graded],
                [g.model_version for g in graded],
                [g.graded_at for g in graded],
            )

    async def known(self, company_id: str) -> bool:
        return bool(await self._conn.fetchval(_KNOWN, company_id))
