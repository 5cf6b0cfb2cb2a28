"""What the policy use cases need of storage, as protocols: policy_store.py implements them on
asyncpg, tests/policy_fakes.py in memory."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from libs.common.uow import UnitOfWork
from services.insurance.domain.cover import Cover
from services.insurance.domain.policies import GroupPolicy


@dataclass(frozen=True)
class PolicyFilter:
    """Which policies a listing shows: a company's, an insurer's products', or (both empty) all."""

    company_id: str = ""
    insurer: str = ""


@dataclass(frozen=True, order=True)
class PolicyKey:
    """A policy's place in a listing: issue order, the id between policies issued at one instant."""

    issued_at: datetime
    policy_id: uuid.UUID

    @classmethod
    def of(cls, policy: GroupPolicy) -> PolicyKey:
        return cls(policy.issued_at, policy.policy_id)


class PolicyRepository(Protocol):
    async def add_once(
        self, policy: GroupPolicy, requester: str, request_id: uuid.UUID
    ) -> GroupPolicy | None:
        """Store ``policy`` unless ``requester`` (the caller's tenant) already used ``request_id``;
        then the policy that request created."""
        ...

    async def issued_by(self, requester: str, request_id: uuid.UUID) -> GroupPolicy | None:
        """The policy ``requester`` created with ``request_id``, if any."""
        ...

    async def get(self, policy_id: uuid.UUID) -> GroupPolicy | None: ...

    async def get_for_update(self, policy_id: uuid.UUID) -> GroupPolicy | None:
        """The policy, its row locked until the unit of work ends (every writer locks it)."""
        ...

    async def update(self, policy: GroupPolicy) -> None:
        """Store the policy's state, its stints (new ones and changed end dates) and new endorsements."""
        ...

    async def listing(self, which: PolicyFilter, after: PolicyKey | None, limit: int) -> list[GroupPolicy]:
        """Up to ``limit`` policies of ``which``, in issue order (oldest first), after ``after``."""
        ...

    async def covers_of(self, worker_id: str) -> list[Cover]:
        """Every cover of the worker on every policy, expired or not."""
        ...


class PolicyUnitOfWork(UnitOfWork, Protocol):
    @property
    def policies(self) -> PolicyRepository: ...
