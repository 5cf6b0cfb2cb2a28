"""Platform-level promises: migrations are safe when replicas start together, and `make run`'s
service runner leaves all five services answering gRPC health checks."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

import asyncpg
import pytest

from deploy.local.services import SERVICES, LocalServices, health_status
from deploy.local.stack import Endpoints, free_port, pid_alive
from libs.common.db import migrate
from tests.integration.clients import create_order, order_request
from tests.integration.harness import ServiceHarness, eventually

CREDIT_MIGRATIONS = Path(__file__).parents[2] / "services" / "credit" / "migrations"


async def test_replicas_migrating_at_once_apply_each_migration_once(
    endpoints: Endpoints, scratch_database: str
) -> None:
    dsn = endpoints.dsn(scratch_database)
    results = await asyncio.gather(*(migrate(dsn, CREDIT_MIGRATIONS) for _ in range(4)))

    applied = [v for r in results for v in r]
    assert sorted(applied) == sorted(set(applied))
    assert "0001_ledger.sql" in applied
    assert "common/0001_outbox_inbox.sql" in applied
    conn = await asyncpg.connect(dsn)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
    finally:
        await conn.close()
    assert sorted(versions) == sorted(applied)
    assert {"outbox", "inbox", "ledger_entries"} <= tables


async def test_changed_migration_is_refused(endpoints: Endpoints, scratch_database: str) -> None:
    dsn = endpoints.dsn(scratch_database)
    with tempfile.TemporaryDirectory() as folder:
        migration = Path(folder) / "0001_t.sql"
        migration.write_text("CREATE TABLE t (id int);")
        await migrate(dsn, Path(folder))
        migration.write_text("CREATE TABLE t (id bigint);")
        with pytest.raises(RuntimeError, match=r"0001_t\.sql changed"):
            await migrate(dsn, Path(folder))


async def test_all_five_services_answer_health_checks(endpoints: Endpoints, tmp_path: Path) -> None:
    services = LocalServices(tmp_path)
    try:
        state = await asyncio.to_thread(services.up, endpoints)
        statuses = {name: await health_status(state[name]["grpc_port"]) for name in SERVICES}
    finally:
        await asyncio.to_thread(services.down)
    assert statuses == dict.fromkeys(SERVICES, "SERVING")


async def test_up_again_replaces_a_killed_supervisor_on_the_same_ports(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    services = LocalServices(tmp_path)
    try:
        before = await asyncio.to_thread(services.up, endpoints)
        [orders] = [row for row in services.status() if row.name == "orders"]
        assert pid_alive(orders.child_pid)
        os.kill(before["orders"]["supervisor_pid"], signal.SIGKILL)

        async def service_gone() -> bool:  # the kernel told it to stop with its supervisor
            return not pid_alive(orders.child_pid)

        await eventually(service_gone, within=30)
        after = await asyncio.to_thread(services.up, endpoints)
        health = await health_status(after["orders"]["grpc_port"])
    finally:
        await asyncio.to_thread(services.down)

    assert after["orders"]["supervisor_pid"] != before["orders"]["supervisor_pid"]
    assert after["orders"]["grpc_port"] == before["orders"]["grpc_port"]
    assert after["orders"]["metrics_port"] == before["orders"]["metrics_port"]
    assert health == "SERVING"
    assert {n: after[n] for n in SERVICES if n != "orders"} == {
        n: before[n] for n in SERVICES if n != "orders"
    }


async def test_service_exposes_prometheus_metrics_and_stops_cleanly_on_sigterm(
    harness: ServiceHarness, scratch_database: str
) -> None:
    metrics_port = free_port()
    svc = await harness.start("orders", database=scratch_database, metrics_port=metrics_port)
    await create_order(svc, harness.key("demo-platform"), order_request())

    metrics = await svc.metrics_showing('jz_outbox_published_total{service="orders"}')
    method = "/jiazheng.orders.v1.OrderService/CreateOrder"
    created = f'jz_grpc_requests_total{{code="OK",method="{method}",service="orders"}}'
    assert f"{created} 1.0" in metrics
    assert 'jz_outbox_published_total{service="orders"} 1.0' in metrics

    svc.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(svc.proc.wait, 30) == 0
    assert '"msg": "shutting down"' in svc.log.read_text()
