"""Settings of the web gateway (JZ_ prefix, as every service's)."""

from __future__ import annotations

import base64
import binascii
import json

from pydantic import Field, SecretStr, field_validator

from libs.common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """The HTTP gateway: the card verification page and the regulator dashboard over the gRPC APIs
    of workers, orders and regulator. It keeps no data: no database, no Kafka."""

    service_name: str = "gateway"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # host:port of the gRPC services it calls.
    workers_address: str = "127.0.0.1:50051"
    orders_address: str = "127.0.0.1:50052"
    regulator_address: str = "127.0.0.1:50056"
    # The gateway's own API key (role service): what it reads cards with (VerifyCard).
    gateway_api_key: SecretStr = SecretStr("")
    # JSON {"<platform id>": "<that platform's API key>"}: 确认入户 checks an order in with the
    # authority of the platform the link names; a platform without a key here gets no button.
    gateway_platform_keys: SecretStr = SecretStr("{}")
    # base64 of 32 bytes: seals the regulator's session cookie (AES-GCM); rotating it logs
    # everyone out. From a Secret, never a default.
    gateway_session_key: SecretStr = Field(description="base64, 32 bytes")
    session_hours: float = Field(default=8.0, gt=0)
    # Cookies are Secure unless this is false (a plain-HTTP development stack other than localhost).
    cookie_secure: bool = True
    # Per call to the services behind: a slow one is a clear error page, not a hanging one.
    call_timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("gateway_session_key")
    @classmethod
    def _32_bytes(cls, value: SecretStr) -> SecretStr:
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except binascii.Error as bad:
            raise ValueError("JZ_GATEWAY_SESSION_KEY must be base64") from bad
        if len(raw) != 32:
            raise ValueError("JZ_GATEWAY_SESSION_KEY must be 32 bytes (base64)")
        return value

    def session_key(self) -> bytes:
        return base64.b64decode(self.gateway_session_key.get_secret_value())

    def platform_keys(self) -> dict[str, str]:
        keys = json.loads(self.gateway_platform_keys.get_secret_value() or "{}")
        if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
            raise ValueError('JZ_GATEWAY_PLATFORM_KEYS must be JSON {"<platform id>": "<api key>"}')
        return keys
