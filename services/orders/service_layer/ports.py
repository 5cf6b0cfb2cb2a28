"""What the orders use cases need of storage: repositories and the unit of work, as protocols.

The store implements them on asyncpg (services/orders/store.py), the unit tests in memory
(services/orders/tests/fakes.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from libs.common.uow import UnitOfWork
from services.orders import domain
from services.orders.domain.contract import Contract
from services.orders.eligibility import EligibilityRepository


@dataclass(frozen=True)
class StoredOrder:
    """An order as stored, with the (keyed) fingerprint of the request that created it."""

    order: domain.Order
    request_fingerprint: str


@dataclass(frozen=True)
class StoredContract:
    """A contract as stored: immutable content and hash, and when it ended (replaced)."""

    contract: Contract
    content_sha256: str
    ended_at: datetime | None


class OrderRepository(Protocol):
    def fingerprint(self, draft: domain.OrderDraft) -> str:
        """The fingerprint stored for ``draft`` (keyed: it covers personal data)."""
        ...

    async def add_once(self, order: domain.Order, request_id: uuid.UUID) -> StoredOrder | None:
        """Store ``order`` unless its platform already used ``request_id``; then what that created."""
        ...

    async def find_by_request(self, platform_id: str, request_id: uuid.UUID) -> StoredOrder | None: ...

    async def get(self, order_id: uuid.UUID) -> domain.Order | None: ...

    async def get_for_update(self, order_id: uuid.UUID) -> domain.Order | None:
        """The order, its row locked until the unit of work ends: every writer of an order's events
        locks it first, so its events reach the outbox in the order they happened."""
        ...

    async def update(self, order: domain.Order) -> None:
        """Store the order's new state (the draft never changes)."""
        ...

    async def particulars(self, order_id: uuid.UUID) -> tuple[domain.Contact, str]:
        """The consumer's contact and the address, unsealed (for the contract only)."""
        ...

    async def worker_no_shows_since(self, worker_id: str, since: datetime) -> int:
        """The worker's no-shows (at fault) recorded since ``since``."""
        ...


class OfferRepository(Protocol):
    async def add(self, offer: domain.Offer) -> None: ...

    async def get(self, offer_id: uuid.UUID) -> domain.Offer | None: ...

    async def update(self, offer: domain.Offer) -> None: ...

    async def offered_workers(self, order_id: uuid.UUID) -> set[str]:
        """Every worker the order was ever offered to."""
        ...


class ContractRepository(Protocol):
    async def add(self, contract: Contract) -> None: ...

    async def get(self, contract_id: uuid.UUID) -> StoredContract | None: ...

    async def end(self, contract_id: uuid.UUID, at: datetime) -> None: ...


class CatalogueRepository(Protocol):
    async def current(self) -> domain.Catalogue:
        """The latest version (the built-in defaults, version 1, until an operator changes one)."""
        ...

    async def add(self, catalogue: domain.Catalogue, at: datetime) -> bool:
        """Store a new version; False when that version number exists (a concurrent change)."""
        ...


class OrdersUnitOfWork(UnitOfWork, Protocol):
    @property
    def orders(self) -> OrderRepository: ...

    @property
    def offers(self) -> OfferRepository: ...

    @property
    def contracts(self) -> ContractRepository: ...

    @property
    def catalogue(self) -> CatalogueRepository: ...

    @property
    def eligibility(self) -> EligibilityRepository: ...
