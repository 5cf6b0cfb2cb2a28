"""Opaque page tokens (AIP-158) over a monotonically increasing cursor."""

from __future__ import annotations

import base64

from libs.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100


def encode_token(cursor: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{cursor}".encode()).decode()


def decode_token(token: str) -> int:
    """The cursor after which the next page starts; 0 for the first page."""
    if not token:
        return 0
    try:
        version, _, cursor = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if version != "v1":
            raise ValueError(version)
        value = int(cursor)
        if not 0 <= value < 2**63:
            raise ValueError(cursor)
        return value
    except ValueError:
        raise InvalidArgument("page_token", "not a token this API returned") from None


def page_size(requested: int) -> int:
    return requested or DEFAULT_PAGE_SIZE
