"""What the claim and order-coverage use cases need of storage, as protocols: store.py implements
them on asyncpg, tests/fakes.py in memory."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from libs.common.paging import Moment
from services.insurance.domain.claims import Claim, ClaimState
from services.insurance.domain.cover import CoverKind
from services.insurance.domain.orders import Order
from services.insurance.domain.products import Catalogue
from services.insurance.service_layer.policy_ports import PolicyUnitOfWork


@dataclass(frozen=True)
class ClaimFilter:
    """Which claims a listing shows: a company's, an insurer's, or (both empty) all; of one state
    or (None) any."""

    company_id: str = ""
    insurer: str = ""
    state: ClaimState | None = None


@dataclass(frozen=True, order=True)
class ClaimKey:
    """A claim's place in a listing: filing order, the id between claims filed at one instant."""

    filed_at: datetime
    claim_id: uuid.UUID

    @classmethod
    def of(cls, claim: Claim) -> ClaimKey:
        return cls(claim.filed_at, claim.claim_id)


class ClaimRepository(Protocol):
    async def add_once(self, claim: Claim, filer: str, request_id: uuid.UUID) -> Claim | None:
        """Store ``claim`` unless its id exists or ``filer`` (the filing principal's tenant) already
        used ``request_id``; then the claim stored first."""
        ...

    async def get(self, claim_id: uuid.UUID) -> Claim | None: ...

    async def get_for_update(self, claim_id: uuid.UUID) -> Claim | None:
        """The claim, its row locked until the unit of work ends (every writer locks it)."""
        ...

    async def update(self, claim: Claim) -> None: ...

    async def used_fen(
        self, policy_id: uuid.UUID, worker_id: str, kind: CoverKind, excluding: uuid.UUID
    ) -> int:
        """What approved and paid claims of the policy, worker and kind (but ``excluding``) pay:
        the part of the limit used. Holds the limit locked until the unit of work ends, so that
        two adjudications cannot both spend what remains."""
        ...

    async def listing(self, which: ClaimFilter, after: ClaimKey | None, limit: int) -> list[Claim]:
        """Up to ``limit`` claims of ``which``, in filing order (oldest first), after ``after``."""
        ...


class OrderRepository(Protocol):
    """Insurance's copies of orders, from the orders service's events."""

    async def get(self, order_id: str) -> Order | None: ...

    async def get_for_update(self, order_id: str) -> Order | None: ...

    async def put(self, order: Order) -> None:
        """Add the order or replace what is known of it."""
        ...

    async def uncovered(self, company_id: str, after: Moment | None, limit: int) -> list[Order]:
        """Up to ``limit`` orders, not cancelled, whose coverage found none: the company's (all
        when empty), by scheduled start then order id, after ``after`` (such a start and id)."""
        ...


class InsuranceUnitOfWork(PolicyUnitOfWork, Protocol):
    @property
    def claims(self) -> ClaimRepository: ...

    @property
    def orders(self) -> OrderRepository: ...


@dataclass(frozen=True)
class ClaimRules:
    """What adjudication needs beside storage: the products, with their terms and exclusions."""

    catalogue: Catalogue
