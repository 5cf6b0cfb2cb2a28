"""Each service image starts, migrates and answers SERVING; the slice works across containers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from deploy.local.services import SERVICES, DevKey
from deploy.local.stack import SERVICE_DATABASES, Endpoints
from libs.common.kafka import events_topic
from tests.containers.images import GATEWAY, ServiceContainers, container_of
from tests.integration.clients import create_order, db_value, ledger, new_worker_id, order_request
from tests.integration.harness import RunningService, eventually

REPO = Path(__file__).resolve().parents[2]


def _key(keys: list[DevKey], principal: str) -> str:
    return next(k.key for k in keys if k.principal == principal)


def _in_container(svc: RunningService, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``command`` in the service's container, with its settings and ``env`` (passed by name, so
    that no value shows in a command line)."""
    names = [arg for name in env for arg in ("-e", name)]
    exec_in = ["docker", "exec", *names, container_of(svc), *command]
    return subprocess.run(exec_in, capture_output=True, text=True, check=False, env={**os.environ, **env})


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


async def test_the_image_holds_the_package_versions_constraints_txt_pins(
    services: dict[str, RunningService],
) -> None:
    frozen = _in_container(services["orders"], "python", "-m", "pip", "freeze").stdout.splitlines()
    installed = dict(line.split("==") for line in frozen if "==" in line)
    pins = (REPO / "constraints.txt").read_text().splitlines()
    pinned = dict(line.split("==") for line in pins if "==" in line)
    assert "grpcio" in installed
    assert {name: version for name, version in installed.items() if pinned.get(name) != version} == {}


async def test_create_order_reaches_the_credit_ledger_across_containers(
    services: dict[str, RunningService], keys: list[DevKey]
) -> None:
    worker = new_worker_id()
    order = await create_order(services["orders"], _key(keys, "demo-platform"), order_request(worker))
    entries = await eventually(lambda: ledger(services["credit"], _key(keys, "operator"), worker))
    assert [e.worker_id for e in entries] == [worker]
    assert order.name.removeprefix("orders/") in entries[0].reason


def _http_status(url: str) -> int:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy to 127.0.0.1
    try:
        with direct.open(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as answered:
        return answered.code


async def test_the_gateway_ships_its_pages_and_answers_http(
    services: dict[str, RunningService], containers: ServiceContainers
) -> None:
    """Its templates and static files (not Python) are in the image, and its HTTP server, up
    before it reports SERVING, answers without a server error."""
    gateway = REPO / "services" / GATEWAY
    pages = {
        f"/app/services/{GATEWAY}/{p.relative_to(gateway)}"
        for d in ("templates", "static")
        for p in (gateway / d).rglob("*")
        if p.is_file()
    }
    shipped = _in_container(services[GATEWAY], "find", f"/app/services/{GATEWAY}", "-type", "f").stdout
    assert pages
    assert pages <= set(shipped.split())
    status = await asyncio.to_thread(_http_status, f"http://127.0.0.1:{containers.gateway_http_port}/")
    assert status < 500


def _cli(svc: RunningService, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``jiazheng ARGS`` in the service's container."""
    return _in_container(svc, "python", "-m", "cli", *args, **env)


async def test_the_image_runs_the_cli_on_the_cluster_s_kafka_and_services(
    services: dict[str, RunningService], keys: list[DevKey], stack: Endpoints
) -> None:
    poison = f"not a CloudEvent {uuid.uuid4()}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(events_topic("orders"), poison)
    finally:
        await producer.stop()

    async def listed() -> list[dict[str, object]]:
        # In credit's container: its JZ_KAFKA_* settings say where Kafka is and how to log in.
        shown = await asyncio.to_thread(_cli, services["credit"], "dlq", "list", "credit", "--json")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        return [d for d in json.loads(shown.stdout) if d["original_topic"] == events_topic("orders")]

    [letter] = await eventually(listed, within=60)
    assert (letter["type"], letter["cloud_event"], letter["replay"]) == (None, False, "pending")

    worker = new_worker_id()
    await create_order(services["orders"], _key(keys, "demo-platform"), order_request(worker))
    operator = _key(keys, "operator")
    await eventually(lambda: ledger(services["credit"], operator, worker))
    settings = {"JZ_CREDIT_ADDRESS": f"127.0.0.1:{services['credit'].port}", "JZ_API_KEY": operator}
    shown = await asyncio.to_thread(_cli, services["credit"], "credit", "show", worker, "--json", **settings)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["worker"] == f"workers/{worker}"
