"""QR images of a service card's verification link (居家上门服务证 二维码), for badges and screens.

Error correction is level Q (about 25 % of the code may be lost): a badge is worn all day,
scratched, bent, laminated (glare) and punched for a lanyard, and a consumer scans it at the door
in poor light. L and M (7 %, 15 %) recover too little for that; H (30 %) makes the ~370-character
link a version 20 code, whose modules get too small to scan at badge size. segno raises the
level further when that costs no extra size. At Q, a card link is a version 18 code (97 modules,
105 with the quiet zone): printed at about 0.35 mm per module it is 37 mm wide.
"""

from __future__ import annotations

import io
from urllib.parse import urlencode

import segno

ERROR_CORRECTION = "q"
# One module, 4 pixels: 300 dpi prints a card code about 36 mm wide, its size on the badge.
PNG_SCALE = 4
# The SVG has a physical size, so that a print shop cannot scale it by accident.
SVG_MODULE_MM = 0.35


def verification_url(base_url: str, token: str) -> str:
    """The link a card's QR code encodes: the verification page with the token as ``t``."""
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}{urlencode({'t': token})}"


def card_qr(url: str) -> segno.QRCode:
    """The QR code (never a Micro QR, which phone cameras rarely read) of ``url``."""
    return segno.make(url, error=ERROR_CORRECTION, micro=False)


def card_png(url: str, scale: int = PNG_SCALE) -> bytes:
    """The QR code of ``url`` as PNG image bytes."""
    buffer = io.BytesIO()
    card_qr(url).save(buffer, kind="png", scale=scale)
    return buffer.getvalue()


def card_svg(url: str) -> str:
    """The QR code of ``url`` as an SVG document sized in millimetres for print."""
    buffer = io.BytesIO()
    card_qr(url).save(buffer, kind="svg", scale=SVG_MODULE_MM, unit="mm", title="Service card")
    return buffer.getvalue().decode("utf-8")
