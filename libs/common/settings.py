"""Settings from the environment (prefix ``JZ_``), one class for every service."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What a service process needs to know about where it runs.

    Every field can be set as ``JZ_<FIELD_NAME>``; e.g. ``JZ_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(env_prefix="JZ_", extra="ignore")

    service_name: str = "jiazheng"
    database_url: str = "postgresql://jiazheng@127.0.0.1:5432/jiazheng"
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    kafka_bootstrap: str = "127.0.0.1:9092"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    metrics_port: int = Field(default=0, ge=0, le=65535, description="0 disables the Prometheus endpoint")
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    # JSON list of {"key_sha256", "principal", "role", "tenant"}; see libs.common.auth.
    api_keys: str = "[]"
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    topic_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1)
    relay_enabled: bool = True
    relay_batch_size: int = Field(default=500, ge=1)
    relay_poll_interval_s: float = Field(default=1.0, gt=0)
    outbox_retention_hours: float = Field(default=24.0, ge=0)
    # Consumer groups are "<prefix>-<consumer>"; another prefix is another, independent group.
    consumer_group_prefix: str = "jiazheng"
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_s: float = Field(default=0.2, ge=0)
    # Records applied in one transaction, and how long to wait to fill a batch.
    consumer_batch_size: int = Field(default=500, ge=1)
    consumer_batch_wait_s: float = Field(default=0.01, gt=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    # Chaos-testing hook, empty in production. "relay_crash_after_publish" makes the relay
    # exit after Kafka acknowledged a batch and before it is marked published.
    fault_injection: str = ""
