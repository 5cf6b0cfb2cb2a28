"""Settings of the workers service: the common ones plus the service card's keys and URL."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, SecretStr

from libs.common.card_token import SigningKeyring
from libs.common.settings import ServiceSettings
from services.workers.domain import DEFAULT_PAY_BANDS, PayBand, SkillLevel, check_pay_bands
from services.workers.domain.qualifications import DEFAULT_HEALTH_VALIDITY_MONTHS

# Deliberately unresolvable (.invalid, RFC 6761): a deployment that forgets to set
# JZ_CARD_VERIFY_BASE_URL prints cards whose link fails visibly instead of pointing somewhere.
DEFAULT_VERIFY_BASE_URL = "https://card.example.invalid/v"


class WorkersSettings(ServiceSettings):
    """Where the workers service runs, and how it signs service cards (居家上门服务证).

    Card signing keys come from the environment (``JZ_CARD_SIGNING_KEYS``) or a mounted secret
    file (``JZ_CARD_KEYS_FILE``, which wins when set), both JSON
    ``{"<kid>": "<base64 of a raw 32-byte Ed25519 seed>"}``; ``JZ_CARD_ACTIVE_KEY`` names the key
    that signs new cards. Never in the repository.
    """

    service_name: str = "workers"
    card_signing_keys: SecretStr = SecretStr("{}")
    card_active_key: str = ""
    card_keys_file: Path | None = None
    # The QR code of a card encodes "<card_verify_base_url>?t=<token>".
    card_verify_base_url: str = DEFAULT_VERIFY_BASE_URL
    # How long a health check (体检) is valid from its issue date (our default: 12 months).
    health_check_validity_months: int = Field(default=DEFAULT_HEALTH_VALIDITY_MONTHS, ge=1, le=36)
    # Hourly pay guidance per skill level in fen: JSON [[level 1-4, min, max], ...]; empty: our default.
    pay_bands: str = ""
    # How long a service card's token is valid from issue (JZ_CARD_VALIDITY_DAYS); a card is
    # reissued before then. Our default: one year.
    card_validity_days: int = Field(default=365, ge=1, le=3650)

    def pay_band_table(self) -> tuple[PayBand, ...]:
        if not self.pay_bands:
            return DEFAULT_PAY_BANDS
        rows = json.loads(self.pay_bands)
        return check_pay_bands(tuple(PayBand(SkillLevel(level), low, high) for level, low, high in rows))

    def card_keyring(self) -> SigningKeyring:
        """The signing keyring from the secret file when one is set, else from the environment."""
        if self.card_keys_file is not None:
            entries = self.card_keys_file.read_text(encoding="utf-8")
        else:
            entries = self.card_signing_keys.get_secret_value()
        return SigningKeyring.from_json(entries, self.card_active_key)
