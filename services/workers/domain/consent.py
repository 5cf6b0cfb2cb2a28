"""Consent grants (授权查询): a worker lets a platform's consumer see the full credit record.

Without a grant a consumer sees only the credit level and the card status (DOMAIN §4).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from libs.common.errors import FailedPrecondition, InvalidArgument

DEFAULT_GRANT_TTL = timedelta(hours=24)  # our default
MAX_GRANT_TTL = timedelta(days=30)


@dataclass(frozen=True)
class ConsentGrant:
    grant_id: uuid.UUID
    worker_id: uuid.UUID
    platform_id: str
    consumer_ref: str  # the platform's pseudonymous consumer id
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.granted_at <= now < self.expires_at


def grant_consent(
    worker_id: uuid.UUID,
    platform_id: str,
    consumer_ref: str,
    now: datetime,
    ttl: timedelta = DEFAULT_GRANT_TTL,
) -> ConsentGrant:
    if not timedelta(minutes=1) <= ttl <= MAX_GRANT_TTL:
        raise InvalidArgument("ttl", f"must be between 1 minute and {MAX_GRANT_TTL.days} days")
    return ConsentGrant(uuid.uuid4(), worker_id, platform_id, consumer_ref, now, now + ttl)


def revoke_consent(grant: ConsentGrant, now: datetime) -> ConsentGrant:
    if grant.revoked_at is not None:
        raise FailedPrecondition("the grant is already revoked")
    return replace(grant, revoked_at=now)
