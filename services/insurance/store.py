"""Insurance persistence on asyncpg: the claims and order copies of service_layer/claim_ports.py,
and the service's full unit of work (the policies' one, policy_store.py, plus these).

A claim's description is personal data: sealed on its way into the table (libs.common.pii) and
opened only when a claim is read back for the use cases.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs.common.paging import Moment
from libs.common.pii import Keyring
from services.insurance.domain import claims as domain
from services.insurance.domain.cover import CoverKind, Exclusion
from services.insurance.domain.orders import Coverage, Order
from services.insurance.domain.vocabulary import ServiceType
from services.insurance.policy_store import PgPolicyUnitOfWork
from services.insurance.service_layer.claim_ports import ClaimFilter, ClaimKey

DESCRIPTION = "insurance.claim.description"

_INSERT_CLAIM = (
    "INSERT INTO claims (claim_id, filer, request_id, order_id, kind, incident_time, claimed_fen,"
    " description_sealed, circumstances, worker_id, company_id, service_type, policy_id, product_id, insurer,"
    " filed_by, report_time, filed_at, case_id, defect, state, worker_at_fault, decision, assessed_fen,"
    " exclusions, payable_fen, reasons, adjudicated_at, adjudication_request, paid_at, payment_request,"
    " contest_reason, contested_at, contest_request) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
    " $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31,"
    " $32, $33, $34) ON CONFLICT DO NOTHING RETURNING true"
)
_UPDATE_CLAIM = (
    "UPDATE claims SET state = $2, worker_at_fault = $3, decision = $4, assessed_fen = $5, exclusions = $6,"
    " payable_fen = $7, reasons = $8, adjudicated_at = $9, adjudication_request = $10, paid_at = $11,"
    " payment_request = $12, contest_reason = $13, contested_at = $14, contest_request = $15"
    " WHERE claim_id = $1"
)
# A transaction-scoped advisory lock per (policy, worker, kind): adjudications of one limit queue.
_LOCK_LIMIT = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
_USED = (
    "SELECT coalesce(sum(payable_fen), 0)::bigint FROM claims"
    " WHERE policy_id = $1 AND worker_id = $2 AND kind = $3"
    " AND state IN ('adjudicated', 'paid') AND claim_id <> $4"
)


def _workflow(claim: domain.Claim) -> tuple[Any, ...]:
    """The values of the columns a step changes, in _UPDATE_CLAIM's order."""
    a, contest = claim.adjudication, claim.contest
    return (
        claim.state,
        claim.worker_at_fault,
        a and a.decision,
        a and a.assessed_fen,
        a and sorted(a.exclusions),
        a and a.payable_fen,
        a and list(a.reasons),
        a and a.at,
        a and a.request_id,
        claim.paid_at,
        claim.payment_request,
        contest and contest.reason,
        contest and contest.at,
        contest and contest.request_id,
    )


def _adjudication(row: asyncpg.Record) -> domain.Adjudication | None:
    if row["decision"] is None:
        return None
    return domain.Adjudication(
        decision=domain.Decision(row["decision"]),
        assessed_fen=row["assessed_fen"],
        exclusions=frozenset(Exclusion(e) for e in row["exclusions"]),
        payable_fen=row["payable_fen"],
        reasons=tuple(row["reasons"]),
        at=row["adjudicated_at"],
        request_id=row["adjudication_request"],
    )


def _contest(row: asyncpg.Record) -> domain.Contest | None:
    if row["contest_request"] is None:
        return None
    return domain.Contest(row["contest_reason"], row["contested_at"], row["contest_request"])


class PgClaimRepository:
    def __init__(self, conn: asyncpg.Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring

    def _claim(self, row: asyncpg.Record) -> domain.Claim:
        filing = domain.ClaimFiling(
            order_id=row["order_id"],
            kind=CoverKind(row["kind"]),
            incident_time=row["incident_time"],
            claimed_fen=row["claimed_fen"],
            description=self._keyring.open(row["description_sealed"], DESCRIPTION),
            circumstances=frozenset(Exclusion(e) for e in row["circumstances"]),
        )
        service_type = row["service_type"]
        return domain.Claim(
            claim_id=row["claim_id"],
            filing=filing,
            worker_id=row["worker_id"],
            company_id=row["company_id"],
            service_type=None if service_type is None else ServiceType(service_type),
            policy_id=row["policy_id"],
            product_id=row["product_id"],
            insurer=row["insurer"],
            filed_by=row["filed_by"],
            report_time=row["report_time"],
            filed_at=row["filed_at"],
            state=domain.ClaimState(row["state"]),
            case_id=row["case_id"],
            worker_at_fault=row["worker_at_fault"],
            defect=row["defect"],
            adjudication=_adjudication(row),
            paid_at=row["paid_at"],
            payment_request=row["payment_request"],
            contest=_contest(row),
        )

    async def add_once(self, claim: domain.Claim, filer: str, request_id: uuid.UUID) -> domain.Claim | None:
        f = claim.filing
        inserted = await self._conn.fetchval(
            _INSERT_CLAIM,
            claim.claim_id,
            filer,
            request_id,
            f.order_id,
            f.kind,
            f.incident_time,
            f.claimed_fen,
            self._keyring.seal(f.description, DESCRIPTION),
            sorted(f.circumstances),
            claim.worker_id,
            claim.company_id,
            claim.service_type,
            claim.policy_id,
            claim.product_id,
            claim.insurer,
            claim.filed_by,
            claim.report_time,
            claim.filed_at,
            claim.case_id,
            claim.defect,
            *_workflow(claim),
        )
        if inserted:
            return None
        return await self._one(
            "SELECT * FROM claims WHERE claim_id = $1 OR (filer = $2 AND request_id = $3) LIMIT 1",
            claim.claim_id,
            filer,
            request_id,
        )

    async def _one(self, query: str, *args: Any) -> domain.Claim | None:
        row = await self._conn.fetchrow(query, *args)
        return self._claim(row) if row else None

    async def get(self, claim_id: uuid.UUID) -> domain.Claim | None:
        return await self._one("SELECT * FROM claims WHERE claim_id = $1", claim_id)

    async def get_for_update(self, claim_id: uuid.UUID) -> domain.Claim | None:
        return await self._one("SELECT * FROM claims WHERE claim_id = $1 FOR UPDATE", claim_id)

    async def update(self, claim: domain.Claim) -> None:
        await self._conn.execute(_UPDATE_CLAIM, claim.claim_id, *_workflow(claim))

    async def used_fen(
        self, policy_id: uuid.UUID, worker_id: str, kind: CoverKind, excluding: uuid.UUID
    ) -> int:
        await self._conn.execute(_LOCK_LIMIT, f"insurance.limit:{policy_id}:{worker_id}:{int(kind)}")
        used: int = await self._conn.fetchval(_USED, policy_id, worker_id, kind, excluding)
        return used

    async def listing(self, which: ClaimFilter, after: ClaimKey | None, limit: int) -> list[domain.Claim]:
        rows = await self._conn.fetch(
            "SELECT * FROM claims WHERE ($1 = '' OR company_id = $1) AND ($2 = '' OR insurer = $2)"
            " AND ($3::text IS NULL OR state = $3)"
            " AND ($4::timestamptz IS NULL OR (filed_at, claim_id) > ($4, $5::uuid))"
            " ORDER BY filed_at, claim_id LIMIT $6",
            which.company_id,
            which.insurer,
            which.state,
            after and after.filed_at,
            after and after.claim_id,
            limit,
        )
        return [self._claim(row) for row in rows]


def _coverage(row: asyncpg.Record) -> Coverage | None:
    if row["cover_found_at"] is None:
        return None
    return Coverage(
        worker_id=row["cover_worker_id"],
        policy_id=row["cover_policy_id"],
        product_id=row["cover_product_id"],
        insurer=row["cover_insurer"],
        reason=row["cover_reason"],
        found_at=row["cover_found_at"],
    )


def _order(row: asyncpg.Record) -> Order:
    return Order(
        order_id=row["order_id"],
        platform_id=row["platform_id"],
        company_id=row["company_id"],
        worker_id=row["worker_id"],
        service_type=ServiceType(row["service_type"]),
        district_code=row["district_code"],
        scheduled_start=row["scheduled_start"],
        scheduled_end=row["scheduled_end"],
        check_in=row["check_in"],
        check_out=row["check_out"],
        cancelled=row["cancelled"],
        coverage=_coverage(row),
    )


_PUT_ORDER = (
    "INSERT INTO insured_orders (order_id, platform_id, company_id, worker_id, service_type, district_code,"
    " scheduled_start, scheduled_end, check_in, check_out, cancelled, cover_worker_id, cover_policy_id,"
    " cover_product_id, cover_insurer, cover_reason, cover_found_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
    " $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (order_id) DO UPDATE SET"
    " platform_id = EXCLUDED.platform_id, company_id = EXCLUDED.company_id, worker_id = EXCLUDED.worker_id,"
    " service_type = EXCLUDED.service_type, district_code = EXCLUDED.district_code,"
    " scheduled_start = EXCLUDED.scheduled_start, scheduled_end = EXCLUDED.scheduled_end,"
    " check_in = EXCLUDED.check_in, check_out = EXCLUDED.check_out, cancelled = EXCLUDED.cancelled,"
    " cover_worker_id = EXCLUDED.cover_worker_id, cover_policy_id = EXCLUDED.cover_policy_id,"
    " cover_product_id = EXCLUDED.cover_product_id, cover_insurer = EXCLUDED.cover_insurer,"
    " cover_reason = EXCLUDED.cover_reason, cover_found_at = EXCLUDED.cover_found_at"
)


class PgOrderRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def _one(self, query: str, order_id: str) -> Order | None:
        row = await self._conn.fetchrow(query, order_id)
        return _order(row) if row else None

    async def get(self, order_id: str) -> Order | None:
        return await self._one("SELECT * FROM insured_orders WHERE order_id = $1", order_id)

    async def get_for_update(self, order_id: str) -> Order | None:
        return await self._one("SELECT * FROM insured_orders WHERE order_id = $1 FOR UPDATE", order_id)

    async def put(self, order: Order) -> None:
        c = order.coverage
        await self._conn.execute(
            _PUT_ORDER,
            order.order_id,
            order.platform_id,
            order.company_id,
            order.worker_id,
            order.service_type,
            order.district_code,
            order.scheduled_start,
            order.scheduled_end,
            order.check_in,
            order.check_out,
            order.cancelled,
            c and c.worker_id,
            c and c.policy_id,
            c and c.product_id,
            c and c.insurer,
            c and c.reason,
            c and c.found_at,
        )

    async def uncovered(self, company_id: str, after: Moment | None, limit: int) -> list[Order]:
        rows = await self._conn.fetch(
            "SELECT * FROM insured_orders WHERE cover_found_at IS NOT NULL AND cover_policy_id IS NULL"
            " AND NOT cancelled AND ($1 = '' OR company_id = $1)"
            " AND ($2::timestamptz IS NULL OR (scheduled_start, order_id) > ($2, $3::text))"
            " ORDER BY scheduled_start, order_id LIMIT $4",
            company_id,
            after and after[0],
            after and after[1],
            limit,
        )
        return [_order(row) for row in rows]


class PgInsuranceUnitOfWork(PgPolicyUnitOfWork):
    """The insurance service's unit of work: policies, claims and order copies on one transaction."""

    claims: PgClaimRepository
    orders: PgOrderRepository

    def _bind(self, conn: asyncpg.Connection) -> None:
        super()._bind(conn)
        self.claims = PgClaimRepository(conn, self._keyring)
        self.orders = PgOrderRepository(conn)
