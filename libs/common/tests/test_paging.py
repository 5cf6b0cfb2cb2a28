"""Opaque page tokens."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from libs.common import paging
from libs.common.errors import InvalidArgument
from libs.common.paging import DEFAULT_PAGE_SIZE, decode_token, encode_token, page_size


@pytest.mark.parametrize("cursor", [0, 1, 99, 12345, 2**62])
def test_token_round_trips(cursor: int) -> None:
    assert decode_token(encode_token(cursor)) == cursor


def test_tokens_are_opaque_url_safe_strings() -> None:
    token = encode_token(12345)

    assert token != "12345"
    assert "12345" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def test_distinct_cursors_give_distinct_tokens() -> None:
    assert encode_token(1) != encode_token(2)


def test_empty_token_is_the_first_page() -> None:
    assert decode_token("") == 0


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "%%%%",
        "é",
        "djE6",  # "v1:" with no cursor
        base64.urlsafe_b64encode(b"v2:5").decode(),
        base64.urlsafe_b64encode(b"v1:abc").decode(),
        base64.urlsafe_b64encode(b"5").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe:1").decode(),
    ],
)
def test_garbage_token_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_token(token)

    assert caught.value.field == "page_token"


def test_page_size_defaults_when_zero() -> None:
    assert DEFAULT_PAGE_SIZE == 100
    assert page_size(0) == 100


@pytest.mark.parametrize("requested", [1, 25, 1000])
def test_page_size_keeps_an_explicit_request(requested: int) -> None:
    assert page_size(requested) == requested


def test_a_key_token_round_trips_for_the_same_filters_only() -> None:
    token = paging.encode_key_token("3f1e", "district=110105")
    assert paging.decode_key_token(token, "district=110105") == "3f1e"
    assert paging.decode_key_token("", "district=110105") is None
    with pytest.raises(InvalidArgument, match="other filters"):
        paging.decode_key_token(token, "district=110108")
    with pytest.raises(InvalidArgument, match="not a token"):
        paging.decode_key_token("bm9wZQ==", "district=110105")


def test_a_moment_token_round_trips_the_moment_and_key_for_the_same_filters_only() -> None:
    at = datetime(2026, 12, 3, 8, 30, 0, 123456, tzinfo=UTC)
    token = paging.encode_moment_token(at, "o-17|x", "co-1")

    assert paging.decode_moment_token(token, "co-1") == (at, "o-17|x")
    assert paging.decode_moment_token("", "co-1") is None
    with pytest.raises(InvalidArgument, match="other filters"):
        paging.decode_moment_token(token, "co-2")


@pytest.mark.parametrize(
    "key", ["o-17", "yesterday|o-17", "2026-12-03T08:30:00|o-17", "2026-12-03T08:30:00+00:00|"]
)
def test_a_moment_token_not_made_here_is_invalid_page_token(key: str) -> None:
    forged = paging.encode_key_token(key, "co-1")

    with pytest.raises(InvalidArgument, match="not a token") as raised:
        paging.decode_moment_token(forged, "co-1")
    assert raised.value.field == "page_token"


def test_a_moment_whose_id_is_not_a_uuid_is_invalid_page_token() -> None:
    at = datetime(2026, 12, 3, tzinfo=UTC)
    key = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"

    assert paging.uuid_moment((at, key)) == (at, uuid.UUID(key))
    with pytest.raises(InvalidArgument) as raised:
        paging.uuid_moment((at, "nobody"))
    assert raised.value.field == "page_token"
