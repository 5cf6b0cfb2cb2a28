"""Composition root of the regulator service: one faust worker (the projection and the
indicators, as agents and tables) that serves gRPC from a faust task in the same event loop."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
from prometheus_client import Gauge
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

TABLE_KEYS = Gauge(
    "jz_regulator_table_keys",
    "Keys each of the regulator's faust tables holds in memory (its changelog holds as many)",
    ["table"],
)


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
    # kept here matters across restarts. A local stack sets it into its own folder.
    faust_datadir: Path = Path(tempfile.gettempdir())

    def app_id(self) -> str:
        """The faust app id: its consumer group and the prefix of its changelog topics."""
        return f"{self.consumer_group_prefix}-regulator"


def make_app(settings: RegulatorSettings) -> faust.App:
    """The regulator's faust app with every agent, table and task registered."""
    settings.faust_datadir.mkdir(parents=True, exist_ok=True)  # faust makes only its own folder in it
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
    )
    offsets = BrokerOffsets(client_options(settings))

    @app.on_before_shutdown.connect
    async def close_offsets(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await offsets.close()

    register_projection(app, settings, offsets)
    register_indicators(app, settings, offsets)
    count_table_keys(app)
    server = GrpcServer.from_settings(settings, POLICY)
    server.add(RegulatorServicer(settings, indicators_between), SERVICE)
    serve_grpc(app, server, settings.shutdown_grace_s)
    return app


def count_table_keys(app: faust.App) -> None:
    """``jz_regulator_table_keys{table}``, read at each scrape: some tables grow with history
    (docs/regulators.md, "Memory"), and the gauge shows by how much."""
    for table in app.tables.values():
        TABLE_KEYS.labels(table.name).set_function(_keys_of(table))


def _keys_of(table: Any) -> Callable[[], int]:
    return lambda: len(table.data)  # faust's CollectionT does not declare its store


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
