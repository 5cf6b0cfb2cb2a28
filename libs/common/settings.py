"""Settings from the environment (prefix ``JZ_``), one class for every service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.uow import Clock, OffsetClock, SystemClock

# Built by `make proto` (`make protoset`): the protos with their comments, for reflection and docs.
DEFAULT_DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "gen" / "jiazheng.binpb"


class ServiceSettings(BaseSettings):
    """What a service process needs to know about where it runs.

    Every field can be set as ``JZ_<FIELD_NAME>``; e.g. ``JZ_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(env_prefix="JZ_", extra="ignore")

    service_name: str = "jiazheng"
    database_url: str = "postgresql://jiazheng@127.0.0.1:5432/jiazheng"
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    # How long a call waits for a pooled connection before answering UNAVAILABLE.
    db_acquire_timeout_s: float = Field(default=5.0, gt=0)
    kafka_bootstrap: str = "127.0.0.1:9092"
    # How every Kafka client logs in: not at all on the local stack; in Kubernetes, SASL
    # (SCRAM-SHA-512) as the service's KafkaUser, whose password Strimzi keeps in the user's Secret.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    # For SASL_SSL: the CA of the brokers' certificates (Strimzi's cluster CA), else the system's.
    kafka_ca_file: Path | None = None
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    # FileDescriptorSet with comments (`make protoset`) that reflection answers from; when it is
    # missing, reflection answers from the generated descriptors, without comments.
    descriptor_set: Path = DEFAULT_DESCRIPTOR_SET
    metrics_port: int = Field(default=0, ge=0, le=65535, description="0 disables the Prometheus endpoint")
    # Loopback by default; a deployment that scrapes from outside the pod sets 0.0.0.0.
    metrics_host: str = "127.0.0.1"
    otlp_endpoint: str | None = None
    # A span per SQL statement (asyncpg instrumentation): off, it costs more than it tells.
    trace_sql: bool = False
    log_level: str = "INFO"
    # JSON list of {"key_sha256", "principal", "role", "tenant"}; see libs.common.auth.
    api_keys: str = "[]"
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    topic_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1)
    relay_enabled: bool = True
    relay_batch_size: int = Field(default=1000, ge=1)
    # Batches a relay has in flight at once while a backlog lasts (each its own transaction).
    relay_lanes: int = Field(default=2, ge=1)
    relay_poll_interval_s: float = Field(default=1.0, gt=0)
    outbox_retention_hours: float = Field(default=24.0, ge=0)
    # Consumer groups are "<prefix>-<consumer>"; another prefix is another, independent group.
    consumer_group_prefix: str = "jiazheng"
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_s: float = Field(default=0.2, ge=0)
    # Waiting out an outage backs off exponentially up to this.
    consumer_max_backoff_s: float = Field(default=5.0, gt=0)
    dlq_send_timeout_s: float = Field(default=10.0, gt=0)
    # At most this many records (one poll) are applied in one transaction.
    consumer_batch_size: int = Field(default=2000, ge=1)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    # Python's cyclic garbage collector examines the young objects after this many more container
    # objects were allocated than freed (Python's own default, 700, unless a service holds a large
    # heap that churns: see OrdersSettings and docs/decisions.md).
    gc_young_threshold: int = Field(default=700, ge=1)
    # Chaos-testing hook, empty in production. "relay_crash_after_publish" makes the relay
    # exit after Kafka acknowledged a batch and before it is marked published.
    fault_injection: str = ""
    # Personal-data protection (libs.common.pii); read only by services that build a Keyring.
    pii_keys: SecretStr | None = Field(default=None, description='JSON {"<key id>": "<base64 32 bytes>"}')
    pii_active_key: str = ""
    pii_hmac_key: SecretStr | None = Field(default=None, description="base64, at least 32 bytes")
    pii_keys_file: Path | None = Field(default=None, description="JSON keys, active_key, hmac_key; wins")
    # Durable timers (libs.common.timers).
    timer_poll_interval_s: float = Field(default=5.0, gt=0)
    timer_batch_size: int = Field(default=100, ge=1)
    # A handler failing this often parks its timer (kept, no longer fired); backs off meanwhile.
    timer_max_attempts: int = Field(default=10, ge=1)
    timer_retry_backoff_s: float = Field(default=1.0, gt=0)
    timer_max_backoff_s: float = Field(default=300.0, gt=0)
    # Shifts this process's clock (drills and tests: what time alone changes); 0 in production.
    clock_offset_s: float = 0.0
    # Kubernetes migrations Job (deploy/k8s): apply the database migrations, then exit 0 without serving.
    migrate_only: bool = False

    def clock(self) -> Clock:
        """The clock use cases and timers read: the system's, shifted by ``clock_offset_s``."""
        return OffsetClock(timedelta(seconds=self.clock_offset_s)) if self.clock_offset_s else SystemClock()
