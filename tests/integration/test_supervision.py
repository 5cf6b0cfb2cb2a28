"""Services under the local supervisor exit and are restarted as under an orchestrator: on the
same port, with back-off, and never outliving their supervisor."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

from deploy.local.services import stopped_after
from deploy.local.stack import Endpoints, create_database, drop_database, pid_alive, pid_cmdline
from deploy.local.supervisor import SupervisorState
from jiazheng.orders.v1 import orders_pb2_grpc
from tests.integration.clients import auth, order_request
from tests.integration.harness import RunningService, ServiceHarness, eventually


async def restarted(svc: RunningService, restarts: int) -> SupervisorState:
    """The supervisor's state once it has restarted the service ``restarts`` times."""

    async def state() -> SupervisorState | None:
        now = svc.supervision()
        return now if now and now.restarts >= restarts and now.child_pid else None

    return await eventually(state, within=60)


def supervisor_log(svc: RunningService) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in svc.log.read_text().splitlines() if '"supervisor"' in line]
    return [line for line in lines if line.get("logger") == "supervisor"]


async def test_killed_service_comes_back_on_the_same_port_and_its_clients_carry_on(
    harness: ServiceHarness, scratch_database: str
) -> None:
    svc = await harness.start("orders", database=scratch_database, supervised=True)
    async with stopped_after(svc), svc.channel() as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)
        metadata = auth(harness.key("demo-platform"))
        await stub.CreateOrder(order_request(), metadata=metadata)
        first = svc.kill_child(signal.SIGKILL)

        state = await restarted(svc, 1)
        await svc.wait_serving()
        # The channel opened before the kill reconnects to the same address.
        reply = await stub.CreateOrder(order_request(), metadata=metadata, wait_for_ready=True, timeout=60)

        assert reply.order.name.startswith("orders/")
        assert not pid_alive(first)
        assert state.child_pid != first
        assert "services.orders" in pid_cmdline(state.child_pid or 0)
        assert (state.restarts, state.last_exit) == (1, -signal.SIGKILL)
        assert svc.proc.poll() is None  # the supervisor itself carried on
        [exited] = supervisor_log(svc)
        assert (exited["exit_code"], exited["restart_in_s"]) == (-signal.SIGKILL, 0.5)


async def test_exit_75_is_restarted_with_a_growing_back_off(harness: ServiceHarness) -> None:
    """75 (EX_TEMPFAIL) is "exited unacknowledged" in the design; no service exits with it on
    demand, so a stand-in process exits with it at once, every time."""
    svc = harness.spawn("exits-75", supervised=True, command=["-c", "import sys; sys.exit(75)"])
    async with stopped_after(svc):
        state = await restarted(svc, 3)

        assert state.last_exit == 75
        exits = supervisor_log(svc)[:3]
        assert [e["exit_code"] for e in exits] == [75, 75, 75]
        assert [e["restart_in_s"] for e in exits] == [0.5, 1.0, 2.0]


async def test_service_that_cannot_start_is_restarted_until_it_can(
    harness: ServiceHarness, endpoints: Endpoints
) -> None:
    """Crash-only start-up: without its database the service exits; once the database exists, the
    next restart serves, on the port it was given."""
    database = f"jz_scratch_{uuid.uuid4().hex[:12]}"
    svc = harness.spawn("workers", database=database, supervised=True)
    try:
        async with stopped_after(svc):
            state = await restarted(svc, 1)
            assert state.last_exit not in (None, 0)
            assert svc.proc.poll() is None

            await create_database(endpoints, database)
            await svc.wait_serving(timeout=60)
    finally:
        await drop_database(endpoints, database)


async def test_stopping_the_supervisor_stops_its_service_gracefully(
    harness: ServiceHarness, databases: None
) -> None:
    svc = await harness.start("workers", supervised=True)
    child = svc.pid

    await asyncio.to_thread(svc.kill, signal.SIGTERM)

    assert svc.proc.returncode == 0
    assert not pid_alive(child)
    assert '"msg": "shutting down"' in svc.log.read_text()
    state = svc.supervision()
    assert state is not None
    assert (state.child_pid, state.last_exit) == (None, 0)


async def test_a_killed_supervisor_leaves_no_orphan(harness: ServiceHarness, databases: None) -> None:
    svc = await harness.start("workers", supervised=True)
    child = svc.pid

    await asyncio.to_thread(svc.kill, signal.SIGKILL)

    async def child_gone() -> bool:
        return not pid_alive(child)

    assert await eventually(child_gone, within=30)
    assert '"msg": "shutting down"' in svc.log.read_text()  # it was told to stop, not left running
