"""Sealed cookies: a small JSON value encrypted and authenticated with AES-GCM under the gateway's
session key, so that every replica reads them and none keeps state. The cookie's name is bound
in as associated data: a value sealed for one cookie does not open as another."""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, name: str, value: dict[str, Any], ttl_s: float) -> str:
        """``value`` sealed for cookie ``name``, opening until ``ttl_s`` from now."""
        nonce = os.urandom(NONCE_BYTES)
        body = json.dumps({"v": value, "exp": time.time() + ttl_s}, separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, body, name.encode())
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, name: str, sealed: str | None) -> dict[str, Any] | None:
        """The value sealed for ``name``; None when absent, altered, sealed for another cookie or
        under another key, or expired."""
        if not sealed:
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
            body = json.loads(self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], name.encode()))
        except (binascii.Error, ValueError, InvalidTag):
            return None
        if not isinstance(body, dict) or body.get("exp", 0) < time.time():
            return None
        value = body.get("v")
        return value if isinstance(value, dict) else None
