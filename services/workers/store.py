"""Workers persistence on asyncpg: repositories and the service's unit of work.

Personal data is sealed here, on its way into the tables (libs.common.pii), and never read
back by a use case: responses show the masked forms kept beside the sealed values.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

import asyncpg

from libs.common.db import PgSealingUnitOfWork
from libs.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from libs.common.pii import Keyring, mask_id_number, mask_name, mask_phone
from services.workers import domain as d
from services.workers.service_layer import Card, RevokeReason, StoredStatus
from services.workers.service_layer.consent import ConsentCode

ID_NUMBER = "workers.worker.id_number"
FULL_NAME = "workers.worker.full_name"
MOBILE = "workers.worker.mobile"


def company_from_row(row: asyncpg.Record) -> d.Company:
    return d.Company(
        company_id=row["company_id"],
        social_credit_code=row["social_credit_code"],
        name=row["display_name"],
        premises_m2=row["premises_m2"],
        outlets=tuple(d.Outlet(o["name"], o["district_code"]) for o in json.loads(row["outlets"])),
        employment_model=d.EmploymentModel(row["employment_model"]),
        registered_at=row["created_at"],
    )


def employment_from_row(row: asyncpg.Record) -> d.Employment:
    return d.Employment(row["company_id"], row["started_at"], row["ended_at"])


def _same_request(stored: str, given: str, what: str) -> None:
    if stored != given:
        raise InvalidArgument("request_id", f"already used for a different {what}")


class PgCompanyRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add_once(self, company: d.Company, request_id: uuid.UUID, fingerprint: str) -> d.Company:
        try:
            await self._conn.execute(
                "INSERT INTO companies (company_id, request_id, request_fingerprint, social_credit_code,"
                " display_name, premises_m2, employment_model, outlets, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) ON CONFLICT (request_id) DO NOTHING",
                company.company_id,
                request_id,
                fingerprint,
                company.social_credit_code,
                company.name,
                company.premises_m2,
                company.employment_model,
                json.dumps([{"name": o.name, "district_code": o.district_code} for o in company.outlets]),
                company.registered_at,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("a company with this social credit code or id is registered") from None
        row = await self._conn.fetchrow("SELECT * FROM companies WHERE request_id = $1", request_id)
        _same_request(row["request_fingerprint"], fingerprint, "company")
        return company_from_row(row)

    async def exists(self, company_id: uuid.UUID) -> bool:
        return bool(await self._conn.fetchval("SELECT true FROM companies WHERE company_id = $1", company_id))


class PgWorkerRepository:
    def __init__(self, conn: asyncpg.Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring

    async def add_once(self, worker: d.Worker, request_id: uuid.UUID, fingerprint: str) -> uuid.UUID:
        number = worker.identity.number
        try:
            inserted = await self._conn.fetchval(
                "INSERT INTO workers (worker_id, request_id, request_fingerprint, company_id,"
                " id_number_sealed, id_number_hash, id_number_masked, name_sealed, name_masked,"
                " mobile_sealed, mobile_masked, photo_ref, service_districts, trades, origin_province,"
                " registered_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
                " ON CONFLICT (request_id) DO NOTHING RETURNING true",
                worker.worker_id,
                request_id,
                fingerprint,
                worker.company_id,
                self._keyring.seal(number, ID_NUMBER),
                self._keyring.lookup_hash(number, ID_NUMBER),
                mask_id_number(number),
                self._keyring.seal(worker.name, FULL_NAME),
                mask_name(worker.name),
                self._keyring.seal(worker.mobile, MOBILE),
                mask_phone(worker.mobile),
                worker.photo_ref,
                list(worker.service_districts),
                list(worker.trades),
                worker.origin_province,
                worker.registered_at,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("a worker with this ID number is already registered") from None
        if inserted:
            await self.set_employments(worker.worker_id, worker.employments)
            return worker.worker_id
        row = await self._conn.fetchrow(
            "SELECT worker_id, request_fingerprint FROM workers WHERE request_id = $1", request_id
        )
        _same_request(row["request_fingerprint"], fingerprint, "worker")
        return uuid.UUID(str(row["worker_id"]))

    async def employments(self, worker_id: uuid.UUID) -> tuple[d.Employment, ...]:
        rows = await self._conn.fetch(
            "SELECT company_id, started_at, ended_at FROM employments"
            " WHERE worker_id = $1 ORDER BY started_at",
            worker_id,
        )
        return tuple(employment_from_row(r) for r in rows)

    async def set_employments(self, worker_id: uuid.UUID, employments: tuple[d.Employment, ...]) -> None:
        await self._conn.executemany(
            "INSERT INTO employments (worker_id, company_id, started_at, ended_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (worker_id, started_at) DO UPDATE SET ended_at = excluded.ended_at",
            [(worker_id, e.company_id, e.started_at, e.ended_at) for e in employments],
        )
        await self._conn.execute(
            "UPDATE workers SET company_id = $2 WHERE worker_id = $1", worker_id, employments[-1].company_id
        )


class PgQualificationRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add_background_check(
        self, worker_id: uuid.UUID, check: d.BackgroundCheck, at: datetime
    ) -> None:
        await self._conn.execute(
            "INSERT INTO background_checks (worker_id, recorded_at, identity_genuine,"
            " listed_crime_within_5_years, severe_mental_illness, drug_offence_within_3_years, checked_on)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            worker_id,
            at,
            check.identity_genuine,
            check.listed_crime_within_5_years,
            check.severe_mental_illness,
            check.drug_offence_within_3_years,
            check.checked_on,
        )

    async def add_health_check(self, worker_id: uuid.UUID, check: d.HealthCheck, at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO health_checks (worker_id, recorded_at, tier, issued_on, valid_until, hospital,"
            " certificate_no) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            worker_id,
            at,
            int(check.tier),
            check.issued_on,
            check.valid_until,
            check.hospital,
            check.certificate_no,
        )

    async def add_training(self, worker_id: uuid.UUID, training: d.Training, at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO trainings (worker_id, recorded_at, course, provider, hours, completed_on,"
            " exam_passed) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            worker_id,
            at,
            training.course,
            training.provider,
            training.hours,
            training.completed_on,
            training.exam_passed,
        )

    async def add_certificate(
        self, worker_id: uuid.UUID, certificate: d.SkillCertificate, at: datetime
    ) -> d.SkillLevel:
        await self._conn.execute(
            "INSERT INTO skill_certificates (worker_id, recorded_at, trade, level, certificate_no, issued_on,"
            " special_abilities) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            worker_id,
            at,
            certificate.trade,
            int(certificate.level),
            certificate.certificate_no,
            certificate.issued_on,
            list(certificate.special_abilities),
        )
        highest = await self._conn.fetchval(
            "UPDATE workers SET skill_level = greatest(skill_level, $2) WHERE worker_id = $1"
            " RETURNING skill_level",
            worker_id,
            int(certificate.level),
        )
        return d.SkillLevel(highest)


# The reasons travel as JSON, as a PostgreSQL array of arrays must be rectangular; the rows are
# upserted (and locked) in the order given.
_SAVE_STATUSES = (
    "INSERT INTO card_status (worker_id, colour, reasons, updated_at)"
    " SELECT u.worker_id, u.colour,"
    " ARRAY(SELECT r FROM jsonb_array_elements_text(u.reasons) WITH ORDINALITY e(r, n) ORDER BY n), $4"
    " FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) WITH ORDINALITY u(worker_id, colour, reasons, n)"
    " ORDER BY u.n"
    " ON CONFLICT (worker_id) DO UPDATE SET colour = excluded.colour, reasons = excluded.reasons,"
    " updated_at = excluded.updated_at"
)


class PgCardStatusRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def inputs_many(self, worker_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, d.CardStatusInputs]:
        ids = list(worker_ids)
        background = await self._conn.fetch(
            "SELECT DISTINCT ON (worker_id) * FROM background_checks WHERE worker_id = ANY($1::uuid[])"
            " ORDER BY worker_id, recorded_at DESC",
            ids,
        )
        health = await self._conn.fetch(
            "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY worker_id"
            " ORDER BY valid_until DESC, recorded_at DESC) AS n"
            " FROM health_checks WHERE worker_id = ANY($1::uuid[])) h"
            " WHERE n <= 20 ORDER BY worker_id, n",
            ids,
        )
        others = await self._conn.fetch(
            "SELECT w.id AS worker_id, s.credit_level, s.suspended, s.insured_until,"
            " EXISTS (SELECT 1 FROM cards c WHERE c.worker_id = w.id AND c.revoke_reason = 'withdrawn')"
            " AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.worker_id = w.id AND c.revoked_at IS NULL)"
            " AS revoked"
            " FROM unnest($1::uuid[]) AS w(id) LEFT JOIN card_status s ON s.worker_id = w.id",
            ids,
        )
        checks = {r["worker_id"]: _background(r) for r in background}
        health_checks: dict[uuid.UUID, list[d.HealthCheck]] = {}
        for row in health:
            health_checks.setdefault(row["worker_id"], []).append(_health(row))
        return {
            r["worker_id"]: d.CardStatusInputs(
                background_check=checks.get(r["worker_id"]),
                health_checks=tuple(health_checks.get(r["worker_id"], ())),
                insured_until=r["insured_until"],
                revoked=r["revoked"],
                suspended=bool(r["suspended"]),
                credit_level=r["credit_level"],
            )
            for r in others
        }

    async def stored_many(self, worker_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredStatus]:
        rows = await self._conn.fetch(
            "SELECT worker_id, colour, reasons FROM card_status WHERE worker_id = ANY($1::uuid[])",
            list(worker_ids),
        )
        return {
            r["worker_id"]: StoredStatus(d.CardColour(r["colour"]), tuple(d.Reason(x) for x in r["reasons"]))
            for r in rows
        }

    async def save_many(self, statuses: Mapping[uuid.UUID, StoredStatus], at: datetime) -> None:
        if not statuses:
            return
        await self._conn.execute(
            _SAVE_STATUSES,
            list(statuses),
            [s.colour for s in statuses.values()],
            [json.dumps(list(s.reasons)) for s in statuses.values()],
            at,
        )

    async def set_credit_levels(self, levels: Mapping[uuid.UUID, str | None]) -> set[uuid.UUID]:
        return await self._set_inputs("credit_level", "text", levels)

    async def set_suspensions(self, suspended: Mapping[uuid.UUID, bool]) -> set[uuid.UUID]:
        return await self._set_inputs("suspended", "boolean", suspended)

    async def set_insured_until(self, until: Mapping[uuid.UUID, date | None]) -> set[uuid.UUID]:
        return await self._set_inputs("insured_until", "date", until)

    async def _set_inputs(
        self, column: str, sql_type: str, values: Mapping[uuid.UUID, object]
    ) -> set[uuid.UUID]:
        """Set one of the inputs other services send, for each worker (rows locked in worker
        order); the colours are refreshed after it. Every registered worker has a status row."""
        ids = sorted(values)
        rows = await self._conn.fetch(
            f"UPDATE card_status s SET {column} = v.value"
            f" FROM unnest($1::uuid[], $2::{sql_type}[]) AS v(worker_id, value)"
            " WHERE s.worker_id = v.worker_id RETURNING s.worker_id",
            ids,
            [values[w] for w in ids],
        )
        return {r["worker_id"] for r in rows}


def _background(row: asyncpg.Record) -> d.BackgroundCheck:
    return d.BackgroundCheck(
        identity_genuine=row["identity_genuine"],
        listed_crime_within_5_years=row["listed_crime_within_5_years"],
        severe_mental_illness=row["severe_mental_illness"],
        drug_offence_within_3_years=row["drug_offence_within_3_years"],
        checked_on=row["checked_on"],
    )


def _health(row: asyncpg.Record) -> d.HealthCheck:
    return d.HealthCheck(
        d.HealthTier(row["tier"]),
        row["issued_on"],
        row["valid_until"],
        row["hospital"],
        row["certificate_no"],
    )


class PgAvailabilityRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def replace(self, worker_id: uuid.UUID, availability: d.Availability) -> None:
        slots = [[s.day_of_week, s.start_minute, s.end_minute] for s in availability.weekly_slots]
        leaves = [[v.start.isoformat(), v.end.isoformat()] for v in availability.leaves]
        await self._conn.execute(
            "INSERT INTO availability (worker_id, weekly_slots, leaves, updated_at)"
            " VALUES ($1, $2::jsonb, $3::jsonb, now()) ON CONFLICT (worker_id) DO UPDATE"
            " SET weekly_slots = excluded.weekly_slots, leaves = excluded.leaves, updated_at = now()",
            worker_id,
            json.dumps(slots),
            json.dumps(leaves),
        )


CONSENT_CODE = "workers.consent_code"


class PgConsentRepository:
    def __init__(self, conn: asyncpg.Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring

    async def add_code(self, code: ConsentCode) -> None:
        await self._conn.execute(
            "INSERT INTO consent_codes (code_hash, worker_id, grant_hours, expires_at)"
            " VALUES ($1, $2, $3, $4)",
            self._keyring.lookup_hash(f"{code.worker_id}:{code.code}", CONSENT_CODE),
            code.worker_id,
            int(code.grant_ttl.total_seconds() // 3600),
            code.expires_at,
        )

    async def use_code(self, worker_id: uuid.UUID, code: str, now: datetime) -> timedelta | None:
        hours = await self._conn.fetchval(
            "UPDATE consent_codes SET used_at = $3 WHERE code_hash = $1 AND worker_id = $2"
            " AND used_at IS NULL AND expires_at > $3 RETURNING grant_hours",
            self._keyring.lookup_hash(f"{worker_id}:{code}", CONSENT_CODE),
            worker_id,
            now,
        )
        return None if hours is None else timedelta(hours=hours)

    async def add_grant(self, grant: d.ConsentGrant) -> None:
        await self._conn.execute(
            "INSERT INTO consent_grants (grant_id, worker_id, platform_id, consumer_ref, granted_at,"
            " expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            grant.grant_id,
            grant.worker_id,
            grant.platform_id,
            grant.consumer_ref,
            grant.granted_at,
            grant.expires_at,
        )

    async def grant(self, grant_id: uuid.UUID) -> d.ConsentGrant | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM consent_grants WHERE grant_id = $1 FOR UPDATE", grant_id
        )
        return _grant(row) if row else None

    async def save_grant(self, grant: d.ConsentGrant) -> None:
        await self._conn.execute(
            "UPDATE consent_grants SET revoked_at = $2 WHERE grant_id = $1", grant.grant_id, grant.revoked_at
        )

    async def grants(self, worker_id: uuid.UUID, platform_id: str | None) -> list[d.ConsentGrant]:
        rows = await self._conn.fetch(
            "SELECT * FROM consent_grants WHERE worker_id = $1 AND ($2::text IS NULL OR platform_id = $2)"
            " ORDER BY granted_at",
            worker_id,
            platform_id,
        )
        return [_grant(r) for r in rows]


def _grant(row: asyncpg.Record) -> d.ConsentGrant:
    return d.ConsentGrant(
        grant_id=row["grant_id"],
        worker_id=row["worker_id"],
        platform_id=row["platform_id"],
        consumer_ref=row["consumer_ref"],
        granted_at=row["granted_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class PgWorkersUnitOfWork(PgSealingUnitOfWork):
    companies: PgCompanyRepository
    workers: PgWorkerRepository
    qualifications: PgQualificationRepository
    status: PgCardStatusRepository
    availability: PgAvailabilityRepository
    consent: PgConsentRepository
    cards: PgCardRepository

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.companies = PgCompanyRepository(conn)
        self.workers = PgWorkerRepository(conn, self._keyring)
        self.qualifications = PgQualificationRepository(conn)
        self.status = PgCardStatusRepository(conn)
        self.availability = PgAvailabilityRepository(conn)
        self.consent = PgConsentRepository(conn, self._keyring)
        self.cards = PgCardRepository(conn)


class PgCardRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, card: Card) -> None:
        try:
            await self._conn.execute(
                "INSERT INTO cards (card_id, worker_id, token, issued_at, expires_at)"
                " VALUES ($1, $2, $3, $4, $5)",
                card.card_id,
                card.worker_id,
                card.token,
                card.issued_at,
                card.expires_at,
            )
        except asyncpg.UniqueViolationError:  # cards_one_valid_per_worker
            raise FailedPrecondition(
                f"workers/{card.worker_id} already holds a card that is not revoked: reissue it"
            ) from None

    async def card(self, card_id: uuid.UUID, for_update: bool = False) -> Card | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._conn.fetchrow(f"SELECT * FROM cards WHERE card_id = $1{lock}", card_id)
        return _card(row) if row else None

    async def revoke(self, card_id: uuid.UUID, reason: RevokeReason, at: datetime) -> None:
        await self._conn.execute(
            "UPDATE cards SET revoked_at = $2, revoke_reason = $3 WHERE card_id = $1", card_id, at, reason
        )


def _card(row: asyncpg.Record) -> Card:
    reason = row["revoke_reason"]
    return Card(
        card_id=row["card_id"],
        worker_id=row["worker_id"],
        token=row["token"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        revoke_reason=RevokeReason(reason) if reason else None,
    )
