"""Opaque page tokens (AIP-158) over a monotonically increasing cursor."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from libs.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
T = TypeVar("T")
Moment = tuple[datetime, str]
"""A row's place in a listing ordered by a moment: the moment, and an id between rows of one instant."""


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


def encode_key_token(key: str, scope: str) -> str:
    """A token for pages ordered by a text key (e.g. a UUID), valid only for the same ``scope``
    (the request's filters): a token used with other filters would skip or repeat rows."""
    return base64.urlsafe_b64encode(f"k1:{_scope_hash(scope)}:{key}".encode()).decode()


def decode_key_token(token: str, scope: str) -> str | None:
    """The key after which the next page starts; None for the first page."""
    if not token:
        return None
    try:
        version, digest, key = base64.urlsafe_b64decode(token.encode()).decode().split(":", 2)
    except ValueError:
        raise InvalidArgument("page_token", "not a token this API returned") from None
    if version != "k1" or not key:
        raise InvalidArgument("page_token", "not a token this API returned")
    if digest != _scope_hash(scope):
        raise InvalidArgument("page_token", "was issued for a request with other filters")
    return key


def encode_moment_token(at: datetime, key: str, scope: str) -> str:
    """A token for pages ordered by a moment (oldest first), then a text key (an id) between rows
    of one instant: ``decode_moment_token`` reads it back."""
    return encode_key_token(f"{at.isoformat()}|{key}", scope)


def decode_moment_token(token: str, scope: str) -> Moment | None:
    """The moment and key after which the next page starts; None for the first page."""
    text = decode_key_token(token, scope)
    if text is None:
        return None
    at, _, key = text.partition("|")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise InvalidArgument("page_token", "not a token this API returned") from None
    if not key or moment.tzinfo is None:
        raise InvalidArgument("page_token", "not a token this API returned")
    return moment, key


def uuid_moment(after: Moment) -> tuple[datetime, uuid.UUID]:
    """A decoded token's moment and id, for listings whose ids are UUIDs."""
    at, key = after
    try:
        return at, uuid.UUID(key)
    except ValueError:
        raise InvalidArgument("page_token", "not a token this API returned") from None


async def moment_page(
    token: str,
    size: int,
    scope: str,
    fetch: Callable[[Moment | None, int], Awaitable[list[T]]],
    moment_of: Callable[[T], Moment],
) -> tuple[list[T], str]:
    """A page of a listing ordered by ``moment_of`` (oldest first), and the next page's token:
    ``fetch(after, limit)`` returns up to ``limit`` rows after ``after`` (None: from the first)."""
    limit = page_size(size)
    found = await fetch(decode_moment_token(token, scope), limit + 1)
    if len(found) <= limit:
        return found, ""
    at, key = moment_of(found[limit - 1])
    return found[:limit], encode_moment_token(at, key, scope)


def _scope_hash(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]
