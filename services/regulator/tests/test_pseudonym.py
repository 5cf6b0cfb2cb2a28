"""Keyed pseudonyms: stable per key, kind and id, distinct across kinds and keys, as the rulebook
computes them (HMAC-SHA256 of "<kind>:<id>", 16 bytes in lowercase base32 after the prefix)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from services.regulator.domain.pseudonym import IdKind, pseudonym, pseudonym_key

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
WORKER_ID = "3f1c2a4e-0000-4000-8000-000000000001"


def test_a_pseudonym_is_stable_for_the_same_key_kind_and_id() -> None:
    assert pseudonym(KEY, IdKind.WORKER, WORKER_ID) == pseudonym(KEY, IdKind.WORKER, WORKER_ID)


def test_the_same_id_of_another_kind_or_under_another_key_is_another_pseudonym() -> None:
    by_kind = {pseudonym(KEY, kind, WORKER_ID).split("-", 1)[1] for kind in IdKind}
    assert len(by_kind) == len(IdKind)
    assert pseudonym(KEY, IdKind.WORKER, WORKER_ID) != pseudonym(OTHER_KEY, IdKind.WORKER, WORKER_ID)


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        (IdKind.WORKER, "w-"),
        (IdKind.ORDER, "o-"),
        (IdKind.CASE, "k-"),
        (IdKind.CLAIM, "c-"),
        (IdKind.CARD, "d-"),
        (IdKind.OFFER, "f-"),
    ],
)
def test_the_rulebook_formula_with_the_kind_prefix(kind: IdKind, prefix: str) -> None:
    digest = hmac.new(KEY, f"{kind.value}:{WORKER_ID}".encode(), hashlib.sha256).digest()[:16]
    expected = prefix + base64.b32encode(digest).decode().rstrip("=").lower()

    assert pseudonym(KEY, kind, WORKER_ID) == expected
    assert re.fullmatch(rf"{prefix}[a-z2-7]{{26}}", expected)


def test_a_resource_name_keeps_its_collection_and_an_absent_id_stays_absent() -> None:
    assert pseudonym(KEY, IdKind.CLAIM, "claims/c1") == "claims/" + pseudonym(KEY, IdKind.CLAIM, "c1")
    assert pseudonym(KEY, IdKind.WORKER, "") == ""


def test_the_key_setting_is_base64_of_at_least_32_bytes() -> None:
    assert pseudonym_key(base64.b64encode(KEY).decode()) == KEY
    with pytest.raises(ValueError, match="at least 32 bytes"):
        pseudonym_key(base64.b64encode(b"short").decode())
