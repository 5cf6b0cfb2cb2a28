"""Property-based fuzzing of every RPC's request (issue 14, Security 2): for every method of every
service (from the generated descriptors, with a role its POLICY allows), requests generated from
the request type's descriptor (tests/integration/proto_fuzz.py) are answered with a client-error
status, or OK, never INTERNAL, UNKNOWN or DATA_LOSS (nor fails on the server as an unhandled
error, which its log shows, whatever the caller saw); and a call that was refused left the
service's database as it was (the number of rows of every table, the outbox's included).

A third of the requests are wild; the others keep to the rules the request type declares
(protovalidate: patterns, ranges, required fields), with only the required fields or with every
field set, so that they reach the servicers, their lookups and their domain rules. The principals
are those the other tests use least (proto_fuzz.PRINCIPAL_OF_ROLE) and every id is new, so a
request that happens to be valid touches no other test's data; the orders catalogue, which a
valid UpdateCatalogueEntry changes, is put back.

Deterministic: hypothesis derandomised, no example database; a failure shows the falsifying
example (the request in text format and the principal that sent it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from deploy.local.services import stopped_after
from deploy.local.stack import Endpoints
from deploy.local.stack import scratch_database as new_scratch_database
from jiazheng.orders.v1 import orders_pb2
from libs.common.auth import Role
from services.insurance.app import CONSUMER as INSURANCE_CONSUMER
from services.insurance.app import SOURCES as INSURANCE_SOURCES
from tests.integration.clients import auth
from tests.integration.harness import RunningService, ServiceHarness
from tests.integration.kafka_tools import start_group_at_end
from tests.integration.proto_fuzz import PRINCIPAL_OF_ROLE, Rpc, messages, policies, rpcs

pytestmark = pytest.mark.integration
T = TypeVar("T")

RPCS = rpcs()
EXAMPLES = 20
STREAM_EXAMPLES = 8  # a valid stream request waits STREAM_WAIT_S for its first message
STREAM_WAIT_S = 2.0
CALL_TIMEOUT_S = 30.0
C = grpc.StatusCode
# What a request the server refuses may be answered with; OK: a request that happened to be valid.
CLIENT_ERRORS = frozenset(
    {
        C.INVALID_ARGUMENT,
        C.NOT_FOUND,
        C.FAILED_PRECONDITION,
        C.ALREADY_EXISTS,
        C.PERMISSION_DENIED,  # another tenant's resource
        C.OUT_OF_RANGE,
        C.ABORTED,  # an expected version that is not the current one
    }
)
SERVER_FAULTS = frozenset({C.INTERNAL, C.UNKNOWN, C.DATA_LOSS})
CATALOGUE_UPDATE = "/jiazheng.orders.v1.CatalogueService/UpdateCatalogueEntry"

# Every table of the public schema with its number of rows, in one statement.
COUNT_ROWS = """
SELECT coalesce(jsonb_object_agg(tablename, (xpath('/row/n/text()', query_to_xml(
    format('SELECT count(*) AS n FROM public.%I', tablename), false, true, ''
)))[1]::text::bigint), '{}')::text
FROM pg_tables WHERE schemaname = 'public'
"""


class Rows:
    """The row counts of every table of a database, read on an event loop of a thread of its own
    (the test is synchronous: hypothesis drives it; the session's loop is pytest-asyncio's)."""

    def __init__(self, dsn: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._conn: asyncpg.Connection = self._run(asyncpg.connect(dsn))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = json.loads(self._run(self._conn.fetchval(COUNT_ROWS)))
        return counts

    def settled(self, known: dict[str, int] | None = None, within: float = 60.0) -> dict[str, int]:
        """The counts once two readings 0.2 s apart agree (what earlier calls set off, e.g. events
        the service consumes, has landed); at once when they equal ``known``."""
        last = self.counts()
        if last == known:
            return last
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.counts()
            if now == last:
                return now
            last = now
        raise AssertionError(f"the database did not settle within {within}s: {last}")

    def close(self) -> None:
        self._run(self._conn.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def unhandled_errors(log: Path, offset: int, method: str) -> list[str]:
    """The last line of each unhandled error (the guard's INTERNAL) ``log`` shows for ``method``
    after ``offset``: a fault of a call whose caller saw something else (e.g. a stream it left)."""
    found = []
    for line in log.read_bytes()[offset:].decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("msg") == "unhandled error"
            and entry.get("method") == method
        ):
            last = (str(entry.get("exc") or "").strip().splitlines() or [""])[-1]
            found.append(f"  {entry.get('ts')} trace {entry.get('trace_id')}: {last}")
    return found


def changed_rows(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {
        t: (before.get(t, 0), after.get(t, 0)) for t in {*before, *after} if before.get(t) != after.get(t)
    }


def database_url(svc: RunningService) -> str:
    """The database a service process was started on (its JZ_DATABASE_URL)."""
    environ = Path(f"/proc/{svc.proc.pid}/environ").read_bytes().split(b"\0")
    return next(e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"JZ_DATABASE_URL="))


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str


def caller(channel: grpc.Channel, rpc: Rpc) -> Callable[[Message, str], Outcome]:
    """Calls ``rpc`` with a request and a key; a stream's outcome is its first message's (or its
    error's), or DEADLINE_EXCEEDED when none came within STREAM_WAIT_S."""
    path = rpc.path

    def serialize(message: Message) -> bytes:
        return message.SerializeToString()

    if rpc.method.server_streaming:
        stream = channel.unary_stream(path, request_serializer=serialize, response_deserializer=bytes)

        def first(request: Message, key: str) -> Outcome:
            call: Any = stream(request, metadata=tuple(auth(key)), timeout=STREAM_WAIT_S)
            try:
                next(call)
                return Outcome(C.OK, "")
            except StopIteration:
                return Outcome(C.OK, "(no message)")
            except grpc.RpcError as err:
                return Outcome(err.code(), err.details() or "")
            finally:
                call.cancel()

        return first

    unary = channel.unary_unary(path, request_serializer=serialize, response_deserializer=bytes)

    def once(request: Message, key: str) -> Outcome:
        try:
            unary(request, metadata=tuple(auth(key)), timeout=CALL_TIMEOUT_S)
            return Outcome(C.OK, "")
        except grpc.RpcError as err:
            return Outcome(err.code(), err.details() or "")

    return once


def shown(request: Message, limit: int = 3000) -> str:
    text = text_format.MessageToString(request, as_utf8=True)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


# -- the services -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def insurance_database(endpoints: Endpoints) -> AsyncIterator[str]:
    async with new_scratch_database(endpoints, "jz_insurance_fuzz") as name:
        yield name


@pytest.fixture(scope="module")
async def insurance(
    harness: ServiceHarness,
    insurance_database: str,
    orders_keys: dict[str, str],
    orders: RunningService,  # their topics exist
    complaints: RunningService,
) -> AsyncIterator[RunningService]:
    """An insurance service of this module's own: its database, and a consumer group of its own
    that starts at the end of its source topics (it neither takes the suite's backlog nor moves
    the offsets of the group the other tests' insurance services share)."""
    pii = {k: v for k, v in orders_keys.items() if k.startswith("pii_")}
    group = f"test-fuzz-{uuid.uuid4().hex[:8]}"
    for topic in INSURANCE_SOURCES:
        await start_group_at_end(harness.endpoints.kafka_bootstrap, f"{group}-{INSURANCE_CONSUMER}", topic)
    started = await harness.start(
        "insurance", insurance_database, 0, False, consumer_group_prefix=group, **pii
    )
    async with stopped_after(started) as svc:
        yield svc


@pytest.fixture
async def regulator(harness: ServiceHarness) -> AsyncIterator[RunningService]:
    """Per test: a regulator started in a test is stopped when it ends (conftest)."""
    svc = await harness.start("regulator", consumer_group_prefix=f"test-fuzz-{uuid.uuid4().hex[:8]}")
    yield svc
    if svc in harness.running():
        harness.stop(svc)


@contextlib.contextmanager
def catalogue_kept(channel: grpc.Channel, operator: str) -> Iterator[None]:
    """The orders catalogue as it was before, whatever a valid UpdateCatalogueEntry changed:
    the other tests price their orders with it."""
    get = channel.unary_unary(
        "/jiazheng.orders.v1.CatalogueService/GetCatalogue",
        request_serializer=orders_pb2.GetCatalogueRequest.SerializeToString,
        response_deserializer=orders_pb2.GetCatalogueResponse.FromString,
    )
    put = channel.unary_unary(
        CATALOGUE_UPDATE,
        request_serializer=orders_pb2.UpdateCatalogueEntryRequest.SerializeToString,
        response_deserializer=orders_pb2.UpdateCatalogueEntryResponse.FromString,
    )
    before = get(orders_pb2.GetCatalogueRequest(), metadata=tuple(auth(operator)))
    try:
        yield
    finally:
        if get(orders_pb2.GetCatalogueRequest(), metadata=tuple(auth(operator))).version != before.version:
            for entry in before.entries:
                put(orders_pb2.UpdateCatalogueEntryRequest(entry=entry), metadata=tuple(auth(operator)))


@dataclass
class Written:
    """A refused call after which the service's tables held other numbers of rows."""

    role: Role
    code: grpc.StatusCode
    request: Message
    changed: dict[str, tuple[int, int]]


def fuzzed(
    rpc: Rpc, call: Callable[[Message, str], Outcome], key: Callable[[Role], str], rows: Rows | None
) -> tuple[list[Outcome], list[Written]]:
    """Every outcome of ``rpc``'s examples, and the refused calls that wrote rows. The first
    outcome not allowed fails at once (hypothesis shrinks it and shows the falsifying example).

    Every refused call is a batch of its own: the rows after it are compared with the rows before
    it, the settled ones after the last valid (OK) call, which may have written."""
    outcomes: list[Outcome] = []
    written: list[Written] = []
    streaming = rpc.method.server_streaming
    allowed = CLIENT_ERRORS | {C.OK} | ({C.DEADLINE_EXCEEDED} if streaming else set())
    known = rows.settled() if rows else {}

    @settings(
        max_examples=STREAM_EXAMPLES if streaming else EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI does not flake on a new draw
        database=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(request=messages(rpc.method.input_type), role=st.sampled_from(rpc.roles))
    def example(request: Message, role: Role) -> None:
        nonlocal known
        outcome = call(request, key(role))
        outcomes.append(outcome)
        if rows is not None and outcome.code == C.OK:
            known = rows.settled(known)
        elif rows is not None and (changed := changed_rows(known, rows.counts())):
            written.append(Written(role, outcome.code, request, changed))
            known = rows.settled()
        fault = "a server fault" if outcome.code in SERVER_FAULTS else "not a client error"
        assert outcome.code in allowed, (
            f"{rpc.path} as {PRINCIPAL_OF_ROLE[role]} ({role}) answered {outcome.code.name}: {fault}; "
            f"details {outcome.details!r}; request:\n{shown(request)}"
        )

    example()
    return outcomes, written


def test_every_method_is_fuzzed_and_every_policy_names_a_method() -> None:
    assert [r.id for r in RPCS if not r.roles] == []  # a method no role may call is not fuzzed
    served = {r.path for r in RPCS}
    assert sorted(path for p in policies().values() for path in p if path not in served) == []
    assert {r.service for r in RPCS} == {
        "orders",
        "workers",
        "credit",
        "complaints",
        "insurance",
        "regulator",
    }


@pytest.mark.timeout(300)
@pytest.mark.parametrize("rpc", RPCS, ids=[r.id for r in RPCS])
def test_no_request_is_a_server_fault_and_refused_ones_write_nothing(
    rpc: Rpc, request: pytest.FixtureRequest, harness: ServiceHarness
) -> None:
    if not rpc.roles:
        pytest.skip("no role may call it")
    svc: RunningService = request.getfixturevalue(rpc.service)
    rows = None if rpc.service == "regulator" else Rows(database_url(svc))  # it has no database
    logged = svc.log.stat().st_size

    def key(role: Role) -> str:
        return harness.key(PRINCIPAL_OF_ROLE[role])

    try:
        with grpc.insecure_channel(f"127.0.0.1:{svc.port}") as channel:
            kept = (
                catalogue_kept(channel, key(Role.OPERATOR))
                if rpc.path == CATALOGUE_UPDATE
                else contextlib.nullcontext()
            )
            with kept:
                outcomes, written = fuzzed(rpc, caller(channel, rpc), key, rows)
    finally:
        if rows is not None:
            rows.close()

    if rpc.method.server_streaming:
        time.sleep(STREAM_WAIT_S)  # a stream the caller left ends on the server after the call
    faults = unhandled_errors(svc.log, logged, rpc.path)
    codes = Counter(o.code.name for o in outcomes)
    print(f"{rpc.id}: {len(outcomes)} calls {dict(sorted(codes.items()))}")  # shown with -s
    assert not faults, (
        f"{rpc.path}: {len(faults)} call(s) failed on the server as unhandled errors (INTERNAL), "
        f"whatever their callers saw; in {svc.log.name}:\n" + "\n".join(faults[:5])
    )
    assert not written, "\n".join(
        f"{rpc.path} as {PRINCIPAL_OF_ROLE[w.role]} refused ({w.code.name}) yet rows changed "
        f"(before, after): {w.changed}; request:\n{shown(w.request)}"
        for w in written
    )
