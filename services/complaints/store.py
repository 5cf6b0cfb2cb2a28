"""Complaints persistence on asyncpg: the repositories of service_layer/ports.py and the service's
unit of work.

A case's description and its mediation agreement are personal data: sealed on their way into the
tables (libs.common.pii) and opened only when a case is read back for the use cases.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

import asyncpg

from libs.common.db import PgSealingUnitOfWork
from libs.common.pii import Keyring
from services.complaints import domain
from services.complaints.service_layer.ports import KnownOrder, Workload

DESCRIPTION = "complaints.case.description"
AGREEMENT = "complaints.case.agreement"


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def agreement_json(agreement: domain.Agreement) -> str:
    """The agreement as the JSON that is sealed into ``agreement_sealed``."""
    undertakings = [
        {"party": u.party.value, "action": u.action, "due": u.due.isoformat()} for u in agreement.undertakings
    ]
    document = {"facts": agreement.facts, "responsibility": agreement.responsibility}
    return json.dumps({**document, "undertakings": undertakings}, ensure_ascii=False)


def agreement_from_json(text: str) -> domain.Agreement:
    document = json.loads(text)
    undertakings = tuple(
        domain.Undertaking(domain.PartyKind(u["party"]), u["action"], date.fromisoformat(u["due"]))
        for u in document["undertakings"]
    )
    return domain.Agreement(document["facts"], document["responsibility"], undertakings)


def _filing(row: asyncpg.Record, description: str) -> domain.Filing:
    return domain.Filing(
        kind=domain.CaseKind(row["kind"]),
        category=domain.Category(row["category"]),
        severity=domain.Severity(row["severity"]),
        complainant=domain.PartyKind(row["complainant"]),
        respondent=domain.PartyKind(row["respondent"]),
        description=description,
        platform_id=row["platform_id"],
        order_id=row["order_id"],
        worker_id=row["worker_id"],
        company_id=row["company_id"],
        district_code=row["district_code"],
        evidence_refs=tuple(row["evidence_refs"]),
        employee_model=row["employee_model"],
        filed_by=row["filed_by"],
    )


def _deadline(row: asyncpg.Record) -> domain.Deadline | None:
    kind = row["deadline_kind"]
    return None if kind is None else domain.Deadline(domain.DeadlineKind(kind), row["deadline_at"])


def _outcome(row: asyncpg.Record) -> domain.Outcome | None:
    result = row["outcome_result"]
    if result is None:
        return None
    at_fault = _optional(row["outcome_at_fault"], domain.PartyKind)
    return domain.Outcome(domain.OutcomeResult(result), at_fault, row["outcome_compensation_fen"])


_INSERT_CASE = (
    "INSERT INTO cases (case_id, filer, request_id, kind, category, severity, complainant, respondent,"
    " description_sealed, platform_id, order_id, worker_id, company_id, district_code, evidence_refs,"
    " employee_model, filed_by, filed_at, state, deadline_kind, deadline_at, responded_at, body, mediator,"
    " lease_until, outcome_result, outcome_at_fault, outcome_compensation_fen, agreement_sealed, route,"
    " resolved_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
    " $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31)"
    " ON CONFLICT (filer, request_id) DO NOTHING RETURNING true"
)
# SET expressions read the row as it was: closed_by is set when the state becomes resolved (to
# resolved_by) or escalated (to the mediator who held the case, as escalating clears mediator).
_UPDATE_CASE = (
    "UPDATE cases SET state = $2, deadline_kind = $3, deadline_at = $4, responded_at = $5, body = $6,"
    " mediator = $7, lease_until = $8, outcome_result = $9, outcome_at_fault = $10,"
    " outcome_compensation_fen = $11, agreement_sealed = $12, route = $13, resolved_by = $14,"
    " closed_by = CASE WHEN state = $2 THEN closed_by WHEN $2 = 'resolved' THEN $14"
    " WHEN $2 = 'escalated' THEN mediator ELSE closed_by END,"
    " updated_at = now() WHERE case_id = $1"
)
_QUEUE_ORDER = "ORDER BY severity DESC, deadline_at, filed_at, case_id"
_WORKLOAD = (
    "SELECT mediator, count(*) FILTER (WHERE NOT closed) AS held, count(*) FILTER (WHERE closed) AS closed"
    " FROM (SELECT mediator, false AS closed FROM cases"
    "       WHERE body = $1 AND state = 'in_mediation' AND mediator IS NOT NULL AND lease_until > $2"
    "       UNION ALL SELECT closed_by, true FROM cases WHERE body = $1 AND closed_by IS NOT NULL) AS work"
    " GROUP BY mediator ORDER BY mediator"
)


class PgCaseRepository:
    def __init__(self, conn: asyncpg.Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring

    def _case(self, row: asyncpg.Record) -> domain.Case:
        sealed = row["agreement_sealed"]
        return domain.Case(
            case_id=row["case_id"],
            filing=_filing(row, self._keyring.open(row["description_sealed"], DESCRIPTION)),
            state=domain.CaseState(row["state"]),
            filed_at=row["filed_at"],
            deadline=_deadline(row),
            responded_at=row["responded_at"],
            body=_optional(row["body"], domain.MediationBody),
            mediator=row["mediator"],
            lease_until=row["lease_until"],
            outcome=_outcome(row),
            agreement=None if sealed is None else agreement_from_json(self._keyring.open(sealed, AGREEMENT)),
            route=_optional(row["route"], domain.EscalationRoute),
            resolved_by=row["resolved_by"],
        )

    def _workflow(self, case: domain.Case) -> tuple[Any, ...]:
        """The values of the columns a transition changes, in _UPDATE_CASE's order."""
        deadline, outcome, agreement = case.deadline, case.outcome, case.agreement
        return (
            case.state,
            deadline and deadline.kind,
            deadline and deadline.due_at,
            case.responded_at,
            case.body,
            case.mediator,
            case.lease_until,
            outcome and outcome.result,
            outcome and outcome.at_fault,
            outcome and outcome.compensation_fen,
            agreement and self._keyring.seal(agreement_json(agreement), AGREEMENT),
            case.route,
            case.resolved_by,
        )

    async def add_once(self, case: domain.Case, filer: str, request_id: uuid.UUID) -> domain.Case | None:
        f = case.filing
        inserted = await self._conn.fetchval(
            _INSERT_CASE,
            case.case_id,
            filer,
            request_id,
            f.kind,
            f.category,
            f.severity,
            f.complainant,
            f.respondent,
            self._keyring.seal(f.description, DESCRIPTION),
            f.platform_id,
            f.order_id,
            f.worker_id,
            f.company_id,
            f.district_code,
            list(f.evidence_refs),
            f.employee_model,
            f.filed_by,
            case.filed_at,
            *self._workflow(case),
        )
        if inserted:
            return None
        return await self._one("SELECT * FROM cases WHERE filer = $1 AND request_id = $2", filer, request_id)

    async def _one(self, query: str, *args: Any) -> domain.Case | None:
        row = await self._conn.fetchrow(query, *args)
        return self._case(row) if row else None

    async def get(self, case_id: uuid.UUID) -> domain.Case | None:
        return await self._one("SELECT * FROM cases WHERE case_id = $1", case_id)

    async def get_for_update(self, case_id: uuid.UUID) -> domain.Case | None:
        return await self._one("SELECT * FROM cases WHERE case_id = $1 FOR UPDATE", case_id)

    async def update(self, case: domain.Case) -> None:
        await self._conn.execute(_UPDATE_CASE, case.case_id, *self._workflow(case))

    async def next_claimable(self, body: domain.MediationBody, now: datetime) -> domain.Case | None:
        return await self._one(
            "SELECT * FROM cases WHERE state = 'in_mediation' AND body = $1"
            f" AND (lease_until IS NULL OR lease_until <= $2) {_QUEUE_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED",
            body,
            now,
        )

    async def queue(self, body: domain.MediationBody, limit: int) -> list[domain.Case]:
        rows = await self._conn.fetch(
            f"SELECT * FROM cases WHERE state = 'in_mediation' AND body = $1 {_QUEUE_ORDER} LIMIT $2",
            body,
            limit,
        )
        return [self._case(row) for row in rows]

    async def workload(self, body: domain.MediationBody, now: datetime) -> list[Workload]:
        rows = await self._conn.fetch(_WORKLOAD, body, now)
        return [Workload(row["mediator"], row["held"], row["closed"]) for row in rows]


def _referral(row: asyncpg.Record) -> domain.Referral:
    return domain.Referral(
        case_id=row["case_id"],
        labour_dispute=row["labour_dispute"],
        deadline=row["deadline"],
        created_at=row["created_at"],
        accepted_at=row["accepted_at"],
        overdue=row["overdue"],
    )


class PgReferralRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, referral: domain.Referral) -> None:
        await self._conn.execute(
            "INSERT INTO referrals (case_id, labour_dispute, deadline, created_at, accepted_at, overdue)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            referral.case_id,
            referral.labour_dispute,
            referral.deadline,
            referral.created_at,
            referral.accepted_at,
            referral.overdue,
        )

    async def get_for_update(self, case_id: uuid.UUID) -> domain.Referral | None:
        row = await self._conn.fetchrow("SELECT * FROM referrals WHERE case_id = $1 FOR UPDATE", case_id)
        return _referral(row) if row else None

    async def update(self, referral: domain.Referral) -> None:
        await self._conn.execute(
            "UPDATE referrals SET labour_dispute = $2, deadline = $3, accepted_at = $4, overdue = $5"
            " WHERE case_id = $1",
            referral.case_id,
            referral.labour_dispute,
            referral.deadline,
            referral.accepted_at,
            referral.overdue,
        )

    async def listing(self, limit: int) -> list[domain.Referral]:
        rows = await self._conn.fetch(
            "SELECT * FROM referrals ORDER BY accepted_at IS NOT NULL, created_at, case_id LIMIT $1", limit
        )
        return [_referral(row) for row in rows]


class PgOrderCopies:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def get(self, order_id: str) -> KnownOrder | None:
        row = await self._conn.fetchrow("SELECT * FROM known_orders WHERE order_id = $1", order_id)
        return KnownOrder(**dict(row)) if row else None

    async def upsert(self, order: KnownOrder) -> None:
        await self._conn.execute(
            "INSERT INTO known_orders (order_id, platform_id, district_code, worker_id, company_id)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO UPDATE SET"
            " platform_id = COALESCE(NULLIF(EXCLUDED.platform_id, ''), known_orders.platform_id),"
            " district_code = COALESCE(NULLIF(EXCLUDED.district_code, ''), known_orders.district_code),"
            " worker_id = COALESCE(NULLIF(EXCLUDED.worker_id, ''), known_orders.worker_id),"
            " company_id = COALESCE(NULLIF(EXCLUDED.company_id, ''), known_orders.company_id)",
            order.order_id,
            order.platform_id,
            order.district_code,
            order.worker_id,
            order.company_id,
        )


class PgComplaintsUnitOfWork(PgSealingUnitOfWork):
    cases: PgCaseRepository
    referrals: PgReferralRepository
    orders: PgOrderCopies

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.cases = PgCaseRepository(conn, self._keyring)
        self.referrals = PgReferralRepository(conn)
        self.orders = PgOrderCopies(conn)
