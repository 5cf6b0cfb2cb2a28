"""QR images of a service card's verification link.

No QR decoder is a declared dependency, so the content is checked through segno itself: the
symbol equals segno's encoding of exactly the expected link, and differs for another token.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.card_token import CardClaims, SigningKeyring
from services.workers.card_qr import PNG_SCALE, card_png, card_qr, card_svg, verification_url
from services.workers.settings import DEFAULT_VERIFY_BASE_URL

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def token() -> str:
    """A real card token, the shape of what the workers service issues."""
    ring = SigningKeyring({"card-2024-06": Ed25519PrivateKey.generate()}, "card-2024-06")
    claims = CardClaims(
        "0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c",
        "w_7f3c9a1e5b2d4c6e8f0a1b2c3d4e5f60",
        NOW,
        NOW + timedelta(days=365),
    )
    return ring.sign(claims)


@pytest.fixture(scope="module")
def url(token: str) -> str:
    return verification_url(DEFAULT_VERIFY_BASE_URL, token)


@pytest.mark.parametrize(
    ("base", "prefix"),
    [
        ("https://card.example.invalid/v", "https://card.example.invalid/v?t="),
        ("https://h.invalid/v?lang=zh", "https://h.invalid/v?lang=zh&t="),
    ],
)
def test_the_link_carries_the_token_unchanged_as_t(token: str, base: str, prefix: str) -> None:
    link = verification_url(base, token)

    assert link == prefix + token
    assert parse_qs(urlsplit(link).query)["t"] == [token]


def test_the_png_is_a_png(url: str) -> None:
    png = card_png(url)

    assert png.startswith(PNG_SIGNATURE)
    # IHDR width: (modules + 2 × 4 quiet-zone modules) × scale pixels.
    assert int.from_bytes(png[16:20], "big") == card_qr(url).symbol_size()[0] * PNG_SCALE


def test_the_svg_parses_as_xml_and_has_a_print_size(url: str) -> None:
    root = ET.fromstring(card_svg(url))

    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.attrib["width"].endswith("mm")
    assert 30 <= float(root.attrib["width"].removesuffix("mm")) <= 45


def test_a_card_link_is_a_version_18_code_at_error_level_q_or_better(url: str) -> None:
    qr = card_qr(url)

    assert not qr.is_micro
    assert qr.error in {"Q", "H"}
    assert qr.version == 18
    assert qr.mode == "byte"


def _segno_encoding(content: str, like: segno.QRCode) -> segno.QRCode:
    """segno's own encoding of ``content`` with every parameter of ``like`` fixed."""
    return segno.make(
        content, error=like.error, version=like.version, mode="byte", mask=like.mask, micro=False
    )


def test_the_code_encodes_exactly_the_link(url: str, token: str) -> None:
    qr = card_qr(url)

    assert qr.matrix == _segno_encoding(url, qr).matrix
    assert qr.matrix != _segno_encoding(verification_url(DEFAULT_VERIFY_BASE_URL, token[::-1]), qr).matrix
