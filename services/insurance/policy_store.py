"""Group policies on asyncpg: the PolicyRepository of service_layer/policy_ports.py and the policy
unit of work (the claims' unit of work, store.py, extends it).

An insured worker's birth date is personal data: sealed on its way into the table
(libs.common.pii) and opened only when a policy is read back for the use cases.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg

from libs.common.db import PgSealingUnitOfWork
from libs.common.pii import Keyring
from services.insurance.domain.cover import Cover, InsuredWorker
from services.insurance.domain.policies import (
    Endorsement,
    EndorsementKind,
    Enrolment,
    GroupPolicy,
    PolicyState,
)
from services.insurance.domain.vocabulary import ServiceType
from services.insurance.service_layer.policy_ports import PolicyFilter, PolicyKey

BIRTH_DATE = "insurance.insured_worker.birth_date"

_INSERT_POLICY = (
    "INSERT INTO policies (policy_id, requester, request_id, company_id, product_id, insurer, start_date,"
    " end_date, premium_fen, issued_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    " ON CONFLICT (requester, request_id) DO NOTHING RETURNING true"
)
_UPSERT_STINT = (
    "INSERT INTO insured_workers (policy_id, seq, worker_id, job_class, service_types, start_date, end_date,"
    " birth_date_sealed, annual_premium_fen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (policy_id, seq) DO UPDATE SET end_date = EXCLUDED.end_date"
    " WHERE insured_workers.end_date <> EXCLUDED.end_date"
)
_INSERT_ENDORSEMENT = (
    "INSERT INTO endorsements (endorsement_id, policy_id, seq, request_id, kind, effective_date,"
    " added_worker_ids, removed_worker_ids, premium_delta_fen, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (policy_id, seq) DO NOTHING"
)
_COVERS_OF = (
    "SELECT w.*, p.product_id, p.insurer, p.company_id, p.state FROM insured_workers w"
    " JOIN policies p USING (policy_id) WHERE w.worker_id = $1 ORDER BY p.start_date, w.policy_id, w.seq"
)


def _insured(row: asyncpg.Record) -> InsuredWorker:
    return InsuredWorker(
        policy_id=row["policy_id"],
        worker_id=row["worker_id"],
        job_class=row["job_class"],
        service_types=frozenset(ServiceType(s) for s in row["service_types"]),
        start=row["start_date"],
        end=row["end_date"],
    )


def _endorsement(row: asyncpg.Record) -> Endorsement:
    return Endorsement(
        endorsement_id=row["endorsement_id"],
        request_id=row["request_id"],
        kind=EndorsementKind(row["kind"]),
        effective_date=row["effective_date"],
        added=tuple(row["added_worker_ids"]),
        removed=tuple(row["removed_worker_ids"]),
        premium_delta_fen=row["premium_delta_fen"],
        created_at=row["created_at"],
    )


class PgPolicyRepository:
    def __init__(self, conn: asyncpg.Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring

    def _enrolment(self, row: asyncpg.Record) -> Enrolment:
        birth_date = date.fromisoformat(self._keyring.open(row["birth_date_sealed"], BIRTH_DATE))
        return Enrolment(_insured(row), birth_date, row["annual_premium_fen"])

    async def _policies(self, rows: Sequence[asyncpg.Record]) -> list[GroupPolicy]:
        """The policies of ``rows`` with their stints and endorsements (two queries for all)."""
        ids = [row["policy_id"] for row in rows]
        stints: defaultdict[uuid.UUID, list[Enrolment]] = defaultdict(list)
        for row in await self._conn.fetch(
            "SELECT * FROM insured_workers WHERE policy_id = ANY($1) ORDER BY seq", ids
        ):
            stints[row["policy_id"]].append(self._enrolment(row))
        changes: defaultdict[uuid.UUID, list[Endorsement]] = defaultdict(list)
        for row in await self._conn.fetch(
            "SELECT * FROM endorsements WHERE policy_id = ANY($1) ORDER BY seq", ids
        ):
            changes[row["policy_id"]].append(_endorsement(row))
        return [_policy(row, stints[row["policy_id"]], changes[row["policy_id"]]) for row in rows]

    async def _one(self, query: str, *args: Any) -> GroupPolicy | None:
        row = await self._conn.fetchrow(query, *args)
        return (await self._policies([row]))[0] if row else None

    async def add_once(
        self, policy: GroupPolicy, requester: str, request_id: uuid.UUID
    ) -> GroupPolicy | None:
        inserted = await self._conn.fetchval(
            _INSERT_POLICY,
            policy.policy_id,
            requester,
            request_id,
            policy.company_id,
            policy.product_id,
            policy.insurer,
            policy.start,
            policy.end,
            policy.premium_fen,
            policy.issued_at,
            policy.state,
        )
        if not inserted:
            return await self.issued_by(requester, request_id)
        await self._store_children(policy)
        return None

    async def issued_by(self, requester: str, request_id: uuid.UUID) -> GroupPolicy | None:
        return await self._one(
            "SELECT * FROM policies WHERE requester = $1 AND request_id = $2", requester, request_id
        )

    async def get(self, policy_id: uuid.UUID) -> GroupPolicy | None:
        return await self._one("SELECT * FROM policies WHERE policy_id = $1", policy_id)

    async def get_for_update(self, policy_id: uuid.UUID) -> GroupPolicy | None:
        return await self._one("SELECT * FROM policies WHERE policy_id = $1 FOR UPDATE", policy_id)

    async def update(self, policy: GroupPolicy) -> None:
        await self._conn.execute(
            "UPDATE policies SET state = $2 WHERE policy_id = $1", policy.policy_id, policy.state
        )
        await self._store_children(policy)

    async def _store_children(self, policy: GroupPolicy) -> None:
        await self._conn.executemany(
            _UPSERT_STINT,
            [self._stint_values(policy.policy_id, seq, e) for seq, e in enumerate(policy.enrolments)],
        )
        await self._conn.executemany(
            _INSERT_ENDORSEMENT,
            [_endorsement_values(policy.policy_id, seq, e) for seq, e in enumerate(policy.endorsements)],
        )

    def _stint_values(self, policy_id: uuid.UUID, seq: int, enrolment: Enrolment) -> tuple[Any, ...]:
        w = enrolment.insured
        sealed = self._keyring.seal(enrolment.birth_date.isoformat(), BIRTH_DATE)
        types = sorted(int(s) for s in w.service_types)
        return (
            policy_id,
            seq,
            w.worker_id,
            w.job_class,
            types,
            w.start,
            w.end,
            sealed,
            enrolment.annual_premium_fen,
        )

    async def listing(self, which: PolicyFilter, after: PolicyKey | None, limit: int) -> list[GroupPolicy]:
        rows = await self._conn.fetch(
            "SELECT * FROM policies WHERE ($1 = '' OR company_id = $1) AND ($2 = '' OR insurer = $2)"
            " AND ($3::timestamptz IS NULL OR (issued_at, policy_id) > ($3, $4::uuid))"
            " ORDER BY issued_at, policy_id LIMIT $5",
            which.company_id,
            which.insurer,
            after and after.issued_at,
            after and after.policy_id,
            limit,
        )
        return await self._policies(rows)

    async def covers_of(self, worker_id: str) -> list[Cover]:
        rows = await self._conn.fetch(_COVERS_OF, worker_id)
        return [
            Cover(
                _insured(row),
                row["product_id"],
                row["insurer"],
                row["company_id"],
                row["state"] == PolicyState.EXPIRED,
            )
            for row in rows
        ]


def _endorsement_values(policy_id: uuid.UUID, seq: int, e: Endorsement) -> tuple[Any, ...]:
    return (
        e.endorsement_id,
        policy_id,
        seq,
        e.request_id,
        int(e.kind),
        e.effective_date,
        list(e.added),
        list(e.removed),
        e.premium_delta_fen,
        e.created_at,
    )


def _policy(row: asyncpg.Record, enrolments: list[Enrolment], endorsements: list[Endorsement]) -> GroupPolicy:
    return GroupPolicy(
        policy_id=row["policy_id"],
        company_id=row["company_id"],
        product_id=row["product_id"],
        insurer=row["insurer"],
        start=row["start_date"],
        end=row["end_date"],
        premium_fen=row["premium_fen"],
        issued_at=row["issued_at"],
        enrolments=tuple(enrolments),
        endorsements=tuple(endorsements),
        state=PolicyState(row["state"]),
    )


class PgPolicyUnitOfWork(PgSealingUnitOfWork):
    """The unit of work of the policy use cases; the claims' one (store.py) subclasses it."""

    policies: PgPolicyRepository

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.policies = PgPolicyRepository(conn, self._keyring)
