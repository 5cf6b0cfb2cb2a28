"""Each service image starts, migrates and answers SERVING; the slice works across containers."""

from __future__ import annotations

import asyncio
import subprocess

from deploy.local.services import SERVICES, DevKey
from deploy.local.stack import SERVICE_DATABASES, Endpoints
from tests.containers.images import ServiceContainers, container_of
from tests.integration.clients import create_order, db_value, ledger, new_worker_id, order_request
from tests.integration.harness import RunningService, eventually


def _key(keys: list[DevKey], principal: str) -> str:
    return next(k.key for k in keys if k.principal == principal)


def _in_container(svc: RunningService, *command: str) -> subprocess.CompletedProcess[str]:
    exec_in = ["docker", "exec", container_of(svc), *command]
    return subprocess.run(exec_in, capture_output=True, text=True, check=False)


async def test_migrations_jobs_migrate_each_database_and_exit_0(
    containers: ServiceContainers, databases: None, stack: Endpoints
) -> None:
    jobs = [containers.start(name, JZ_MIGRATE_ONLY="true") for name in SERVICE_DATABASES]
    codes = await asyncio.gather(*(asyncio.to_thread(job.proc.wait, 180) for job in jobs))
    assert codes == [0] * len(jobs), [job.log.read_text()[-2000:] for job in jobs]
    for name in SERVICE_DATABASES:
        assert await db_value(stack.dsn(f"jz_{name}"), "SELECT count(*) FROM schema_migrations") > 0


async def test_every_service_serves_as_uid_10001_on_a_read_only_root(
    services: dict[str, RunningService],
) -> None:
    assert sorted(services) == sorted(SERVICES)
    for svc in services.values():
        assert svc.proc.poll() is None, svc.log.read_text()[-2000:]
        assert _in_container(svc, "id", "-u").stdout.strip() == "10001"
        assert _in_container(svc, "touch", "/app/written").returncode != 0
        assert _in_container(svc, "touch", "/tmp/written").returncode == 0


async def test_create_order_reaches_the_credit_ledger_across_containers(
    services: dict[str, RunningService], keys: list[DevKey]
) -> None:
    worker = new_worker_id()
    order = await create_order(services["orders"], _key(keys, "demo-platform"), order_request(worker))
    entries = await eventually(lambda: ledger(services["credit"], _key(keys, "operator"), worker))
    assert [e.worker_id for e in entries] == [worker]
    assert order.name.removeprefix("orders/") in entries[0].reason
