"""In-memory workers storage for unit tests of the use cases, timers and event effects."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TypeVar

from libs.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from libs.common.testing import FakeUnitOfWork, FixedClock
from services.workers import domain as d
from services.workers.service_layer import Card, RevokeReason, StoredStatus
from services.workers.service_layer.consent import ConsentCode

V = TypeVar("V")


def _set_known(
    inputs: dict[uuid.UUID, V], values: Mapping[uuid.UUID, V], known: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Set the values of the workers in ``known``, as the UPDATE does; those workers."""
    found = {w: v for w, v in values.items() if w in known}
    inputs.update(found)
    return set(found)


class FakeCompanyRepository:
    def __init__(self) -> None:
        self.by_request: dict[uuid.UUID, tuple[d.Company, str]] = {}

    async def add_once(self, company: d.Company, request_id: uuid.UUID, fingerprint: str) -> d.Company:
        if request_id not in self.by_request:
            if any(c.social_credit_code == company.social_credit_code for c, _ in self.by_request.values()):
                raise AlreadyExists(company.social_credit_code)
            self.by_request[request_id] = (company, fingerprint)
        stored, stored_fingerprint = self.by_request[request_id]
        if stored_fingerprint != fingerprint:
            raise InvalidArgument("request_id", "already used for a different company")
        return stored

    async def exists(self, company_id: uuid.UUID) -> bool:
        return any(c.company_id == company_id for c, _ in self.by_request.values())


class FakeWorkerRecords:
    """Workers, their qualifications and card-status inputs in one object (the colour reads all
    three, and a rollback restores each fake store separately)."""

    def __init__(self) -> None:
        self.workers: dict[uuid.UUID, d.Worker] = {}
        self.requests: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
        self.background: dict[uuid.UUID, d.BackgroundCheck] = {}
        self.health: dict[uuid.UUID, list[d.HealthCheck]] = {}
        self.trainings: dict[uuid.UUID, list[d.Training]] = {}
        self.certificates: dict[uuid.UUID, list[d.SkillCertificate]] = {}
        self.statuses: dict[uuid.UUID, StoredStatus] = {}
        self.saves: list[list[uuid.UUID]] = []  # the workers of each save, in order
        self.credit_level: dict[uuid.UUID, str | None] = {}
        self.suspended: dict[uuid.UUID, bool] = {}
        self.insured_until: dict[uuid.UUID, date | None] = {}
        self.withdrawn: set[uuid.UUID] = set()
        self.cards: dict[uuid.UUID, Card] = {}

    async def add_once(self, worker: d.Worker, request_id: uuid.UUID, fingerprint: str) -> uuid.UUID:
        if request_id not in self.requests:
            if any(w.identity.number == worker.identity.number for w in self.workers.values()):
                raise AlreadyExists("ID number")
            self.workers[worker.worker_id] = worker
            self.requests[request_id] = (worker.worker_id, fingerprint)
        worker_id, stored_fingerprint = self.requests[request_id]
        if stored_fingerprint != fingerprint:
            raise InvalidArgument("request_id", "already used for a different worker")
        return worker_id

    async def employments(self, worker_id: uuid.UUID) -> tuple[d.Employment, ...]:
        worker = self.workers.get(worker_id)
        return worker.employments if worker else ()

    async def set_employments(self, worker_id: uuid.UUID, employments: tuple[d.Employment, ...]) -> None:
        self.workers[worker_id] = replace(self.workers[worker_id], employments=employments)

    async def add_background_check(
        self, worker_id: uuid.UUID, check: d.BackgroundCheck, at: datetime
    ) -> None:
        self.background[worker_id] = check

    async def add_health_check(self, worker_id: uuid.UUID, check: d.HealthCheck, at: datetime) -> None:
        self.health.setdefault(worker_id, []).append(check)

    async def add_training(self, worker_id: uuid.UUID, training: d.Training, at: datetime) -> None:
        self.trainings.setdefault(worker_id, []).append(training)

    async def add_certificate(
        self, worker_id: uuid.UUID, certificate: d.SkillCertificate, at: datetime
    ) -> d.SkillLevel:
        self.certificates.setdefault(worker_id, []).append(certificate)
        return max(c.level for c in self.certificates[worker_id])

    async def inputs_many(self, worker_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, d.CardStatusInputs]:
        return {w: self._inputs(w) for w in worker_ids}

    def _inputs(self, worker_id: uuid.UUID) -> d.CardStatusInputs:
        return d.CardStatusInputs(
            background_check=self.background.get(worker_id),
            health_checks=tuple(self.health.get(worker_id, [])),
            insured_until=self.insured_until.get(worker_id),
            revoked=worker_id in self.withdrawn,
            suspended=self.suspended.get(worker_id, False),
            credit_level=self.credit_level.get(worker_id),
        )

    async def stored_many(self, worker_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredStatus]:
        return {w: self.statuses[w] for w in worker_ids if w in self.statuses}

    async def save_many(self, statuses: Mapping[uuid.UUID, StoredStatus], at: datetime) -> None:
        self.statuses.update(statuses)
        self.saves.append(list(statuses))

    async def set_credit_levels(self, levels: Mapping[uuid.UUID, str | None]) -> set[uuid.UUID]:
        return _set_known(self.credit_level, levels, self.workers)

    async def set_suspensions(self, suspended: Mapping[uuid.UUID, bool]) -> set[uuid.UUID]:
        return _set_known(self.suspended, suspended, self.workers)

    async def set_insured_until(self, until: Mapping[uuid.UUID, date | None]) -> set[uuid.UUID]:
        return _set_known(self.insured_until, until, self.workers)


class FakeAvailabilityRepository:
    def __init__(self) -> None:
        self.by_worker: dict[uuid.UUID, d.Availability] = {}

    async def replace(self, worker_id: uuid.UUID, availability: d.Availability) -> None:
        self.by_worker[worker_id] = availability


class FakeConsentRepository:
    def __init__(self) -> None:
        self.codes: dict[tuple[uuid.UUID, str], tuple[ConsentCode, bool]] = {}
        self.grants_by_id: dict[uuid.UUID, d.ConsentGrant] = {}

    async def add_code(self, code: ConsentCode) -> None:
        self.codes[code.worker_id, code.code] = (code, False)

    async def use_code(self, worker_id: uuid.UUID, code: str, now: datetime) -> timedelta | None:
        stored, used = self.codes.get((worker_id, code), (None, True))
        if stored is None or used or stored.expires_at <= now:
            return None
        self.codes[worker_id, code] = (stored, True)
        return stored.grant_ttl

    async def add_grant(self, grant: d.ConsentGrant) -> None:
        self.grants_by_id[grant.grant_id] = grant

    async def grant(self, grant_id: uuid.UUID) -> d.ConsentGrant | None:
        return self.grants_by_id.get(grant_id)

    async def save_grant(self, grant: d.ConsentGrant) -> None:
        self.grants_by_id[grant.grant_id] = grant

    async def grants(self, worker_id: uuid.UUID, platform_id: str | None) -> list[d.ConsentGrant]:
        return [
            g
            for g in self.grants_by_id.values()
            if g.worker_id == worker_id and platform_id in (None, g.platform_id)
        ]


class FakeCardRepository:
    """Cards kept in the worker records (as withdrawn cards count in the colour, and a rollback
    restores each fake store separately): a view with no state of its own."""

    def __init__(self, records: FakeWorkerRecords) -> None:
        self._records = records

    async def add(self, card: Card) -> None:
        cards = self._records.cards
        if any(c.worker_id == card.worker_id and c.revoked_at is None for c in cards.values()):
            raise FailedPrecondition(
                f"workers/{card.worker_id} already holds a card that is not revoked: reissue it"
            )
        cards[card.card_id] = card
        self._records.withdrawn.discard(card.worker_id)

    async def card(self, card_id: uuid.UUID, for_update: bool = False) -> Card | None:
        return self._records.cards.get(card_id)

    async def revoke(self, card_id: uuid.UUID, reason: RevokeReason, at: datetime) -> None:
        card = self._records.cards[card_id]
        self._records.cards[card_id] = replace(card, revoked_at=at, revoke_reason=reason)
        if reason is RevokeReason.WITHDRAWN:
            self._records.withdrawn.add(card.worker_id)


class FakeWorkersUnitOfWork(FakeUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.companies = FakeCompanyRepository()
        self.records = FakeWorkerRecords()
        self.workers = self.qualifications = self.status = self.records
        self.availability = FakeAvailabilityRepository()
        self.consent = FakeConsentRepository()
        self.cards = FakeCardRepository(self.records)

    def _stores(self) -> list[object]:
        return [*super()._stores(), self.companies, self.records, self.availability, self.consent]
