"""Process lifecycle shared by every service: migrate, start, serve until SIGTERM, stop gracefully."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from libs.common.db import migrate
from libs.common.grpc_server import GrpcServer
from libs.common.logs import configure_logging
from libs.common.settings import ServiceSettings
from libs.common.telemetry import setup_telemetry

log = logging.getLogger(__name__)


@dataclass
class Components:
    """What a service's composition root hands to the runtime."""

    server: GrpcServer
    # Long-running coroutines (outbox relay, consumers); one ending is a failure.
    background: list[Coroutine[Any, Any, None]] = field(default_factory=list)
    # Called after the server stopped, in reverse order (close pools, stop faust...).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def bare_components(settings: ServiceSettings) -> Components:
    """A service that so far only migrates its database and answers health checks."""
    return Components(server=GrpcServer.from_settings(settings, policy={}))


S = TypeVar("S", bound=ServiceSettings)


def run_service(settings: S, migrations: Path | None, build: Callable[[S], Awaitable[Components]]) -> None:
    """Migrate, then serve until SIGTERM; with ``migrate_only`` (a migrations Job) migrate and exit 0."""
    configure_logging(settings.service_name, settings.log_level)
    if settings.migrate_only:
        applied = asyncio.run(migrate(settings.database_url, migrations))
        log.info("migrated; exiting (JZ_MIGRATE_ONLY)", extra={"fields": {"applied": applied}})
        raise SystemExit(0)
    setup_telemetry(settings)
    tune_collector(settings)
    raise SystemExit(asyncio.run(_serve(settings, migrations, build)))


def tune_collector(settings: ServiceSettings) -> None:
    """The young generation's threshold from the settings; the older generations' stay Python's."""
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(settings.gc_young_threshold, middle, oldest)


async def _serve(settings: S, migrations: Path | None, build: Callable[[S], Awaitable[Components]]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await migrate(settings.database_url, migrations)
    components = await build(settings)
    port = await components.server.start()
    tasks = [asyncio.create_task(c) for c in components.background]
    log.info("serving", extra={"fields": {"grpc_port": port, "metrics_port": settings.metrics_port}})
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not stopper]
    for t in failed:
        log.error(
            "background task ended; shutting down",
            extra={"fields": {"error": repr(t.exception()) if not t.cancelled() else "cancelled"}},
        )
    log.info("shutting down")
    await components.server.stop(settings.shutdown_grace_s)
    for t in tasks:
        t.cancel()
    if tasks:
        _, stuck = await asyncio.wait(tasks, timeout=settings.shutdown_grace_s)
        if stuck:  # closing the pools would wait for them: leave the rest to the process's end
            log.error(
                "background tasks ignored cancellation; exiting", extra={"fields": {"tasks": len(stuck)}}
            )
            return 1
    for close in reversed(components.closers):
        await close()
    stopper.cancel()
    return 1 if failed else 0
