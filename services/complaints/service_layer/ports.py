"""What the complaints use cases need of storage, as protocols: the store implements them on
asyncpg (services/complaints/store.py), the unit tests in memory (tests/fakes.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from libs.common.uow import UnitOfWork
from services.complaints import domain


@dataclass(frozen=True)
class KnownOrder:
    """What complaints keeps of an order from the orders service's events."""

    order_id: str
    platform_id: str
    district_code: str = ""
    worker_id: str = ""
    company_id: str = ""


@dataclass(frozen=True)
class Workload:
    mediator: str
    held: int
    closed: int


class CaseRepository(Protocol):
    async def add_once(self, case: domain.Case, filer: str, request_id: uuid.UUID) -> domain.Case | None:
        """Store ``case`` unless ``filer`` (the filing principal's tenant) already used
        ``request_id``; then the case that request created."""
        ...

    async def get(self, case_id: uuid.UUID) -> domain.Case | None: ...

    async def get_for_update(self, case_id: uuid.UUID) -> domain.Case | None:
        """The case, its row locked until the unit of work ends (every writer of its events locks it)."""
        ...

    async def update(self, case: domain.Case) -> None: ...

    async def next_claimable(self, body: domain.MediationBody, now: datetime) -> domain.Case | None:
        """The first case of ``body``'s queue (most severe, then earliest deadline) that nobody
        holds or whose lease expired, its row locked; rows other claimers hold locked are skipped."""
        ...

    async def queue(self, body: domain.MediationBody, limit: int) -> list[domain.Case]:
        """The body's cases in mediation, in queue order."""
        ...

    async def workload(self, body: domain.MediationBody, now: datetime) -> list[Workload]: ...


class ReferralRepository(Protocol):
    async def add(self, referral: domain.Referral) -> None: ...

    async def get_for_update(self, case_id: uuid.UUID) -> domain.Referral | None: ...

    async def update(self, referral: domain.Referral) -> None: ...

    async def listing(self, limit: int) -> list[domain.Referral]:
        """Open referrals first, oldest first."""
        ...


class OrderCopies(Protocol):
    """The orders complaints knows of, from the orders service's events."""

    async def get(self, order_id: str) -> KnownOrder | None: ...

    async def upsert(self, order: KnownOrder) -> None:
        """Add or complete what is known (non-empty fields win)."""
        ...


class ComplaintsUnitOfWork(UnitOfWork, Protocol):
    @property
    def cases(self) -> CaseRepository: ...

    @property
    def referrals(self) -> ReferralRepository: ...

    @property
    def orders(self) -> OrderCopies: ...


@dataclass(frozen=True)
class Rules:
    """What the use cases need beside storage: the working-day calendar and the lease length."""

    calendar: domain.WorkingCalendar
    lease: timedelta = timedelta(minutes=30)
