"""Use cases: consent to a full credit lookup (授权查询), by a one-time code the worker hands over.

The worker confirms in person to their company (the national app's face scan has no
counterpart here); the company's app asks for a code, valid 10 minutes and once, which the
worker gives the consumer; the consumer's platform redeems it for a grant (24 hours by default).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from libs.common.auth import Principal, Role
from libs.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.workers import domain as d
from services.workers import events
from services.workers.service_layer.workers import WorkersUnitOfWork, worker_company

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a door
CODE_LENGTH = 8
CODE_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class ConsentCode:
    code: str
    worker_id: uuid.UUID
    grant_ttl: timedelta
    expires_at: datetime


class ConsentRepository(Protocol):
    async def add_code(self, code: ConsentCode) -> None:
        """Store the code (only its keyed hash)."""
        ...

    async def use_code(self, worker_id: uuid.UUID, code: str, now: datetime) -> timedelta | None:
        """Mark the worker's unexpired, unused ``code`` used; its grant's lifetime, or None."""
        ...

    async def add_grant(self, grant: d.ConsentGrant) -> None: ...

    async def grant(self, grant_id: uuid.UUID) -> d.ConsentGrant | None: ...

    async def save_grant(self, grant: d.ConsentGrant) -> None: ...

    async def grants(self, worker_id: uuid.UUID, platform_id: str | None) -> list[d.ConsentGrant]: ...


class ConsentUnitOfWork(WorkersUnitOfWork, Protocol):
    @property
    def consent(self) -> ConsentRepository: ...


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


async def create_consent_code(
    uow: ConsentUnitOfWork, principal: Principal, worker_id: uuid.UUID, grant_ttl: timedelta
) -> ConsentCode:
    async with uow:
        await worker_company(uow, principal, worker_id)
        now = uow.clock.now()
        d.grant_consent(worker_id, "-", "-", now, grant_ttl)  # the lifetime's rule, checked now
        code = ConsentCode(new_code(), worker_id, grant_ttl, now + CODE_TTL)
        await uow.consent.add_code(code)
        await uow.commit()
        return code


async def redeem_consent_code(
    uow: ConsentUnitOfWork, principal: Principal, worker_id: uuid.UUID, code: str, consumer_ref: str
) -> d.ConsentGrant:
    async with uow:
        now = uow.clock.now()
        ttl = await uow.consent.use_code(worker_id, code.upper(), now)
        if ttl is None:
            raise InvalidArgument("code", "not a valid code for this worker (wrong, used or expired)")
        grant = d.grant_consent(worker_id, principal.tenant, consumer_ref, now, ttl)
        await uow.consent.add_grant(grant)
        await uow.add_event(events.TOPIC, events.consent_granted(grant))
        await uow.commit()
        return grant


async def revoke_consent_grant(
    uow: ConsentUnitOfWork, principal: Principal, worker_id: uuid.UUID, grant_id: uuid.UUID
) -> d.ConsentGrant:
    async with uow:
        grant = await uow.consent.grant(grant_id)
        if grant is None or grant.worker_id != worker_id:
            raise NotFound(f"workers/{worker_id}/consentGrants/{grant_id}")
        await _may_see(uow, principal, grant.worker_id, grant.platform_id)
        revoked = d.revoke_consent(grant, uow.clock.now())
        await uow.consent.save_grant(revoked)
        await uow.add_event(events.TOPIC, events.consent_revoked(revoked))
        await uow.commit()
        return revoked


async def list_consent_grants(
    uow: ConsentUnitOfWork, principal: Principal, worker_id: uuid.UUID, active_only: bool
) -> list[d.ConsentGrant]:
    async with uow:
        platform = principal.tenant if principal.role is Role.PLATFORM else None
        await _may_see(uow, principal, worker_id, platform)
        grants = await uow.consent.grants(worker_id, platform)
        now = uow.clock.now()
        return [g for g in grants if g.active(now)] if active_only else grants


async def _may_see(
    uow: ConsentUnitOfWork, principal: Principal, worker_id: uuid.UUID, platform_id: str | None
) -> None:
    """The worker's company and operators see every grant; a platform only the ones it holds."""
    if principal.role is Role.PLATFORM:
        if platform_id != principal.tenant:
            raise PermissionDenied("the grant is held by another platform")
        if not await uow.workers.employments(worker_id):
            raise NotFound(f"workers/{worker_id}")
        return
    await worker_company(uow, principal, worker_id)
