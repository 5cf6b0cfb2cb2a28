"""`make run`'s path: the CLI brings up a stack of its own and all five services under their
supervisors, runs the demo, shows a killed service restarted, reads the orders topic, reports
status, and stops everything it started."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.local.services import SERVICES, LocalServices
from deploy.local.stack import ROOT, LocalStack, pid_alive
from libs.common.events import EventEnvelope

CLI = Path(sys.executable).with_name("jiazheng")
ORDERS_TOPIC = "jiazheng.orders.events.v1"


@pytest.fixture
def cli_home() -> Iterator[Path]:
    home = ROOT / ".stack" / f"cli-test-{uuid.uuid4().hex[:8]}"
    yield home
    if home.exists():
        subprocess.run([str(CLI), "down"], env=env_for(home), check=False, capture_output=True)
        shutil.rmtree(home)


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "JZ_STACK_HOME": str(home), "COLUMNS": "200"}


def jiazheng(home: Path, *args: str) -> str:
    result = subprocess.run([str(CLI), *args], env=env_for(home), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def service_rows(status: str) -> dict[str, dict[str, str]]:
    """`status` lines: "<name> grpc 127.0.0.1:<port> pid <pid> restarts <n> [(last exit <code>)] <health>"."""
    rows = {}
    for line in status.splitlines():
        words = line.split()
        if words and words[0] in SERVICES:
            rows[words[0]] = {"pid": words[4], "restarts": words[6], "health": words[-1], "line": line}
    return rows


def demo_order_id(home: Path, worker: str) -> str:
    demo = jiazheng(home, "demo", "--worker-id", worker)
    assert f"credit ledger entry: workers/{worker}/ledgerEntries/" in demo
    match = re.search(r"created orders/(\S+)", demo)
    assert match, demo
    return match.group(1)


def test_up_demo_restart_events_status_down(cli_home: Path) -> None:
    started = jiazheng(cli_home, "up")
    assert all(name in started for name in SERVICES)
    order_id = demo_order_id(cli_home, "cli-worker")

    status = service_rows(jiazheng(cli_home, "status"))
    assert {n: (r["health"], r["restarts"]) for n, r in status.items()} == dict.fromkeys(
        SERVICES, ("SERVING", "0")
    )

    killed = int(status["orders"]["pid"])
    os.kill(killed, signal.SIGKILL)
    restarted = wait_for_restart(cli_home, killed)
    assert "(last exit -9)" in restarted["line"]
    order_id_after = demo_order_id(cli_home, "cli-worker-after-restart")  # the same port answers

    tail = jiazheng(cli_home, "events", "tail", ORDERS_TOPIC, "--max", "10")
    assert tail.count("ce_type jiazheng.orders.events.v1.OrderCreated") == 2
    for order in (order_id, order_id_after):
        assert f'"order_id": "{order}"' in tail
        assert f"ce_subject orders/{order}" in tail

    follow_new_order(cli_home)
    raw_and_unknown_records_are_shown_raw(cli_home)

    processes = service_processes(cli_home)
    assert len(processes) == 2 * len(SERVICES)  # a supervisor and its service each
    jiazheng(cli_home, "down")
    assert [pid for pid in processes if pid_alive(pid)] == []
    after = jiazheng(cli_home, "status")
    assert after.count('"running": false') == 2
    assert "SERVING" not in after


def wait_for_restart(home: Path, killed: int) -> dict[str, str]:
    deadline = time.monotonic() + 60
    while True:
        orders = service_rows(jiazheng(home, "status"))["orders"]
        if orders["restarts"] == "1" and orders["health"] == "SERVING" and orders["pid"] != str(killed):
            return orders
        assert time.monotonic() < deadline, f"orders not restarted: {orders['line']}"
        time.sleep(0.5)


def follow_new_order(home: Path) -> None:
    """--from-end --follow prints only what arrives after it started, then --max ends it."""
    tail = subprocess.Popen(
        [str(CLI), "events", "tail", ORDERS_TOPIC, "--from-end", "--follow", "--max", "1"],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stderr is not None
        assert "from the end" in tail.stderr.readline()  # positioned: anything produced now is new
        order_id = demo_order_id(home, "cli-worker-followed")
        out, err = tail.communicate(timeout=60)
    finally:
        tail.kill()
    assert tail.returncode == 0, err
    assert out.count("ce_type jiazheng.orders.events.v1.OrderCreated") == 1
    assert f'"order_id": "{order_id}"' in out


def raw_and_unknown_records_are_shown_raw(home: Path) -> None:
    bootstrap = LocalStack(home).endpoints().kafka_bootstrap
    topic = f"cli-test-raw-{uuid.uuid4().hex[:6]}"
    asyncio.run(produce_odd_records(bootstrap, topic))

    tail = jiazheng(home, "events", "tail", topic)

    assert "not a CloudEvent" in tail
    assert "header origin a-test" in tail
    assert "value (base64) /wBub3QgcHJvdG9idWY=" in tail  # b"\xff\x00not protobuf"
    assert "ce_type jiazheng.nowhere.v1.Unknown" in tail
    assert "payload not decoded (no message type jiazheng.nowhere.v1.Unknown in gen/)" in tail


async def produce_odd_records(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    unknown = EventEnvelope(
        id=str(uuid.uuid4()),
        type="jiazheng.nowhere.v1.Unknown",
        source="/test",
        subject="nowhere/1",
        time=datetime.now(UTC),
        data=b"\x08\x01",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"\xff\x00not protobuf", headers=[("origin", b"a-test")])
        await producer.send_and_wait(topic, unknown.data, key=unknown.key, headers=unknown.kafka_headers())
    finally:
        await producer.stop()


def service_processes(home: Path) -> list[int]:
    """Every supervisor and service process the stack in ``home`` runs now."""
    services = LocalServices(home)
    supervisors = [info["supervisor_pid"] for info in services.state().values()]
    children = [row.child_pid for row in services.status() if row.child_pid]
    return [pid for pid in supervisors + children if pid_alive(pid)]
