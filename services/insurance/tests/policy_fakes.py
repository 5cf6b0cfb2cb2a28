"""In-memory group policies for unit tests of the policy use cases, with the store's semantics: a
requester's request id creates one policy, listings in policy id order, covers of a worker over
every policy. State is kept in plain dicts so that the unit of work's rollback can copy it."""

from __future__ import annotations

import uuid

from libs.common.testing import FakeUnitOfWork, FixedClock
from services.insurance.domain.cover import Cover
from services.insurance.domain.policies import GroupPolicy
from services.insurance.service_layer.policy_ports import PolicyFilter, PolicyKey


class FakePolicyRepository:
    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, GroupPolicy] = {}
        self.by_request: dict[tuple[str, uuid.UUID], uuid.UUID] = {}

    async def add_once(
        self, policy: GroupPolicy, requester: str, request_id: uuid.UUID
    ) -> GroupPolicy | None:
        earlier = await self.issued_by(requester, request_id)
        if earlier is not None:
            return earlier
        self.by_request[requester, request_id] = policy.policy_id
        self.by_id[policy.policy_id] = policy
        return None

    async def issued_by(self, requester: str, request_id: uuid.UUID) -> GroupPolicy | None:
        earlier = self.by_request.get((requester, request_id))
        return None if earlier is None else self.by_id[earlier]

    async def get(self, policy_id: uuid.UUID) -> GroupPolicy | None:
        return self.by_id.get(policy_id)

    async def get_for_update(self, policy_id: uuid.UUID) -> GroupPolicy | None:
        return self.by_id.get(policy_id)

    async def update(self, policy: GroupPolicy) -> None:
        assert policy.policy_id in self.by_id, "update of a policy never added"
        self.by_id[policy.policy_id] = policy

    async def listing(self, which: PolicyFilter, after: PolicyKey | None, limit: int) -> list[GroupPolicy]:
        shown = [
            p
            for p in self.by_id.values()
            if which.company_id in ("", p.company_id)
            and which.insurer in ("", p.insurer)
            and (after is None or PolicyKey.of(p) > after)
        ]
        # PostgreSQL orders uuids by their bytes, as Python orders UUID objects.
        return sorted(shown, key=PolicyKey.of)[:limit]

    async def covers_of(self, worker_id: str) -> list[Cover]:
        policies = sorted(self.by_id.values(), key=lambda p: (p.start, p.policy_id))
        return [c for p in policies for c in p.covers() if c.insured.worker_id == worker_id]


class FakePolicyUnitOfWork(FakeUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.policies = FakePolicyRepository()

    def _stores(self) -> list[object]:
        return [*super()._stores(), self.policies]
