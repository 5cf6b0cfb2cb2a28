"""Keyed pseudonyms (假名): the same id of the same kind is the same pseudonym in every event of
every regulator topic, and without the key it can be neither recovered nor confirmed by guessing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from enum import StrEnum

MIN_KEY_BYTES = 32


class IdKind(StrEnum):
    """The kinds of ids regulators see only as pseudonyms, each with its prefix."""

    WORKER = "worker"
    ORDER = "order"
    CASE = "case"
    CLAIM = "claim"
    CARD = "card"
    OFFER = "offer"

    @property
    def prefix(self) -> str:
        return _PREFIXES[self]


_PREFIXES = {
    IdKind.WORKER: "w-",
    IdKind.ORDER: "o-",
    IdKind.CASE: "k-",
    IdKind.CLAIM: "c-",
    IdKind.CARD: "d-",
    IdKind.OFFER: "f-",
}


def pseudonym_key(encoded: str) -> bytes:
    """The key from its base64 setting (JZ_REGULATOR_PSEUDONYM_KEY); a short key is refused."""
    key = base64.b64decode(encoded, validate=True)
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes, not {len(key)}")
    return key


def pseudonym(key: bytes, kind: IdKind, value: str) -> str:
    """``<prefix><base32 of the first 16 bytes of HMAC-SHA256(key, "<kind>:<id>")>``; an empty id
    (none given) stays empty. A resource name (``claims/{id}``) keeps its collection."""
    if not value:
        return ""
    collection, slash, bare = value.rpartition("/")
    digest = hmac.new(key, f"{kind.value}:{bare}".encode(), hashlib.sha256).digest()[:16]
    return f"{collection}{slash}{kind.prefix}{base64.b32encode(digest).decode().rstrip('=').lower()}"
