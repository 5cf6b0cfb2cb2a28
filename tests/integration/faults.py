"""What the outage tests share: a stack of their own to break, and a steady load of write calls.

The stack lives in ``faults`` under the test stack's home, so that stopping its PostgreSQL or
killing its broker disturbs no other test. A ``Load`` is a client of one write RPC at a steady
pace that retries a failed call later with the same request id, as the API asks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import grpc
import pytest

from deploy.local.stack import LocalStack, default_home
from tests.integration.harness import RunningService, ServiceHarness, eventually, services_on


# Fixtures under names of their own: a module imports them (noqa: F401) and asks for them by name.
@pytest.fixture(scope="module", name="fault_stack")
def fault_stack_fixture() -> Iterator[LocalStack]:
    stack = LocalStack(default_home("test") / "faults")
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module", name="fault_harness")
def fault_harness_fixture(fault_stack: LocalStack) -> Iterator[ServiceHarness]:
    with services_on(fault_stack.endpoints(), fault_stack.home) as harness:
        yield harness


class Idempotent(Protocol):
    request_id: str


R = TypeVar("R", bound=Idempotent)


@dataclass
class Load(Generic[R]):
    """``per_s`` calls a second of ``send`` (a request and its deadline in; the name of what the
    call created out), each with a request of its own; a failed call is retried by ``settle``."""

    name: str
    new_request: Callable[[], R]
    send: Callable[[R, float], Awaitable[str]]
    per_s: float
    timeout_s: float = 10.0
    requests: dict[str, R] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)  # request id -> what the call created
    codes: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0  # the longest any call took to come back, whatever its answer
    calls: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            request = self.new_request()
            self.requests[request.request_id] = request
            call = asyncio.create_task(self.call(request))
            self.calls.add(call)
            call.add_done_callback(self.calls.discard)
            await asyncio.sleep(1 / self.per_s)
        await asyncio.gather(*self.calls)

    async def call(self, request: R) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            created = await self.send(request, self.timeout_s)
        except grpc.aio.AioRpcError as err:
            self.codes[err.code().name] += 1
            return
        finally:
            self.slowest_s = max(self.slowest_s, loop.time() - started)
        self.codes["OK"] += 1
        self.created[request.request_id] = created

    async def settle(self, at_once: int = 4) -> None:
        """Retry every request that has not succeeded yet, ``at_once`` at a time (all at once, they
        would queue for the service's pool past their deadline), until all have."""
        gate = asyncio.Semaphore(at_once)

        async def retry(request: R) -> None:
            async with gate:
                await self.call(request)

        async def all_created() -> bool:
            missing = [r for rid, r in self.requests.items() if rid not in self.created]
            await asyncio.gather(*(retry(r) for r in missing))
            return len(self.created) == len(self.requests)

        await eventually(all_created, within=120, interval=1)

    async def seen(self, code: str, more_than: int) -> bool:
        return self.codes[code] > more_than


@contextlib.asynccontextmanager
async def running(*loads: Load[Any], warm_up: int) -> AsyncIterator[None]:
    """The loads at their pace, each past ``warm_up`` successes before the block; after it, every
    request retried until it succeeded (not when the block failed)."""
    stop = asyncio.Event()
    runs = [asyncio.create_task(load.run(stop)) for load in loads]

    async def warm() -> bool:
        return all(load.codes["OK"] > warm_up for load in loads)

    try:
        await eventually(warm)
        yield
    finally:
        stop.set()
        await asyncio.gather(*runs)
    await asyncio.gather(*(load.settle() for load in loads))


def restarts(svc: RunningService) -> int:
    state = svc.supervision()
    assert state is not None
    return state.restarts


async def each_once_in_the_ledger(credit_dsn: str, workers: Sequence[str]) -> None:
    """Each of ``workers`` (each booked once) has exactly one entry in credit's ledger."""

    async def counts() -> dict[str, int] | None:
        conn = await asyncpg.connect(credit_dsn)
        try:
            rows = await conn.fetch(
                "SELECT worker_id, count(*) AS n FROM ledger_entries WHERE worker_id = ANY($1::text[])"
                " GROUP BY worker_id",
                list(workers),
            )
        finally:
            await conn.close()
        found = {r["worker_id"]: r["n"] for r in rows}
        return found if len(found) == len(workers) else None

    found = await eventually(counts, within=120, interval=1)
    assert set(found.values()) == {1}, {w: n for w, n in found.items() if n != 1}
