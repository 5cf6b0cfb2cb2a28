"""In-memory orders storage for unit tests of the use cases and queries."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from types import MappingProxyType

from libs.common.testing import FakeUnitOfWork, FixedClock
from services.orders import domain
from services.orders.domain.contract import Contract
from services.orders.service_layer import StoredContract, StoredOrder
from services.orders.tests.fake_eligibility import FakeEligibilityRepository


class FakeOrderRepository:
    def __init__(self) -> None:
        self.by_request: dict[tuple[str, uuid.UUID], StoredOrder] = {}
        self.by_id: dict[uuid.UUID, domain.Order] = {}
        self.particulars_by_id: dict[uuid.UUID, tuple[domain.Contact, str]] = {}

    def fingerprint(self, draft: domain.OrderDraft) -> str:
        return draft.fingerprint()

    async def add_once(self, order: domain.Order, request_id: uuid.UUID) -> StoredOrder | None:
        key = (order.platform_id, request_id)
        if key in self.by_request:
            return dataclasses.replace(
                self.by_request[key], order=self.by_id[self.by_request[key].order.order_id]
            )
        self.by_request[key] = StoredOrder(order, order.draft.fingerprint())
        self.by_id[order.order_id] = order
        self.particulars_by_id[order.order_id] = (
            order.draft.contact or domain.Contact("", ""),
            order.draft.address,
        )
        return None

    async def find_by_request(self, platform_id: str, request_id: uuid.UUID) -> StoredOrder | None:
        return self.by_request.get((platform_id, request_id))

    async def get(self, order_id: uuid.UUID) -> domain.Order | None:
        return self.by_id.get(order_id)

    async def find(self, platform_id: str, order_id: uuid.UUID) -> domain.Order | None:
        order = self.by_id.get(order_id)
        return order if order is not None and order.platform_id == platform_id else None

    async def get_for_update(self, order_id: uuid.UUID) -> domain.Order | None:
        return self.by_id.get(order_id)

    async def update(self, order: domain.Order) -> None:
        self.by_id[order.order_id] = order

    async def particulars(self, order_id: uuid.UUID) -> tuple[domain.Contact, str]:
        return self.particulars_by_id[order_id]

    async def worker_no_shows_since(self, worker_id: str, since: datetime) -> int:
        return sum(
            1
            for o in self.by_id.values()
            if o.assigned_worker_id == worker_id
            and o.state is domain.OrderState.NO_SHOW
            and o.ended_by is domain.Party.WORKER
            and o.ended_at is not None
            and o.ended_at >= since
        )


class FakeOfferRepository:
    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, domain.Offer] = {}

    async def add(self, offer: domain.Offer) -> None:
        self.by_id[offer.offer_id] = offer

    async def get(self, offer_id: uuid.UUID) -> domain.Offer | None:
        return self.by_id.get(offer_id)

    async def update(self, offer: domain.Offer) -> None:
        self.by_id[offer.offer_id] = offer

    async def offered_workers(self, order_id: uuid.UUID) -> set[str]:
        return {o.worker_id for o in self.by_id.values() if o.order_id == order_id}


class FakeContractRepository:
    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, StoredContract] = {}

    async def add(self, contract: Contract) -> None:
        self.by_id[contract.contract_id] = StoredContract(contract, contract.content_hash(), None)

    async def get(self, contract_id: uuid.UUID) -> StoredContract | None:
        return self.by_id.get(contract_id)

    async def end(self, contract_id: uuid.UUID, at: datetime) -> None:
        self.by_id[contract_id] = dataclasses.replace(self.by_id[contract_id], ended_at=at)


class FakeCatalogueRepository:
    """Versions as plain dicts: the unit of work's rollback copies them (a mapping proxy is not copied)."""

    def __init__(self) -> None:
        self.versions: dict[int, dict[domain.ServiceType, domain.CatalogueEntry]] = {}

    async def current(self) -> domain.Catalogue:
        if not self.versions:
            return domain.DEFAULT_CATALOGUE
        latest = max(self.versions)
        return domain.Catalogue(latest, MappingProxyType(self.versions[latest]))

    async def add(self, catalogue: domain.Catalogue, at: datetime) -> bool:
        if catalogue.version in self.versions:
            return False
        self.versions[catalogue.version] = dict(catalogue.entries)
        return True


class FakeOrdersUnitOfWork(FakeUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.orders = FakeOrderRepository()
        self.offers = FakeOfferRepository()
        self.contracts = FakeContractRepository()
        self.catalogue = FakeCatalogueRepository()
        self.eligibility = FakeEligibilityRepository()

    def _stores(self) -> list[object]:
        return [
            *super()._stores(),
            self.orders,
            self.offers,
            self.contracts,
            self.catalogue,
            self.eligibility,
        ]
