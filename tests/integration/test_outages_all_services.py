"""Issue 14, fault injection 2: every service rides out a PostgreSQL restart and a broker crash
under a steady load of writes.

On the outage tests' own stack (tests/integration/faults.py), the five services that own a
database (orders, workers, credit, complaints, insurance) and the regulator run supervised, the
five on scratch databases, all in consumer groups of a fresh prefix that start at the end of their
topics. Each of the five is sent one write RPC that adds an event to its outbox, at a steady pace,
by a client that retries a failed call later with the same request id, as the APIs ask.

- PostgreSQL stopped then started: while it is down, every call comes back as UNAVAILABLE, the
  code the APIs document as safe to retry, and well within its deadline: the server fails fast (a
  refused or starting-up database is an outage, libs/common/outages.py), never INTERNAL, never
  left to run into the caller's deadline.
- The broker killed (SIGKILL) then started: writes go on succeeding into the outboxes, where a
  backlog builds up; it is published after the restart.

After each: no supervisor restarted anything (the processes rode it out); every request created
exactly one thing (one creation event each in its service's outbox); every outbox row is published
within a bound shorter than the relays' polling interval (30 s here: their NOTIFY listener and
their retries recovered); the consumers applied each other's events (each booking once in
credit's ledger) and every group, the regulator's too, committed past all it reads; nothing went
to a dead-letter topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.message import Message

from deploy.local.services import DEMO_COMPANY_ID
from deploy.local.stack import LocalStack
from deploy.local.stack import scratch_database as new_scratch_database
from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.complaints.v1 import complaints_pb2 as cpb
from jiazheng.complaints.v1 import complaints_pb2_grpc
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from jiazheng.insurance.v1 import policies_pb2, policies_pb2_grpc
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2, workers_pb2_grpc
from libs.common.events import event_type_of
from libs.common.kafka import dlq_topic
from services.regulator.topics import REGULATOR_TOPICS
from tests.integration.clients import auth, db_value, new_worker_id, order_request
from tests.integration.faults import (  # noqa: F401
    Load,
    each_once_in_the_ledger,
    fault_harness_fixture,
    fault_stack_fixture,
    restarts,
    running,
)
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.insurance_client import beijing_today, insured
from tests.integration.kafka_tools import start_group_at_end
from tests.integration.workers_client import create_company, worker_request

pytestmark = pytest.mark.own_stack  # and integration, as everything here (conftest)

SERVICES = ("orders", "workers", "credit", "complaints", "insurance")  # each with a database
# What each consumer group reads (services/*/app.py); the regulator's faust agents read every
# service's events and re-read its own regulator topics.
READS: dict[str, list[str]] = {
    **{name: importlib.import_module(f"services.{name}.app").SOURCES for name in SERVICES},
    "regulator": [*REGULATOR_TOPICS, *REGULATOR_TOPICS.values()],
}
RELAY_POLL_S = 30
CALLS_PER_S = 4  # per service
DEADLINE_S = 5.0
OUTAGE_S = 8
PUBLISHED_WITHIN_S = 20  # after the fault: inside the relays' polling interval (they retry within 5 s)

# The event each service's write adds to its outbox, once per request.
CREATES = {
    "orders": order_events.OrderCreated,
    "workers": worker_events.WorkerRegistered,
    "credit": credit_events.CompanyDecisionRecorded,
    "complaints": complaint_events.CaseFiled,
    "insurance": insurance_events.PolicyIssued,
}
# The services that apply an event the writes cause (services/*/handlers.py): each of those events
# is in their inbox. No service applies credit's decisions (the regulator reads them).
APPLIED_BY: dict[type[Message], tuple[str, ...]] = {
    order_events.OrderCreated: ("credit", "complaints"),
    worker_events.WorkerRegistered: ("orders", "credit"),
    complaint_events.CaseFiled: ("credit",),
    insurance_events.WorkerCoverageChanged: ("workers",),
}


@dataclass
class System:
    services: dict[str, RunningService]
    dsns: dict[str, str]
    bootstrap: str
    prefix: str  # of the consumer groups
    company: str  # the company whose workers the workers load registers
    dead_letters: dict[str, int]  # records on each consumer's dead-letter topic before the tests


@pytest.fixture(scope="module")
async def system(fault_harness: ServiceHarness) -> AsyncIterator[System]:
    endpoints = fault_harness.endpoints
    prefix = f"outall-{uuid.uuid4().hex[:8]}"
    async with contextlib.AsyncExitStack() as stack:
        databases = {
            name: await stack.enter_async_context(new_scratch_database(endpoints, "jz_outall"))
            for name in SERVICES
        }
        await skip_history(endpoints.kafka_bootstrap, prefix)
        stack.push_async_callback(drop_topics, endpoints.kafka_bootstrap, prefix)  # the regulator's
        services = {
            name: fault_harness.spawn(
                name,
                databases.get(name),
                supervised=True,
                relay_poll_interval_s=str(RELAY_POLL_S),
                consumer_group_prefix=prefix,
            )
            for name in READS
        }
        stack.push_async_callback(stop_all, services.values())  # before their databases are dropped
        await asyncio.gather(*(svc.wait_serving() for svc in services.values()))
        company = await create_company(services["workers"], fault_harness.key("operator"))
        yield System(
            services,
            {name: endpoints.dsn(db) for name, db in databases.items()},
            endpoints.kafka_bootstrap,
            prefix,
            company.name,
            await dead_letters(endpoints.kafka_bootstrap),
        )


async def stop_all(services: Iterable[RunningService]) -> None:
    await asyncio.gather(*(asyncio.to_thread(svc.stop) for svc in services))


async def drop_topics(bootstrap: str, prefix: str) -> None:
    """Delete the topics of the groups of ``prefix`` (faust's changelogs): a new prefix each run
    would otherwise leave more partitions for the broker to recover after every crash."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(f"{prefix}-")]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


async def skip_history(bootstrap: str, prefix: str) -> None:
    """Each consumer group of ``prefix`` starts at the end of the topics it reads: the services
    apply only this run's events, not what earlier runs left on the stack's broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()

    async def skip(name: str) -> None:
        for topic in READS[name]:
            if topic in existing:
                await start_group_at_end(bootstrap, f"{prefix}-{name}", topic)

    await asyncio.gather(*(skip(name) for name in READS))


async def ends_of(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """The offset after the last record of every partition of ``topics`` (those that exist)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # the partitions as the broker has them now
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def dead_letters(bootstrap: str) -> dict[str, int]:
    """How many records each consumer's dead-letter topic holds."""
    topics = {dlq_topic(name): name for name in SERVICES}
    held = dict.fromkeys(SERVICES, 0)
    for tp, end in (await ends_of(bootstrap, topics)).items():
        held[topics[tp.topic]] += end
    return held


async def lag(bootstrap: str, prefix: str) -> dict[str, int]:
    """How many records each consumer group has yet to commit past, on the topics it reads."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        behind = {}
        for name, topics in READS.items():
            committed = await admin.list_consumer_group_offsets(f"{prefix}-{name}")
            ends = await ends_of(bootstrap, topics)
            behind[name] = sum(
                end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
            )
        return behind
    finally:
        await admin.close()


async def caught_up(system: System) -> float:
    """Seconds until every consumer group, the regulator's too, had committed past all its topics hold."""
    started = time.monotonic()

    async def none_behind() -> bool:
        return not any((await lag(system.bootstrap, system.prefix)).values())

    try:
        await eventually(none_behind, within=120, interval=1)
    except AssertionError:
        raise AssertionError(f"still behind: {await lag(system.bootstrap, system.prefix)}") from None
    return time.monotonic() - started


async def rows(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


# -- the load: one write RPC per service, each adding an event to its outbox ----------------------


def today() -> str:
    return beijing_today().isoformat()


def decision() -> credit_pb2.RecordCompanyDecisionRequest:
    """A black-list entry of a company of its own (a second entry of one company is refused)."""
    return credit_pb2.RecordCompanyDecisionRequest(
        name=f"companies/co-{uuid.uuid4().hex[:12]}",
        request_id=str(uuid.uuid4()),
        decision=credit_pb2.CompanyDecision(
            kind=credit_pb2.DECISION_KIND_BLACK_LIST,
            reason="拖欠服务员工资，列入失信名单",
            decision_date=today(),
        ),
    )


def complaint() -> cpb.FileComplaintRequest:
    return cpb.FileComplaintRequest(
        request_id=str(uuid.uuid4()),
        respondent=cpb.PARTY_KIND_WORKER,
        worker=f"workers/{uuid.uuid4()}",
        company=f"companies/{DEMO_COMPANY_ID}",
        category=cpb.CATEGORY_QUALITY,
        severity=cpb.SEVERITY_MINOR,
        description="打扫不干净",
    )


def policy() -> policies_pb2.CreatePolicyRequest:
    """A group policy from today for one worker: it covers the worker at once (an event workers applies)."""
    return policies_pb2.CreatePolicyRequest(
        request_id=str(uuid.uuid4()),
        product="products/el-100k",
        start_date=today(),
        workers=[insured(str(uuid.uuid4()), date(1985, 3, 1))],
    )


@contextlib.asynccontextmanager
async def writing(system: System, harness: ServiceHarness) -> AsyncIterator[dict[str, Load[Any]]]:
    """Each service's write at ``CALLS_PER_S``, every call with a deadline of ``DEADLINE_S``; after
    the block, every request has succeeded (retried with its request id)."""
    platform, operator, company = (harness.key(k) for k in ("demo-platform", "operator", "demo-company"))
    async with contextlib.AsyncExitStack() as channels:
        ch = {
            name: await channels.enter_async_context(svc.channel()) for name, svc in system.services.items()
        }
        orders = orders_pb2_grpc.OrderServiceStub(ch["orders"])
        workers = workers_pb2_grpc.WorkerServiceStub(ch["workers"])
        credit = credit_pb2_grpc.CompanyCreditServiceStub(ch["credit"])
        complaints = complaints_pb2_grpc.ComplaintServiceStub(ch["complaints"])
        insurance = policies_pb2_grpc.PolicyServiceStub(ch["insurance"])

        async def book(request: orders_pb2.CreateOrderRequest, deadline_s: float) -> str:
            reply = await orders.CreateOrder(request, metadata=auth(platform), timeout=deadline_s)
            return reply.order.name

        async def register(request: workers_pb2.CreateWorkerRequest, deadline_s: float) -> str:
            reply = await workers.CreateWorker(request, metadata=auth(operator), timeout=deadline_s)
            return reply.worker.name

        async def decide(request: credit_pb2.RecordCompanyDecisionRequest, deadline_s: float) -> str:
            reply = await credit.RecordCompanyDecision(request, metadata=auth(operator), timeout=deadline_s)
            return reply.credit.company

        async def file(request: cpb.FileComplaintRequest, deadline_s: float) -> str:
            reply = await complaints.FileComplaint(request, metadata=auth(platform), timeout=deadline_s)
            return reply.complaint_case.name

        async def insure(request: policies_pb2.CreatePolicyRequest, deadline_s: float) -> str:
            reply = await insurance.CreatePolicy(request, metadata=auth(company), timeout=deadline_s)
            return reply.policy.name

        loads: dict[str, Load[Any]] = {
            "orders": Load("orders", lambda: order_request(new_worker_id()), book, CALLS_PER_S, DEADLINE_S),
            "workers": Load(
                "workers", lambda: worker_request(system.company), register, CALLS_PER_S, DEADLINE_S
            ),
            "credit": Load("credit", decision, decide, CALLS_PER_S, DEADLINE_S),
            "complaints": Load("complaints", complaint, file, CALLS_PER_S, DEADLINE_S),
            "insurance": Load("insurance", policy, insure, CALLS_PER_S, DEADLINE_S),
        }
        async with running(*loads.values(), warm_up=5):
            yield loads


async def each_load(loads: dict[str, Load[Any]], code: str, more_than: dict[str, int] | int) -> bool:
    """Whether every load has had more than ``more_than`` (its own, or the same for all) ``code`` answers."""
    least = more_than if isinstance(more_than, dict) else dict.fromkeys(loads, more_than)
    return all(load.codes[code] > least[name] for name, load in loads.items())


async def succeeding_again(loads: dict[str, Load[Any]]) -> None:
    """Every load has had a few more successes from now."""
    ok = {name: load.codes["OK"] for name, load in loads.items()}
    await eventually(lambda: each_load(loads, "OK", {n: k + 2 * CALLS_PER_S for n, k in ok.items()}))


def answers(loads: dict[str, Load[Any]]) -> dict[str, dict[str, int]]:
    return {name: dict(load.codes) for name, load in loads.items()}


def slowest_calls(loads: dict[str, Load[Any]]) -> dict[str, float]:
    return {name: round(load.slowest_s, 2) for name, load in loads.items()}


# -- what must hold once the fault is over --------------------------------------------------------


async def outbox_ends(system: System) -> dict[str, int]:
    """The last outbox row of each service: what the writes add comes after it."""
    sql = "SELECT coalesce(max(seq), 0) FROM outbox"
    return {name: await db_value(dsn, sql) for name, dsn in system.dsns.items()}


async def unpublished(system: System) -> dict[str, int]:
    sql = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
    return {name: await db_value(dsn, sql) for name, dsn in system.dsns.items()}


async def all_published(system: System, within: float) -> float:
    """Seconds until every outbox row of every service was published."""
    started = time.monotonic()

    async def none_left() -> bool:
        return not any((await unpublished(system)).values())

    try:
        await eventually(none_left, within=within, interval=0.5)
    except AssertionError:
        raise AssertionError(f"still unpublished after {within} s: {await unpublished(system)}") from None
    return time.monotonic() - started


async def each_request_created_once(
    system: System, loads: dict[str, Load[Any]], ends: dict[str, int]
) -> None:
    """Each request created one thing of its own, with one creation event: a retry of a call that had
    failed (or had succeeded unseen) created nothing more."""
    for name, load in loads.items():
        created = sorted(load.created.values())
        assert len(created) == len(load.requests) == len(set(created)), name
        sql = "SELECT aggregate_id FROM outbox WHERE seq > $1 AND event_type = $2"
        events = await rows(system.dsns[name], sql, ends[name], event_type_of(CREATES[name]()))
        assert sorted(r["aggregate_id"] for r in events) == created, name


async def applied_by_their_consumers(system: System, ends: dict[str, int]) -> float:
    """Seconds until every event the writes caused that a service applies was in its inbox."""
    started = time.monotonic()
    for message, consumers in APPLIED_BY.items():
        producer = message.DESCRIPTOR.full_name.split(".")[1]  # jiazheng.<service>.events.v1.<Type>
        sql = "SELECT event_id::text AS id FROM outbox WHERE seq > $1 AND event_type = $2"
        events = await rows(system.dsns[producer], sql, ends[producer], event_type_of(message()))
        assert events, f"the writes caused no {message.DESCRIPTOR.name}"
        for consumer in consumers:
            await all_in_inbox(system.dsns[consumer], consumer, {r["id"] for r in events})
    return time.monotonic() - started


async def all_in_inbox(dsn: str, consumer: str, ids: set[str]) -> None:
    async def missing() -> set[str]:
        sql = "SELECT event_id FROM inbox WHERE consumer = $1 AND event_id = ANY($2::text[])"
        return ids - {r["event_id"] for r in await rows(dsn, sql, consumer, list(ids))}

    async def applied() -> bool:
        return not await missing()

    try:
        await eventually(applied, within=120, interval=1)
    except AssertionError:
        raise AssertionError(f"{consumer} has not applied {len(await missing())} of {len(ids)}") from None


async def recovered(system: System, loads: dict[str, Load[Any]], ends: dict[str, int]) -> None:
    published_s = await all_published(system, PUBLISHED_WITHIN_S)
    await each_request_created_once(system, loads, ends)
    applied_s = await applied_by_their_consumers(system, ends)
    caught_up_s = await caught_up(system)
    await each_once_in_the_ledger(
        system.dsns["credit"], [r.order.worker_id for r in loads["orders"].requests.values()]
    )
    assert await dead_letters(system.bootstrap) == system.dead_letters
    assert {name: restarts(svc) for name, svc in system.services.items()} == dict.fromkeys(READS, 0), {
        name: svc.supervision() for name, svc in system.services.items()
    }
    print(  # shown with -s
        f"\n{answers(loads)}\nslowest calls (s): {slowest_calls(loads)}\n"
        f"outboxes drained in {published_s:.1f} s, effects applied {applied_s:.1f} s later,"
        f" every group caught up {caught_up_s:.1f} s later"
    )


# -- the faults ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def away(what: str, stop: Callable[[], None], start: Callable[[], None]) -> AsyncIterator[None]:
    """``stop`` now, ``start`` when the block ends (failed or not: the next test needs it)."""
    await asyncio.to_thread(stop)
    stopped = time.monotonic()
    try:
        yield
    finally:
        await asyncio.to_thread(start)
        print(f"\n{what} was away {time.monotonic() - stopped:.0f} s")  # shown with -s


async def test_a_postgresql_restart_answers_unavailable_in_time_and_every_service_recovers(
    system: System, fault_stack: LocalStack, fault_harness: ServiceHarness
) -> None:
    ends = await outbox_ends(system)
    async with writing(system, fault_harness) as loads:
        async with away("PostgreSQL", fault_stack.stop_postgres, fault_stack.start_postgres):
            await eventually(lambda: each_load(loads, "UNAVAILABLE", CALLS_PER_S))
            await asyncio.sleep(OUTAGE_S)
        await succeeding_again(loads)

    assert all(set(codes) == {"OK", "UNAVAILABLE"} for codes in answers(loads).values()), answers(loads)
    assert max(slowest_calls(loads).values()) <= DEADLINE_S + 1, slowest_calls(loads)
    await recovered(system, loads, ends)


async def test_a_broker_killed_and_restarted_holds_no_write_back_and_every_backlog_drains(
    system: System, fault_stack: LocalStack, fault_harness: ServiceHarness
) -> None:
    ends = await outbox_ends(system)
    crash = functools.partial(fault_stack.stop_kafka, signal.SIGKILL)
    async with writing(system, fault_harness) as loads, away("the broker", crash, fault_stack.start_kafka):
        await asyncio.sleep(OUTAGE_S)
        await succeeding_again(loads)  # into the outboxes
        backlog = await unpublished(system)

    assert all(backlog.values()), backlog  # every relay was held back while the broker was away
    assert all(set(codes) == {"OK"} for codes in answers(loads).values()), answers(loads)
    await recovered(system, loads, ends)
