"""API-key authentication and per-method authorisation.

Keys are configured hashed (SHA-256 hex), never in clear: ``JZ_API_KEYS`` is a JSON list of
``{"key_sha256": ..., "principal": ..., "role": ..., "tenant": ...}``. A caller sends
``authorization: Bearer <key>``; the key's hash names its principal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

from libs.common.errors import PermissionDenied, Unauthenticated


class Role(StrEnum):
    PLATFORM = "platform"
    COMPANY = "company"
    MEDIATOR = "mediator"
    INSURER = "insurer"
    REGULATOR = "regulator"
    OPERATOR = "operator"
    SERVICE = "service"
    UNION = "union"  # a trade union (工会) principal, filing disputes for workers


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``tenant`` scopes what they may see (a platform id, a company id...)."""

    id: str
    role: Role
    tenant: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, principals_by_hash: Mapping[str, Principal]) -> None:
        self._by_hash = dict(principals_by_hash)

    @classmethod
    def from_json(cls, raw: str) -> ApiKeyStore:
        entries = json.loads(raw or "[]")
        return cls(
            {
                e["key_sha256"]: Principal(
                    id=e["principal"], role=Role(e["role"]), tenant=e.get("tenant", "")
                )
                for e in entries
            }
        )

    def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing 'authorization: Bearer <api key>' metadata")
        principal = self._by_hash.get(hash_key(token.strip()))
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal


def authorization_of(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    """The call's one ``authorization`` header. Several are refused: which one counts would be
    up to each proxy on the way, so ambiguous credentials are treated as an attack."""
    values = [v for k, v in metadata if k == "authorization"]
    if len(values) > 1:
        raise Unauthenticated("more than one 'authorization' header; send exactly one")
    if not values:
        return None
    if not isinstance(values[0], str):
        raise Unauthenticated("'authorization' must be text")
    return values[0]


_current: ContextVar[Principal] = ContextVar("jiazheng_principal")


def current_principal() -> Principal:
    """The authenticated caller of the gRPC request being served."""
    return _current.get()


@contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    """Make ``principal`` the current caller for the code run inside."""
    token = _current.set(principal)
    try:
        yield
    finally:
        _current.reset(token)


def authorize(policy: Mapping[str, frozenset[Role]], method: str, principal: Principal) -> None:
    """Deny by default: a method absent from the policy is open to no one."""
    if principal.role not in policy.get(method, frozenset()):
        raise PermissionDenied(f"role {principal.role} may not call {method}")
