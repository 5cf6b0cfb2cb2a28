"""Composition root of the gateway: the aiohttp site, and the gRPC server every service has
(health only here), which answers SERVING once the site listens."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from libs.common.grpc_server import GrpcServer
from libs.common.logs import configure_logging
from libs.common.telemetry import setup_telemetry
from services.gateway import card_pages, regulator_pages
from services.gateway.backends import GrpcServices
from services.gateway.sealed import Sealer
from services.gateway.settings import GatewaySettings
from services.gateway.web import GATEWAY, HERE, Gateway, safe_pages, templates

log = logging.getLogger(__name__)


def make_web_app(gateway: Gateway) -> web.Application:
    app = web.Application(middlewares=[safe_pages], client_max_size=64 * 1024)
    app[GATEWAY] = gateway
    app.router.add_static("/static/", HERE / "static")
    card_pages.add_routes(app)
    regulator_pages.add_routes(app)
    return app


async def serve(settings: GatewaySettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    services = GrpcServices(settings)
    gateway = Gateway(
        services,
        Sealer(settings.session_key()),
        settings.platform_keys(),
        settings.cookie_secure,
        settings.session_hours,
        templates(),
    )
    runner = web.AppRunner(make_web_app(gateway), access_log=None, shutdown_timeout=settings.shutdown_grace_s)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    health = GrpcServer.from_settings(settings, {})
    grpc_port = await health.start()
    log.info("serving", extra={"fields": {"http_port": settings.http_port, "grpc_port": grpc_port}})
    await stop.wait()
    log.info("shutting down")
    await health.stop(settings.shutdown_grace_s)
    await runner.cleanup()
    await services.close()


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.service_name, settings.log_level)
    setup_telemetry(settings)
    asyncio.run(serve(settings))
