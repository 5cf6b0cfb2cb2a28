"""Composition root of the regulator service: one faust worker (the projection and the
indicators, as agents and tables) that serves gRPC from a faust task in the same event loop."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import faust
from pydantic import AliasChoices, Field, SecretStr

from libs.common.grpc_server import GrpcServer
from libs.common.kafka import client_options, ensure_topics
from libs.common.logs import configure_logging
from libs.common.settings import ServiceSettings
from libs.common.telemetry import setup_telemetry
from services.regulator.api import POLICY, SERVICE, RegulatorServicer
from services.regulator.indicators import indicators_between, register_indicators
from services.regulator.projector import register_projection
from services.regulator.stall import BrokerOffsets
from services.regulator.topics import INDICATORS_TOPIC, REGULATOR_TOPICS


class RegulatorSettings(ServiceSettings):
    service_name: str = "regulator"
    # The key of the pseudonyms (JZ_REGULATOR_PSEUDONYM_KEY, base64, at least 32 bytes): from the
    # environment or a mounted Secret, never a default; rotating it starts new pseudonyms.
    pseudonym_key: SecretStr = Field(
        validation_alias=AliasChoices("JZ_REGULATOR_PSEUDONYM_KEY", "pseudonym_key"),
        description="base64, at least 32 bytes",
    )
    # How long a day's indicator window still takes late events (JZ_REGULATOR_GRACE_DAYS).
    grace_days: int = Field(
        default=7, ge=0, validation_alias=AliasChoices("JZ_REGULATOR_GRACE_DAYS", "grace_days")
    )
    # How long an agent may handle nothing while records wait before the process exits to be
    # started again (JZ_REGULATOR_STALL_S; services/regulator/stall.py).
    stall_s: float = Field(
        default=120.0, gt=0, validation_alias=AliasChoices("JZ_REGULATOR_STALL_S", "stall_s")
    )
    # The same while the tables recover, which takes long on a big history (JZ_REGULATOR_RECOVERY_STALL_S).
    recovery_stall_s: float = Field(
        default=900.0,
        gt=0,
        validation_alias=AliasChoices("JZ_REGULATOR_RECOVERY_STALL_S", "recovery_stall_s"),
    )
    # faust's working directory: tables live in memory and in their changelog topics, so nothing
    # kept here matters across restarts; outside the checkout so that it is not littered.
    faust_datadir: Path = Path(tempfile.gettempdir())
    # What the worker holds in memory while it catches up (faust's defaults are sized for
    # throughput, not for a process that should idle near 130 MB; docs/performance.md): records
    # waiting for each agent (JZ_REGULATOR_STREAM_BUFFER; faust's default is 4,096 per agent,
    # about 4 s of projection here), bytes fetched per partition (JZ_REGULATOR_FETCH_BYTES;
    # faust's default is 1 MiB, over some 75 partitions of sources and changelogs) and records
    # decoded per poll (JZ_REGULATOR_POLL_RECORDS; faust's default decodes a whole fetch at once).
    stream_buffer: int = Field(
        default=1024, ge=1, validation_alias=AliasChoices("JZ_REGULATOR_STREAM_BUFFER", "stream_buffer")
    )
    fetch_bytes: int = Field(
        default=256 * 1024, ge=1024, validation_alias=AliasChoices("JZ_REGULATOR_FETCH_BYTES", "fetch_bytes")
    )
    poll_records: int = Field(
        default=500, ge=1, validation_alias=AliasChoices("JZ_REGULATOR_POLL_RECORDS", "poll_records")
    )

    def app_id(self) -> str:
        """The faust app id: its consumer group and the prefix of its changelog topics."""
        return f"{self.consumer_group_prefix}-regulator"


def make_app(settings: RegulatorSettings) -> faust.App:
    """The regulator's faust app with every agent, table and task registered."""
    app = faust.App(
        settings.app_id(),
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        broker_credentials=broker_credentials(settings),
        store="memory://",
        datadir=str(settings.faust_datadir / f"faust-{settings.app_id()}"),
        web_enabled=False,
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_disable_leader=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        **buffer_limits(settings),
    )
    offsets = BrokerOffsets(client_options(settings))

    @app.on_before_shutdown.connect
    async def close_offsets(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await offsets.close()

    register_projection(app, settings, offsets)
    register_indicators(app, settings, offsets)
    server = GrpcServer.from_settings(settings, POLICY)
    server.add(RegulatorServicer(settings, indicators_between), SERVICE)
    serve_grpc(app, server, settings.shutdown_grace_s)
    return app


def buffer_limits(settings: RegulatorSettings) -> dict[str, Any]:
    """faust's settings that bound the records and bytes its consumer holds (RegulatorSettings)."""
    return {
        "stream_buffer_maxsize": settings.stream_buffer,
        "consumer_max_fetch_size": settings.fetch_bytes,
        "broker_max_poll_records": settings.poll_records,
    }


def broker_credentials(settings: RegulatorSettings) -> faust.SASLCredentials | None:
    """The faust clients' login: the same as every service's Kafka clients (client_options)."""
    options = client_options(settings)
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    return faust.SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        mechanism=options["sasl_mechanism"],
        ssl_context=options.get("ssl_context"),
    )


def serve_grpc(app: faust.App, server: GrpcServer, grace_s: float) -> None:
    """The gRPC server as a faust task: it starts once the tables are recovered (health answers
    SERVING from then on) and stops gracefully when the worker stops."""

    async def grpc_server() -> None:
        await server.start()
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop(grace_s)

    app.task(grpc_server)


def main() -> None:
    settings = RegulatorSettings()
    configure_logging(settings.service_name, settings.log_level)
    setup_telemetry(settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(
        ensure_topics(settings, [*REGULATOR_TOPICS, *REGULATOR_TOPICS.values(), INDICATORS_TOPIC])
    )
    # The worker installs the SIGTERM/SIGINT handlers that stop it; our JSON logs stay in place.
    worker = faust.Worker(
        make_app(settings), loop=loop, quiet=True, override_logging=False, redirect_stdouts=False
    )
    worker.spinner = None  # it writes terminal control codes among the JSON lines
    worker.execute_from_commandline()
