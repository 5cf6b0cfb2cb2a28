"""The code of the electronic home-visit service card (居家上门服务证): a signed, offline-verifiable token.

A card token is a compact JWS (RFC 7515) signed with Ed25519 (``alg: EdDSA``, RFC 8037) whose
claims follow JWT names, so any standard JOSE library verifies it with the published JSON Web Key
Set. It names the card and a pseudonymous worker id, never personal data. Whether a card is
revoked is an online question the workers service answers from its database with the card id
and worker id that a verification carries. Format and procedures: docs/service-card.md.

The format is a published contract like the protos: the workers service signs with it, and the
orders service (check-in, 确认入户) verifies with it offline, so it lives here rather than in
either service.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALGORITHM = "EdDSA"
TOKEN_TYPE = "jz-card+jwt"
CLAIMS_VERSION = 1
SEED_BYTES = 32
# Real tokens are about 300 characters; anything far longer is refused before it is parsed.
MAX_TOKEN_CHARS = 1024
# A card issued on a server whose clock runs slightly ahead of the scanner's is still good.
IAT_SKEW = timedelta(minutes=5)

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class CardCheck(StrEnum):
    """Outcome of an offline check of a card code, as a scanner reports it."""

    VALID = "valid"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"  # said only online, from the service's records: never by the offline check


@dataclass(frozen=True)
class CardClaims:
    """What a card code says: which card, whose (pseudonymously), and for how long."""

    card_id: str
    worker_ref: str
    issued_at: datetime
    expires_at: datetime
    version: int = CLAIMS_VERSION

    def to_jwt(self) -> dict[str, Any]:
        return {
            "jti": self.card_id,
            "sub": self.worker_ref,
            "iat": int(self.issued_at.timestamp()),
            "exp": int(self.expires_at.timestamp()),
            "ver": self.version,
        }

    @classmethod
    def from_jwt(cls, payload: Any) -> CardClaims:
        """The claims of a decoded payload; ValueError when one is missing or of the wrong type."""
        if not isinstance(payload, dict):
            raise ValueError("payload is not an object")
        return cls(
            card_id=_text(payload, "jti"),
            worker_ref=_text(payload, "sub"),
            issued_at=_instant(payload, "iat"),
            expires_at=_instant(payload, "exp"),
            version=_integer(payload, "ver"),
        )


@dataclass(frozen=True)
class CardVerification:
    """The result of checking a card code.

    ``claims`` is set whenever the signature is good (also for EXPIRED and NOT_YET_VALID): its
    card id and worker id are what the online revocation and status look-up starts from.
    """

    check: CardCheck
    claims: CardClaims | None = None

    @property
    def valid(self) -> bool:
        return self.check is CardCheck.VALID


class SigningKeyring:
    """The service's card signing keys by key id (``kid``); one of them signs new cards.

    Every key in the ring is published, so cards signed with a previous key keep verifying
    until that key is removed from the ring (rotation: docs/service-card.md).
    """

    def __init__(self, keys: Mapping[str, Ed25519PrivateKey], active_kid: str) -> None:
        if active_kid not in keys:
            raise ValueError(f"active card key {active_kid!r} is not among the keys {sorted(keys)}")
        self._keys = dict(keys)
        self.active_kid = active_kid

    @classmethod
    def from_json(cls, entries: str, active_kid: str) -> SigningKeyring:
        """A keyring from JSON ``{"<kid>": "<base64 of a raw 32-byte Ed25519 seed>"}``."""
        parsed = json.loads(entries)
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise ValueError("card keys must be a JSON object of key id to base64 seed")
        return cls({kid: _private_key(kid, seed) for kid, seed in parsed.items()}, active_kid)

    def __repr__(self) -> str:
        return f"SigningKeyring(kids={sorted(self._keys)}, active_kid={self.active_kid!r})"

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        return {kid: key.public_key() for kid, key in self._keys.items()}

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set to publish: the public half of every key that verifies."""
        return {"keys": [public_jwk(kid, key) for kid, key in self.public_keys().items()]}

    def sign(self, claims: CardClaims) -> str:
        """The compact JWS of ``claims``, signed with the active key."""
        header = {"alg": ALGORITHM, "kid": self.active_kid, "typ": TOKEN_TYPE}
        signing_input = f"{_encode_json(header)}.{_encode_json(claims.to_jwt())}"
        signature = self._keys[self.active_kid].sign(signing_input.encode("ascii"))
        return f"{signing_input}.{b64url_encode(signature)}"

    def verify(self, token: str, now: datetime) -> CardVerification:
        return verify_with_keys(token, self.public_keys(), now)


def public_jwk(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    """One published key as a JWK (RFC 8037 OKP key)."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(raw),
        "kid": kid,
        "use": "sig",
        "alg": ALGORITHM,
    }


def keys_from_jwks(jwks: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 signing keys of a JWK Set by key id.

    Keys of other kinds, or without a key id, cannot have signed a card and are skipped; a
    malformed Ed25519 key raises ValueError (the set is broken, not the token).
    """
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in jwks.get("keys", []):
        ours = jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("use", "sig") == "sig"
        if ours and isinstance(jwk.get("kid"), str):
            keys[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    return keys


def verify(token: str, jwks: Mapping[str, Any], now: datetime) -> CardVerification:
    """Check a card code offline with nothing but the published JWK Set, as a platform does."""
    return verify_with_keys(token, keys_from_jwks(jwks), now)


def verify_with_keys(token: str, keys: Mapping[str, Ed25519PublicKey], now: datetime) -> CardVerification:
    """Check a card code's form, key, signature and validity period at ``now``."""
    try:
        claims = _verified_claims(token, keys)
    except _Rejected as rejected:
        return CardVerification(rejected.check)
    if now >= claims.expires_at:
        return CardVerification(CardCheck.EXPIRED, claims)
    if claims.issued_at > now + IAT_SKEW:
        return CardVerification(CardCheck.NOT_YET_VALID, claims)
    return CardVerification(CardCheck.VALID, claims)


class _Rejected(Exception):
    def __init__(self, check: CardCheck) -> None:
        super().__init__(check)
        self.check = check


def _verified_claims(token: str, keys: Mapping[str, Ed25519PublicKey]) -> CardClaims:
    header_b64, payload_b64, signature_b64 = _segments(token)
    kid = _checked_header(_decode_json(header_b64))
    if kid not in keys:
        raise _Rejected(CardCheck.UNKNOWN_KEY)
    try:
        keys[kid].verify(_decode(signature_b64), f"{header_b64}.{payload_b64}".encode("ascii"))
    except InvalidSignature:
        raise _Rejected(CardCheck.BAD_SIGNATURE) from None
    try:
        claims = CardClaims.from_jwt(_decode_json(payload_b64))
    except ValueError:
        raise _Rejected(CardCheck.MALFORMED) from None
    if claims.version != CLAIMS_VERSION:
        raise _Rejected(CardCheck.MALFORMED)
    return claims


def _segments(token: str) -> tuple[str, str, str]:
    if len(token) > MAX_TOKEN_CHARS:
        raise _Rejected(CardCheck.MALFORMED)
    parts = token.split(".")
    if len(parts) != 3 or not all(part and _B64URL.fullmatch(part) for part in parts):
        raise _Rejected(CardCheck.MALFORMED)
    return parts[0], parts[1], parts[2]


def _checked_header(header: Any) -> str:
    """The key id of a header we issue: EdDSA only (never ``none``), our type, no critical extensions."""
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
        raise _Rejected(CardCheck.MALFORMED)
    kid = header.get("kid")
    if "crit" in header or not isinstance(kid, str):
        raise _Rejected(CardCheck.MALFORMED)
    return kid


def _decode(segment: str) -> bytes:
    try:
        raw = b64url_decode(segment)
    except ValueError:
        raise _Rejected(CardCheck.MALFORMED) from None
    # One token, one spelling: unused trailing bits must be zero.
    if b64url_encode(raw) != segment:
        raise _Rejected(CardCheck.MALFORMED)
    return raw


def _decode_json(segment: str) -> Any:
    try:
        return json.loads(_decode(segment))
    except ValueError:  # also UnicodeDecodeError
        raise _Rejected(CardCheck.MALFORMED) from None


def _encode_json(value: Mapping[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def b64url_encode(raw: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url; ValueError when it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise ValueError(str(error)) from None


def _private_key(kid: str, seed: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(seed, validate=True)
    except binascii.Error:
        raise ValueError(f"card key {kid!r} is not base64") from None
    if len(raw) != SEED_BYTES:
        raise ValueError(f"card key {kid!r} is {len(raw)} bytes, not a {SEED_BYTES}-byte Ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"claim {name!r} is missing or not a string")
    return value


def _integer(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    # bool is an int in Python, never a timestamp or a version here.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"claim {name!r} is missing or not an integer")
    return value


def _instant(payload: dict[str, Any], name: str) -> datetime:
    try:
        return datetime.fromtimestamp(_integer(payload, name), UTC)
    except (OverflowError, OSError) as error:
        raise ValueError(f"claim {name!r} is out of range") from error


def token_from_scan(scanned: str) -> str:
    """The token of what a scanner read: the verification link's ``t`` parameter, or the token itself."""
    if "?" not in scanned:
        return scanned.strip()
    values = parse_qs(urlsplit(scanned.strip()).query).get("t", [""])
    return values[0]
