"""Companies' credit on asyncpg (migration 0004: company_decisions, company_complaints,
company_grades), with the company's workers read from worker_profiles and worker_scores."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from services.credit import model
from services.credit.companies import CaseHandling, Decision, DecisionKind, RecordedDecision

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
_PUT_GRADE = """
INSERT INTO company_grades (company_id, grade, points, model_version, graded_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (company_id) DO UPDATE SET grade = EXCLUDED.grade, points = EXCLUDED.points,
    model_version = EXCLUDED.model_version, graded_at = EXCLUDED.graded_at
"""


def _decision(row: asyncpg.Record) -> RecordedDecision:
    decision = Decision(DecisionKind(row["kind"]), row["reason"], row["decision_date"])
    return RecordedDecision(
        row["decision_id"], row["company_id"], row["request_id"], decision, row["recorded_at"]
    )


class PgCompanies:
    """``services.credit.companies.CompanyRepository`` in the unit of work's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock(self, company_id: str) -> None:
        # A transaction-scoped advisory lock: a company may have no row to lock yet.
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('credit.company:' || $1, 0))", company_id
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

    async def decisions_of(self, company_id: str) -> list[RecordedDecision]:
        rows = await self._conn.fetch(
            "SELECT * FROM company_decisions WHERE company_id = $1 ORDER BY decision_date, recorded_at",
            company_id,
        )
        return [_decision(r) for r in rows]

    async def case_filed(self, case_id: str, company_id: str, filed_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO company_complaints (case_id, company_id, filed_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (case_id) DO NOTHING",
            case_id,
            company_id,
            filed_at,
        )

    async def case_answered(self, case_id: str, response_seconds: int) -> str | None:
        company_id: str | None = await self._conn.fetchval(
            "UPDATE company_complaints SET response_seconds = COALESCE(response_seconds, $2)"
            " WHERE case_id = $1 RETURNING company_id",
            case_id,
            response_seconds,
        )
        return company_id

    async def case_resolved(self, case_id: str, company_id: str, filed_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO company_complaints (case_id, company_id, filed_at, resolved)"
            " VALUES ($1, $2, $3, true) ON CONFLICT (case_id) DO UPDATE SET resolved = true",
            case_id,
            company_id,
            filed_at,
        )

    async def cases_of(self, company_id: str) -> list[CaseHandling]:
        rows = await self._conn.fetch(
            "SELECT case_id, filed_at, response_seconds, resolved FROM company_complaints"
            " WHERE company_id = $1",
            company_id,
        )
        return [CaseHandling(r["case_id"], r["filed_at"], r["response_seconds"], r["resolved"]) for r in rows]

    async def worker_scores(self, company_id: str) -> list[int]:
        rows = await self._conn.fetch(
            "SELECT s.score FROM worker_profiles p JOIN worker_scores s ON s.worker_id = p.worker_id"
            " WHERE p.company_id = $1",
            company_id,
        )
        return [r["score"] for r in rows]

    async def put_grade(self, company_id: str, grade: model.CompanyGrade) -> None:
        await self._conn.execute(
            _PUT_GRADE, company_id, grade.grade.value, grade.points, grade.model_version, grade.graded_at
        )

    async def known(self, company_id: str) -> bool:
        return bool(await self._conn.fetchval(_KNOWN, company_id))
