"""In-memory complaints storage for unit tests of the use cases, with the store's semantics: a
filer's request id creates one case, queues in order (most severe, then earliest deadline), leases
that expire, who closed a case for the workload. State is kept in plain dicts so that the unit of
work's rollback can copy it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from libs.common.testing import FakeUnitOfWork, FixedClock
from services.complaints import domain
from services.complaints.service_layer.ports import KnownOrder, Workload

# Far enough for the sort key of a case without a deadline: PostgreSQL sorts nulls last.
_NO_DEADLINE = datetime.max.replace(tzinfo=domain.BEIJING)


def _queue_key(case: domain.Case) -> tuple[int, datetime, datetime, uuid.UUID]:
    deadline = case.deadline.due_at if case.deadline else _NO_DEADLINE
    return (-case.filing.severity, deadline, case.filed_at, case.case_id)


def _closer(before: domain.Case, after: domain.Case) -> str | None:
    """Who closes a case by this update, as the store's closed_by: the resolver, or the mediator
    who held an escalated case; None when it is not closed by it."""
    if after.state is before.state:
        return None
    if after.state is domain.CaseState.RESOLVED:
        return after.resolved_by
    return before.mediator if after.state is domain.CaseState.ESCALATED else None


class FakeCaseRepository:
    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, domain.Case] = {}
        self.by_request: dict[tuple[str, uuid.UUID], uuid.UUID] = {}
        self.closed_by: dict[uuid.UUID, str] = {}

    async def add_once(self, case: domain.Case, filer: str, request_id: uuid.UUID) -> domain.Case | None:
        earlier = self.by_request.get((filer, request_id))
        if earlier is not None:
            return self.by_id[earlier]
        self.by_request[filer, request_id] = case.case_id
        self.by_id[case.case_id] = case
        return None

    async def get(self, case_id: uuid.UUID) -> domain.Case | None:
        return self.by_id.get(case_id)

    async def get_for_update(self, case_id: uuid.UUID) -> domain.Case | None:
        return self.by_id.get(case_id)

    async def update(self, case: domain.Case) -> None:
        closer = _closer(self.by_id[case.case_id], case)
        if closer is not None:
            self.closed_by[case.case_id] = closer
        self.by_id[case.case_id] = case

    def _in_mediation(self, body: domain.MediationBody) -> list[domain.Case]:
        cases = [
            c for c in self.by_id.values() if c.state is domain.CaseState.IN_MEDIATION and c.body is body
        ]
        return sorted(cases, key=_queue_key)

    async def next_claimable(self, body: domain.MediationBody, now: datetime) -> domain.Case | None:
        free = (c for c in self._in_mediation(body) if c.lease_until is None or c.lease_until <= now)
        return next(free, None)

    async def queue(self, body: domain.MediationBody, limit: int) -> list[domain.Case]:
        return self._in_mediation(body)[:limit]

    async def workload(self, body: domain.MediationBody, now: datetime) -> list[Workload]:
        held = [c.mediator for c in self._in_mediation(body) if c.mediator and c.held_by(c.mediator, now)]
        closed = [m for case_id, m in self.closed_by.items() if self.by_id[case_id].body is body]
        mediators = sorted(set(held) | set(closed))
        return [Workload(m, held.count(m), closed.count(m)) for m in mediators]


def _listing_key(referral: domain.Referral) -> tuple[bool, datetime, uuid.UUID]:
    return (referral.accepted_at is not None, referral.created_at, referral.case_id)


class FakeReferralRepository:
    def __init__(self) -> None:
        self.by_case: dict[uuid.UUID, domain.Referral] = {}

    async def add(self, referral: domain.Referral) -> None:
        assert referral.case_id not in self.by_case, "a case is referred once (the table's primary key)"
        self.by_case[referral.case_id] = referral

    async def get_for_update(self, case_id: uuid.UUID) -> domain.Referral | None:
        return self.by_case.get(case_id)

    async def update(self, referral: domain.Referral) -> None:
        self.by_case[referral.case_id] = referral

    async def listing(self, limit: int) -> list[domain.Referral]:
        return sorted(self.by_case.values(), key=_listing_key)[:limit]


class FakeOrderCopies:
    def __init__(self) -> None:
        self.by_id: dict[str, KnownOrder] = {}

    async def get(self, order_id: str) -> KnownOrder | None:
        return self.by_id.get(order_id)

    async def upsert(self, order: KnownOrder) -> None:
        known = self.by_id.get(order.order_id)
        if known is not None:
            given = {k: v for k, v in dataclasses.asdict(order).items() if v}
            order = dataclasses.replace(known, **given)
        self.by_id[order.order_id] = order


class FakeComplaintsUnitOfWork(FakeUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.cases = FakeCaseRepository()
        self.referrals = FakeReferralRepository()
        self.orders = FakeOrderCopies()

    def _stores(self) -> list[object]:
        return [*super()._stores(), self.cases, self.referrals, self.orders]
