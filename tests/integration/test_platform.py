"""Platform-level promises: migrations are safe when replicas start together, and `make run`'s
service runner leaves all five services answering gRPC health checks."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import asyncpg
import pytest

from deploy.local.services import SERVICES, LocalServices, health_status
from deploy.local.stack import Endpoints
from libs.common.db import migrate

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
