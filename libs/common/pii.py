"""Personal data (个人信息): sealed at rest, found by a keyed hash, masked in responses and logs.

A sealed value is stored in a ``bytea`` column in this versioned binary format::

    offset  size  content
    0       1     format version, 0x01
    1       1     n, the length of the key id
    2       n     key id (ASCII, ``[A-Za-z0-9._-]{1,64}``): which key of the keyring sealed it
    2+n     12    nonce, random per value
    14+n    rest  AES-256-GCM ciphertext followed by its 16-byte tag

The GCM associated data is the header (bytes ``0 .. 2+n``) followed by the field label the caller
names (e.g. ``"workers.worker.id_number"``): a value copied into another column, or given another
key id, does not open. New values are sealed with the keyring's active key; any key still in the
keyring opens the values it sealed, so keys rotate without rewriting old rows at once.

A lookup hash is HMAC-SHA256 under a key of its own over the purpose label and the normalised
value, so "is this ID number already registered?" is an indexed equality lookup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from libs.common.settings import ServiceSettings

FORMAT_VERSION = 1
NONCE_BYTES = 12
KEY_BYTES = 32
MIN_HMAC_KEY_BYTES = 32
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# A mainland resident ID number (17 digits and a check digit or X), or a mobile number, each
# not part of a longer run of digits (or, for the ID, of letters).
_ID_NUMBER_SHAPE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE_SHAPE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


class PersonalDataError(ValueError):
    """Personal data cannot be sealed or opened, or the keys are misconfigured.

    Messages name key ids and field labels, never a value or a key.
    """


class Keyring:
    """The encryption keys by id (one of them active, sealing new values) and the lookup-hash key."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str, hmac_key: bytes) -> None:
        for key_id, key in keys.items():
            _check_key(key_id, key)
        if active_key_id not in keys:
            raise PersonalDataError(f"the active key {active_key_id!r} is not among the keys {sorted(keys)}")
        if len(hmac_key) < MIN_HMAC_KEY_BYTES:
            raise PersonalDataError(f"the lookup-hash key must have at least {MIN_HMAC_KEY_BYTES} bytes")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id
        self._hmac_key = hmac_key

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Keyring:
        """The keyring configured by ``pii_keys_file`` if set, else by ``pii_keys``/``pii_active_key``/
        ``pii_hmac_key``; a missing or invalid configuration raises ``PersonalDataError``."""
        path = settings.pii_keys_file
        if path is not None:
            return cls.from_entries(_read_keys_file(path), source=str(path))
        if settings.pii_keys is None or settings.pii_hmac_key is None or not settings.pii_active_key:
            raise PersonalDataError(
                "personal-data keys not configured: set JZ_PII_KEYS_FILE or JZ_PII_KEYS, "
                "JZ_PII_ACTIVE_KEY and JZ_PII_HMAC_KEY"
            )
        entries = {
            "keys": _parse_json(settings.pii_keys.get_secret_value(), "JZ_PII_KEYS"),
            "active_key": settings.pii_active_key,
            "hmac_key": settings.pii_hmac_key.get_secret_value(),
        }
        return cls.from_entries(entries, source="the environment")

    @classmethod
    def from_entries(cls, entries: object, source: str) -> Keyring:
        """From ``{"keys": {"<key id>": "<base64>"}, "active_key": "<key id>", "hmac_key": "<base64>"}``."""
        given = entries if isinstance(entries, dict) else {}
        keys, active, hmac_key = given.get("keys"), given.get("active_key"), given.get("hmac_key")
        if not isinstance(keys, dict) or not isinstance(active, str) or not isinstance(hmac_key, str):
            raise PersonalDataError(
                f"personal-data keys from {source}: need keys (an object), active_key and hmac_key (strings)"
            )
        decoded = {str(key_id): _b64(value, f"key {key_id!r}") for key_id, value in keys.items()}
        return cls(decoded, active, _b64(hmac_key, "the lookup-hash key"))

    def __repr__(self) -> str:
        return f"Keyring(key_ids={sorted(self._ciphers)}, active_key_id={self.active_key_id!r})"

    def seal(self, value: str, aad: str) -> bytes:
        """``value`` encrypted with the active key, bound to the field label ``aad``."""
        key_id = self.active_key_id.encode("ascii")
        header = bytes([FORMAT_VERSION, len(key_id)]) + key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.active_key_id].encrypt(nonce, value.encode(), header + aad.encode())
        return header + nonce + sealed

    def open(self, sealed: bytes, aad: str) -> str:
        """The value ``seal`` sealed under the same field label ``aad``."""
        header, key_id, nonce, ciphertext = _split(sealed)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PersonalDataError(f"personal data sealed with key {key_id!r}, which the keyring lacks")
        try:
            return cipher.decrypt(nonce, ciphertext, header + aad.encode()).decode()
        except InvalidTag:
            raise PersonalDataError(
                f"personal data ({aad}, key {key_id!r}): authentication failed (altered, or another field's)"
            ) from None

    def lookup_hash(self, value: str, purpose: str) -> bytes:
        """The 32-byte keyed hash of the normalised ``value`` for lookups labelled ``purpose``."""
        label = purpose.encode()
        message = len(label).to_bytes(2, "big") + label + normalise(value).encode()
        return hmac.new(self._hmac_key, message, hashlib.sha256).digest()


def normalise(value: str) -> str:
    """The form a value is hashed in: full-width characters folded (NFKC), trimmed, upper case
    (an ID number's check character ``x`` is ``X``)."""
    return unicodedata.normalize("NFKC", value).strip().upper()


def mask_id_number(value: str) -> str:
    """An ID number (身份证号) with its first 3 and last 4 characters kept: ``110***********123X``."""
    return _keep_ends(value.strip(), 3, 4)


def mask_phone(value: str) -> str:
    """A phone number with its first 3 and last 4 digits kept: ``138****8000``."""
    return _keep_ends(value.strip(), 3, 4)


def mask_name(value: str) -> str:
    """A name with only its first character kept: ``张*``, ``欧阳**``; a one-character name is ``*``."""
    name = value.strip()
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else "*" * len(name)


def mask_address(value: str, shown: int = 6) -> str:
    """An address with only its first characters kept (city and district): ``北京市朝阳区***``."""
    address = value.strip()
    return address[:shown] + "***" if address else ""


def mask_in_text(text: str) -> str:
    """``text`` with whatever looks like an ID number or a mobile number masked."""
    text = _ID_NUMBER_SHAPE.sub(lambda m: mask_id_number(m.group()), text)
    return _MOBILE_SHAPE.sub(lambda m: mask_phone(m.group()), text)


def _keep_ends(value: str, head: int, tail: int) -> str:
    """``value`` with all but its first ``head`` and last ``tail`` characters as ``*`` (all, if short)."""
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def _split(sealed: bytes) -> tuple[bytes, str, bytes, bytes]:
    """Header, key id, nonce and ciphertext of a sealed value."""
    if len(sealed) < 2 or sealed[0] != FORMAT_VERSION:
        raise PersonalDataError("not a sealed value of a known format version")
    end = 2 + sealed[1]
    key_id = sealed[2:end].decode("ascii", errors="replace")
    if len(sealed) < end + NONCE_BYTES + 16:
        raise PersonalDataError(f"sealed value (key {key_id!r}) is truncated")
    return sealed[:end], key_id, sealed[end : end + NONCE_BYTES], sealed[end + NONCE_BYTES :]


def _check_key(key_id: str, key: bytes) -> None:
    if not KEY_ID.fullmatch(key_id):
        raise PersonalDataError(f"key id {key_id!r} must match {KEY_ID.pattern}")
    if len(key) != KEY_BYTES:
        raise PersonalDataError(f"key {key_id!r} must be {KEY_BYTES} bytes (AES-256), not {len(key)}")


def _b64(value: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error:
        raise PersonalDataError(f"{what} is not valid base64") from None


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise PersonalDataError(f"{what} is not valid JSON") from None


def _read_keys_file(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PersonalDataError(f"cannot read the personal-data keys file {path}: {exc.strerror}") from None
    return _parse_json(text, f"the personal-data keys file {path}")
