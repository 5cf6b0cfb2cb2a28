"""Memory baseline: the smallest process doing what every service does when idle.

A grpc.aio server with the health service on ``JZ_GRPC_PORT`` and an asyncpg pool (2
connections, the services' ``JZ_DB_POOL_MIN``) on ``JZ_DATABASE_URL``; no project code, no
faust, no telemetry, no Kafka client. Runs until SIGTERM. Used by ``bench.idle_memory``:
``python -m bench.bare_service``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


async def plain_pool(dsn: str) -> asyncpg.Pool:
    """asyncpg's own pool, as a process without project code would have it."""
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
    assert pool is not None
    return pool


async def serve(
    register: Callable[[grpc.aio.Server, asyncpg.Pool], None] = lambda server, pool: None,
    pool_factory: Callable[[str], Awaitable[asyncpg.Pool]] = plain_pool,
) -> None:
    """Health on ``JZ_GRPC_PORT``, a pool on ``JZ_DATABASE_URL``, what ``register`` adds; until SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await pool_factory(os.environ["JZ_DATABASE_URL"])
    server = grpc.aio.server()
    register(server, pool)
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{os.environ['JZ_GRPC_PORT']}")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        await stop.wait()
    finally:
        await server.stop(1)
        await pool.close()


if __name__ == "__main__":
    asyncio.run(serve())
