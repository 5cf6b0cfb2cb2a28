"""The outbox relay as a process of its own: ``python -m libs.common.relay``.

A service's API process runs its relay in the same event loop unless ``JZ_RELAY_ENABLED=false``;
where calls per second matter (the CreateOrder figures in docs/performance.md), the relay runs
here instead, on another core, against the service's database (``JZ_DATABASE_URL``). It needs only
the common tables, answers gRPC health checks for probes, and may run beside other relays of the
same database: relays claim whole aggregates, so they never reorder one.
"""

from __future__ import annotations

from libs.common.db import create_pool
from libs.common.grpc_server import GrpcServer
from libs.common.kafka import idempotent_producer
from libs.common.outbox import OutboxRelay
from libs.common.runtime import Components, run_service
from libs.common.settings import ServiceSettings


class RelaySettings(ServiceSettings):
    service_name: str = "relay"  # e.g. JZ_SERVICE_NAME=orders-relay, for logs and metrics


async def build(settings: RelaySettings) -> Components:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    relay = OutboxRelay(pool, idempotent_producer(settings), settings)
    return Components(
        server=GrpcServer.from_settings(settings, policy={}), background=[relay.run()], closers=[pool.close]
    )


def main() -> None:
    run_service(RelaySettings(), None, build)


if __name__ == "__main__":
    main()
