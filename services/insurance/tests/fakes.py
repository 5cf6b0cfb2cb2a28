"""In-memory claims and order copies for unit tests of the claim and coverage use cases and the
event effects, with the store's semantics; FakeInsuranceUnitOfWork extends the policies' fake."""

from __future__ import annotations

import uuid

from libs.common.paging import Moment
from libs.common.testing import FixedClock
from services.insurance.domain.claims import Claim, ClaimState
from services.insurance.domain.cover import CoverKind
from services.insurance.domain.orders import Order
from services.insurance.service_layer.claim_ports import ClaimFilter, ClaimKey
from services.insurance.tests.policy_fakes import FakePolicyUnitOfWork

SPENDING = (ClaimState.ADJUDICATED, ClaimState.PAID)


class FakeClaimRepository:
    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, Claim] = {}
        self.by_request: dict[tuple[str, uuid.UUID], uuid.UUID] = {}

    async def add_once(self, claim: Claim, filer: str, request_id: uuid.UUID) -> Claim | None:
        earlier = self.by_request.get((filer, request_id))
        if earlier is not None or claim.claim_id in self.by_id:
            return self.by_id[earlier or claim.claim_id]
        self.by_request[filer, request_id] = claim.claim_id
        self.by_id[claim.claim_id] = claim
        return None

    async def get(self, claim_id: uuid.UUID) -> Claim | None:
        return self.by_id.get(claim_id)

    async def get_for_update(self, claim_id: uuid.UUID) -> Claim | None:
        return self.by_id.get(claim_id)

    async def update(self, claim: Claim) -> None:
        assert claim.claim_id in self.by_id, "update of a claim never added"
        self.by_id[claim.claim_id] = claim

    async def used_fen(
        self, policy_id: uuid.UUID, worker_id: str, kind: CoverKind, excluding: uuid.UUID
    ) -> int:
        return sum(
            c.payable_fen
            for c in self.by_id.values()
            if (c.policy_id, c.worker_id, c.filing.kind) == (policy_id, worker_id, kind)
            and c.state in SPENDING
            and c.claim_id != excluding
        )

    async def listing(self, which: ClaimFilter, after: ClaimKey | None, limit: int) -> list[Claim]:
        shown = [
            c
            for c in self.by_id.values()
            if which.company_id in ("", c.company_id)
            and which.insurer in ("", c.insurer)
            and which.state in (None, c.state)
            and (after is None or ClaimKey.of(c) > after)
        ]
        return sorted(shown, key=ClaimKey.of)[:limit]


class FakeOrderRepository:
    def __init__(self) -> None:
        self.by_id: dict[str, Order] = {}

    async def get(self, order_id: str) -> Order | None:
        return self.by_id.get(order_id)

    async def get_for_update(self, order_id: str) -> Order | None:
        return self.by_id.get(order_id)

    async def put(self, order: Order) -> None:
        self.by_id[order.order_id] = order

    async def uncovered(self, company_id: str, after: Moment | None, limit: int) -> list[Order]:
        shown = [
            o
            for o in self.by_id.values()
            if company_id in ("", o.company_id)
            and o.coverage is not None
            and not o.coverage.covered
            and not o.cancelled
            and (after is None or (o.scheduled_start, o.order_id) > after)
        ]
        return sorted(shown, key=lambda o: (o.scheduled_start, o.order_id))[:limit]


class FakeInsuranceUnitOfWork(FakePolicyUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.claims = FakeClaimRepository()
        self.orders = FakeOrderRepository()

    def _stores(self) -> list[object]:
        return [*super()._stores(), self.claims, self.orders]
