"""Benchmark: an outcome recorded in complaints → the new level visible through credit's lookup, and
the card's colour visible through workers' VerifyCard (issue 9, item 7).

Three real service processes (``python -m services.workers``, ``complaints`` and ``credit``, each
on a fresh database, its outbox relay in the API process as the local stack runs it), after the
topics they read are recreated empty.

**Setup (untimed).** ``outcomes`` workers, spread over companies of 40, each made ready as the
integration tests make one (CreateWorker, a passed background check, an elderly-care health check,
a 四级 certificate, IssueCard, then insurance's WorkerCoverageChanged produced to insurance's topic
as insurance would publish it): GREEN cards, credit level C (600 + 30 for the certificate). Against
each worker a platform files a severe theft complaint (FileComplaint). The setup is settled when
every card verifies GREEN, every worker's public record shows C and every outbox is drained.

**Timed.** The outcome that moves credit is ONE call: an operator resolves the case substantiated,
the worker at fault (ResolveCase). Complaints then publishes CaseResolved and
WorkerSuspensionRequested; credit records the upheld complaint (-200: 430, level D) and the
suspension request; workers turns the card RED (suspended at once, then credit_level_d as well once
credit's CreditLevelChanged arrives). The calls are issued open loop at ``rate`` per second (each
on its schedule, not waiting for the one before). ``t0`` is when ResolveCase returned OK.

**Observed.** Every ``watch_every``-th outcome is watched: from ``t0`` its worker's public record
(GetWorkerCredit, a platform's key) is polled until it shows level D, and its card (VerifyCard
with the card's token) until it shows RED, each poll starting ``POLL_INTERVAL_S`` (2 ms) after
the previous one started, or when it returned if that is later; past 20 ms the interval is 10 % of
the time waited (a slow chain must not make the observer poll harder). A latency is ``t0`` → the
return of the first poll that shows the change: an upper bound, at most one poll interval plus
one poll's own duration above the true instant. Only a sample is watched (by default every 20th of
4,000: 200 outcomes) because the polls are a load of their own on the two cores the services share:
watching every 4th at 200 outcomes/s made 500-700 lookups a second, about as much CPU in credit
and workers as the chain itself. The unwatched outcomes load the services exactly as the watched
ones do. Every outcome (watched or not) is checked at the end: level D, card RED.

**Baselines (same run).** (1) The floor of one asynchronous hop: a bare Kafka produce → consume
round trip on the same broker at the same rate, with the services' producer (``idempotent_producer``:
acks=all, idempotent, linger 5 ms) and consumer (``kafka_consumer``, polled like ``run_ingest``),
in this process, before the timed phase. (2) The lookups' own latency: GetWorkerCredit and
VerifyCard called one at a time on the settled setup. The chain's floor is about one hop plus a
consumer transaction plus one lookup.

**Where the time goes.** From the databases' own clocks (transaction start times, one machine):
complaints' outbox (``created_at`` → ``published_at``: the relay's wake-up and claim), then credit's
and workers' inbox (``processed_at``) after the relay claimed the event (the produce, Kafka and the
consumer's fetch).

Targets: level visible p50 <= 15 ms, p99 <= 50 ms; card colour visible p99 <= 100 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import grpc

from bench.common import (
    BenchEnv,
    CpuWindow,
    ServiceProcess,
    Target,
    figure,
    percentile_ms,
    process_cpu_s,
    reset_topic,
    running_service,
)
from deploy.local.stack import scratch_database
from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.complaints.v1 import complaints_pb2_grpc
from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from jiazheng.workers.v1 import workers_pb2 as w
from jiazheng.workers.v1 import workers_pb2_grpc
from libs.common.events import event_type_of
from libs.common.ingest import kafka_consumer
from libs.common.kafka import events_topic, idempotent_producer
from libs.common.settings import ServiceSettings
from services.workers.domain.identity import id_check_character
from tests.integration.clients import auth
from tests.integration.workers_client import coverage_event, produce, social_credit_code, worker_request

SERVICES = ("workers", "complaints", "credit")
# Every topic the three services read, recreated empty (with their groups' offsets) before a run.
TOPICS = [events_topic(s) for s in ("orders", "complaints", "workers", "insurance", "credit")]
HOP_TOPIC = "jzbench.propagation.hop.v1"
POLL_INTERVAL_S = 0.002
# Beyond 20 ms the interval grows with the wait (10 % of it), so that a slow chain does not make
# the observer poll harder: the resolution stays within 10 % of the figure.
POLL_BACKOFF = 0.1
WORKERS_PER_COMPANY = 40
SETUP_CONCURRENCY = 8
IDLE_LOOKUPS = 200
LOOKUP_TIMEOUT_S = 60.0  # a watch gives up after this; it counts as this long (a lower bound)
CASE_RESOLVED = event_type_of(complaint_events.CaseResolved())
SUSPENSION_REQUESTED = event_type_of(complaint_events.WorkerSuspensionRequested())
LEVEL_P50_MS, LEVEL_P99_MS, CARD_P99_MS = 15.0, 50.0, 100.0


@dataclass(frozen=True)
class Subject:
    """A ready worker, the verification token of their card, and the open case against them."""

    worker: str
    token: str
    case: str = ""


@dataclass
class Clients:
    """One channel per service for the whole run, and the keys the bench calls with."""

    channels: dict[str, grpc.aio.Channel]
    operator: list[tuple[str, str]]
    platform: list[tuple[str, str]]

    def workers(self) -> Any:
        return workers_pb2_grpc.WorkerServiceStub(self.channels["workers"])

    def cards(self) -> Any:
        return workers_pb2_grpc.CardServiceStub(self.channels["workers"])

    def complaints(self) -> Any:
        return complaints_pb2_grpc.ComplaintServiceStub(self.channels["complaints"])

    def credit(self) -> Any:
        return credit_pb2_grpc.CreditServiceStub(self.channels["credit"])

    async def level(self, subject: Subject) -> int:
        request = credit_pb2.GetWorkerCreditRequest(name=subject.worker)
        reply = await self.credit().GetWorkerCredit(request, metadata=self.platform)
        return int(reply.credit.level)

    async def colour(self, subject: Subject) -> int:
        request = w.VerifyCardRequest(token=subject.token)
        return int((await self.cards().VerifyCard(request, metadata=self.platform)).colour)


@contextlib.asynccontextmanager
async def _clients(env: BenchEnv, services: dict[str, ServiceProcess]) -> AsyncIterator[Clients]:
    channels = {name: grpc.aio.insecure_channel(f"127.0.0.1:{s.port}") for name, s in services.items()}
    try:
        yield Clients(channels, auth(env.key("operator")), auth(env.key("demo-platform")))
    finally:
        for channel in channels.values():
            await channel.close(None)


# -- setup -----------------------------------------------------------------------------------


async def _bounded(count: int, make: Callable[[int], Awaitable[Subject]]) -> list[Subject]:
    """``make(i)`` for i < count, ``SETUP_CONCURRENCY`` at a time, in order."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(i: int) -> Subject:
        async with gate:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _company(clients: Clients) -> str:
    company = w.Company(
        social_credit_code=social_credit_code(),
        display_name="北京好家政有限公司",
        premises_square_metres=80,
        outlets=[w.Outlet(display_name="望京网点", district_code="110105")],
        employment_model=w.EMPLOYMENT_MODEL_EMPLOYEE,
    )
    request = w.CreateCompanyRequest(request_id=str(uuid.uuid4()), company=company)
    return str((await clients.workers().CreateCompany(request, metadata=clients.operator)).company.name)


def _qualifications(worker: str, today: date) -> list[tuple[str, Any]]:
    """The records that make a worker's card GREEN (with insurance) and give credit a fact."""
    return [
        (
            "RecordBackgroundCheck",
            w.RecordBackgroundCheckRequest(
                worker=worker, identity_genuine=True, check_date=(today - timedelta(days=30)).isoformat()
            ),
        ),
        (
            "RecordHealthCheck",
            w.RecordHealthCheckRequest(
                worker=worker,
                tier=w.HEALTH_TIER_ELDERLY_CARE,
                issue_date=(today - timedelta(days=10)).isoformat(),
                hospital="北京协和医院",
                certificate_number="TJ-1",
            ),
        ),
        (
            "RecordSkillCertificate",
            w.RecordSkillCertificateRequest(
                worker=worker,
                trade=w.TRADE_FAMILY_CARER,
                level=w.SKILL_LEVEL_4,
                certificate_number="ZS-4",
                issue_date=(today - timedelta(days=5)).isoformat(),
            ),
        ),
    ]


def _id_number(i: int) -> str:
    """The ``i``-th resident ID number of a run: distinct for every i (the integration tests' helper
    repeats a sequence number every 1,000, so two of 2,000 workers can share one)."""
    first17 = f"110105{date(1970, 1, 1) + timedelta(days=i // 1000):%Y%m%d}{i % 1000:03d}"
    return first17 + id_check_character(first17)


async def _ready_worker(clients: Clients, company: str, i: int) -> Subject:
    stub = clients.workers()
    request = worker_request(company, id_number=_id_number(i), trades=[w.TRADE_FAMILY_CARER])
    worker = (await stub.CreateWorker(request, metadata=clients.operator)).worker.name
    for method, step in _qualifications(worker, date.today()):
        await getattr(stub, method)(step, metadata=clients.operator)
    issued = w.IssueCardRequest(worker=worker)
    card = (await clients.cards().IssueCard(issued, metadata=clients.operator)).card
    return Subject(worker, card.token)


async def _file_complaint(clients: Clients, subject: Subject, company: str) -> Subject:
    request = c.FileComplaintRequest(
        request_id=str(uuid.uuid4()),
        respondent=c.PARTY_KIND_WORKER,
        worker=subject.worker,
        company=company,
        category=c.CATEGORY_THEFT,
        severity=c.SEVERITY_SEVERE,
        description="服务后发现首饰丢失",
    )
    reply = await clients.complaints().FileComplaint(request, metadata=clients.platform)
    return Subject(subject.worker, subject.token, reply.complaint_case.name)


async def _setup(clients: Clients, bootstrap: str, count: int) -> list[Subject]:
    """``count`` GREEN workers at level C, each with an open severe complaint against them."""
    companies = [await _company(clients) for _ in range(max(1, count // WORKERS_PER_COMPANY))]

    def company_of(i: int) -> str:
        return companies[i % len(companies)]

    ready = await _bounded(count, lambda i: _ready_worker(clients, company_of(i), i))
    until = date.today() + timedelta(days=365)
    await produce(bootstrap, events_topic("insurance"), *(coverage_event(s.worker, until) for s in ready))
    return await _bounded(count, lambda i: _file_complaint(clients, ready[i], company_of(i)))


async def _until_all(
    subjects: Sequence[Subject], shows: Callable[[Subject], Awaitable[bool]], timeout_s: float
) -> int:
    """Check every subject again and again until each ``shows`` or ``timeout_s`` passed; how many
    never did."""
    deadline = time.perf_counter() + timeout_s
    pending = list(subjects)
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def check(s: Subject) -> bool:
        async with gate:
            return await shows(s)

    while pending and time.perf_counter() < deadline:
        done = await asyncio.gather(*(check(s) for s in pending))
        pending = [s for s, ok in zip(pending, done, strict=True) if not ok]
        if pending:
            await asyncio.sleep(0.5)
    return len(pending)


async def _settle(clients: Clients, subjects: Sequence[Subject], dsns: Sequence[str]) -> None:
    """Every card GREEN, every record at C, every outbox drained: nothing left in flight."""

    async def green(s: Subject) -> bool:
        return await clients.colour(s) == w.CARD_COLOUR_GREEN

    async def at_c(s: Subject) -> bool:
        with contextlib.suppress(grpc.aio.AioRpcError):  # NOT_FOUND until credit heard of the worker
            return await clients.level(s) == credit_pb2.LEVEL_C
        return False

    for what, shows in (("GREEN", green), ("level C", at_c)):
        if missing := await _until_all(subjects, shows, 180):
            raise RuntimeError(f"{missing} of {len(subjects)} workers not {what} after the setup")
    for dsn in dsns:
        await _drained(dsn, 60)
    await asyncio.sleep(1.0)


async def _drained(dsn: str, timeout_s: float) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.perf_counter() + timeout_s
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"outbox of {dsn} not drained in {timeout_s}s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


# -- the timed phase -------------------------------------------------------------------------


@dataclass
class Polls:
    """The lookups one watch made: how long each took."""

    durations_s: list[float] = field(default_factory=list)


@dataclass
class Outcome:
    """One ResolveCase call: when it was due, sent and answered; what the watch saw."""

    subject: Subject
    due: float
    sent: float = 0.0
    t0: float = 0.0
    level_s: float | None = None
    card_s: float | None = None
    error: str = ""  # the status code of a ResolveCase that failed


async def _watch(
    t0: float, probe: Callable[[], Awaitable[bool]], polls: Polls, timeout_s: float = LOOKUP_TIMEOUT_S
) -> float | None:
    """Seconds from ``t0`` to the return of the first poll of ``probe`` that is true; None if
    none is within ``timeout_s``."""
    while True:
        started = time.perf_counter()
        shown = await probe()
        returned = time.perf_counter()
        polls.durations_s.append(returned - started)
        if shown:
            return returned - t0
        if returned - t0 > timeout_s:
            return None
        interval = max(POLL_INTERVAL_S, POLL_BACKOFF * (started - t0))
        await asyncio.sleep(max(0.0, started + interval - time.perf_counter()))


async def _resolve(clients: Clients, outcome: Outcome, watched: bool, level: Polls, card: Polls) -> None:
    await asyncio.sleep(max(0.0, outcome.due - time.perf_counter()))
    result = c.Outcome(result=c.OUTCOME_RESULT_SUBSTANTIATED, at_fault=c.PARTY_KIND_WORKER)
    request = c.ResolveCaseRequest(name=outcome.subject.case, outcome=result)
    outcome.sent = time.perf_counter()
    try:
        await clients.complaints().ResolveCase(request, metadata=clients.operator)
    except grpc.aio.AioRpcError as exc:  # e.g. UNAVAILABLE: the service's pool waited too long
        outcome.error = exc.code().name
        return
    outcome.t0 = time.perf_counter()
    if not watched:
        return
    s = outcome.subject

    async def at_d() -> bool:
        return await clients.level(s) == credit_pb2.LEVEL_D

    async def red() -> bool:
        return await clients.colour(s) == w.CARD_COLOUR_RED

    outcome.level_s, outcome.card_s = await asyncio.gather(
        _watch(outcome.t0, at_d, level), _watch(outcome.t0, red, card)
    )


@dataclass
class Timed:
    """What the timed phase saw: every outcome, the polls, the CPU the machine and services used."""

    outcomes: list[Outcome]
    watch_every: int
    level_polls: Polls
    card_polls: Polls
    cpu: dict[str, float]
    services_cpu_s: dict[str, float]

    @property
    def answered(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.error]

    @property
    def watched(self) -> list[Outcome]:
        return [o for o in self.outcomes[:: self.watch_every] if not o.error]

    def errors(self) -> dict[str, int]:
        return dict(Counter(o.error for o in self.outcomes if o.error))


async def _timed(
    clients: Clients, subjects: Sequence[Subject], rate: float, watch_every: int, pids: dict[str, int]
) -> Timed:
    """ResolveCase for every subject at ``rate`` per second, open loop; every ``watch_every``-th watched."""
    start = time.perf_counter() + 0.2
    outcomes = [Outcome(s, start + i / rate) for i, s in enumerate(subjects)]
    level, card = Polls(), Polls()
    cpu = CpuWindow()
    before = {name: process_cpu_s(pid) for name, pid in pids.items()}
    cpu.start()
    await asyncio.gather(
        *(_resolve(clients, o, i % watch_every == 0, level, card) for i, o in enumerate(outcomes))
    )
    cpu.stop()
    used = {name: round(process_cpu_s(pid) - before[name], 2) for name, pid in pids.items()}
    return Timed(outcomes, watch_every, level, card, cpu.result, used)


async def _all_propagated(clients: Clients, subjects: Sequence[Subject]) -> bool:
    """Every outcome, watched or not, reached level D and a RED card (within a minute)."""

    async def done(s: Subject) -> bool:
        return await clients.level(s) == credit_pb2.LEVEL_D and await clients.colour(s) == w.CARD_COLOUR_RED

    return await _until_all(subjects, done, 60) == 0


# -- baselines -------------------------------------------------------------------------------


async def _kafka_hop(bootstrap: str, count: int, rate: float) -> list[float]:
    """Produce → consume latencies of ``count`` records sent at ``rate`` per second, with the
    services' producer and consumer settings, on a topic of the bench's own."""
    await reset_topic(bootstrap, HOP_TOPIC)
    settings = ServiceSettings(
        kafka_bootstrap=bootstrap,
        service_name="bench",
        consumer_group_prefix=f"jzbench-{uuid.uuid4().hex[:8]}",
    )
    consumer = kafka_consumer(settings, "hop", [HOP_TOPIC])
    producer = idempotent_producer(settings)
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():  # joined: the first records wait for no rebalance
            await consumer.getmany(timeout_ms=100)
        return await _hop_round_trips(producer, consumer, count, rate)
    finally:
        await producer.stop()
        await consumer.stop()


async def _hop_round_trips(producer: Any, consumer: Any, count: int, rate: float) -> list[float]:
    sent: dict[int, float] = {}
    latencies: list[float] = []

    async def send_all() -> None:
        start = time.perf_counter()
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent[i] = time.perf_counter()
            await producer.send(HOP_TOPIC, value=str(i).encode(), key=f"workers/{i}".encode())

    sending = asyncio.create_task(send_all())
    deadline = time.perf_counter() + count / rate + 30
    while len(latencies) < count and time.perf_counter() < deadline:
        for messages in (await consumer.getmany(timeout_ms=1000)).values():
            now = time.perf_counter()
            latencies += [now - sent[int(m.value)] for m in messages]
    await sending
    return latencies


async def _idle_lookups(clients: Clients, subjects: Sequence[Subject]) -> dict[str, list[float]]:
    """GetWorkerCredit and VerifyCard, one call at a time, on the settled setup."""
    timed: dict[str, list[float]] = {"GetWorkerCredit": [], "VerifyCard": []}
    for i in range(IDLE_LOOKUPS):
        s = subjects[i % len(subjects)]
        for name, call in (("GetWorkerCredit", clients.level), ("VerifyCard", clients.colour)):
            t = time.perf_counter()
            await call(s)
            timed[name].append(time.perf_counter() - t)
    return timed


# -- where the time goes ---------------------------------------------------------------------


async def _rows(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _stages(dsns: dict[str, str], since: datetime) -> dict[str, dict[str, object]]:
    """Per event of the timed phase, from the databases' clocks: complaints' relay (commit's
    transaction start → claim) and each consumer's transaction start after the claim."""
    published = await _rows(
        dsns["complaints"],
        "SELECT event_id::text AS id, event_type, created_at, published_at FROM outbox"
        " WHERE created_at >= $1 AND event_type = ANY($2::text[])",
        since,
        [CASE_RESOLVED, SUSPENSION_REQUESTED],
    )
    claims = {r["id"]: r["published_at"] for r in published if r["published_at"] is not None}
    stages = {
        "complaints relay: outcome transaction → relay claim": _spread(
            [(r["published_at"] - r["created_at"]).total_seconds() for r in published if r["published_at"]]
        )
    }
    for consumer, event_type in (("credit", CASE_RESOLVED), ("workers", SUSPENSION_REQUESTED)):
        consumed = await _rows(
            dsns[consumer], "SELECT event_id, processed_at FROM inbox WHERE event_type = $1", event_type
        )
        gaps = [
            (r["processed_at"] - claims[r["event_id"]]).total_seconds()
            for r in consumed
            if r["event_id"] in claims
        ]
        stages[f"relay claim → {consumer}'s consumer transaction ({event_type.rsplit('.', 1)[-1]})"] = (
            _spread(gaps)
        )
    return stages


def _spread(values_s: Sequence[float]) -> dict[str, object]:
    ordered = sorted(values_s)
    return {"count": len(ordered), "p50_ms": percentile_ms(ordered, 50), "p99_ms": percentile_ms(ordered, 99)}


# -- the run ---------------------------------------------------------------------------------


def _latency_run(what: str, latencies_s: Sequence[float], per_s: float | None = None) -> dict[str, object]:
    ordered = sorted(latencies_s)
    return {
        "what": what,
        "count": len(ordered),
        "calls_per_s": round(per_s, 1) if per_s is not None else None,
        "p50_ms": percentile_ms(ordered, 50),
        "p90_ms": percentile_ms(ordered, 90),
        "p99_ms": percentile_ms(ordered, 99),
        "max_ms": percentile_ms(ordered, 100),
    }


def _seen(values: Sequence[float | None]) -> list[float]:
    """The latencies watched, one given up on counted as ``LOOKUP_TIMEOUT_S`` (so a percentile that
    lands on it is a lower bound)."""
    return [LOOKUP_TIMEOUT_S if v is None else v for v in values]


def _watched_run(what: str, latencies_s: Sequence[float | None]) -> dict[str, object]:
    run = _latency_run(what, _seen(latencies_s))
    run["given_up"] = sum(1 for v in latencies_s if v is None)
    return run


def _figures(timed: Timed, hop: Sequence[float], all_done: bool) -> list[dict[str, object]]:
    level = sorted(_seen([o.level_s for o in timed.watched]))
    card = sorted(_seen([o.card_s for o in timed.watched]))
    hop_sorted = sorted(hop)
    given_up = [o for o in timed.watched if o.level_s is None or o.card_s is None]
    every_seen = not given_up and not timed.errors()
    return [
        figure(
            "outcome → level D via GetWorkerCredit, p50",
            "ms",
            percentile_ms(level, 50),
            percentile_ms(hop_sorted, 50),
            Target(at_most=LEVEL_P50_MS),
        ),
        figure(
            "outcome → level D via GetWorkerCredit, p99",
            "ms",
            percentile_ms(level, 99),
            percentile_ms(hop_sorted, 99),
            Target(at_most=LEVEL_P99_MS),
        ),
        figure(
            "outcome → card RED via VerifyCard, p50",
            "ms",
            percentile_ms(card, 50),
            percentile_ms(hop_sorted, 50),
        ),
        figure(
            "outcome → card RED via VerifyCard, p99",
            "ms",
            percentile_ms(card, 99),
            percentile_ms(hop_sorted, 99),
            Target(at_most=CARD_P99_MS),
        ),
        figure(
            "propagation: every outcome reached level D and a RED card",
            "yes/no",
            every_seen and all_done,
            target=Target(holds="every outcome recorded, each watched one seen, all D and RED at the end"),
        ),
    ]


def _runs(
    timed: Timed, hop: Sequence[float], idle: dict[str, list[float]], rate: float
) -> list[dict[str, object]]:
    answered = timed.answered
    span = max((o.t0 for o in answered), default=0.0) - min(o.sent for o in timed.outcomes)
    lateness = [o.sent - o.due for o in timed.outcomes]
    resolve = _latency_run(
        "ResolveCase (the outcome) at the offered rate",
        [o.t0 - o.sent for o in answered],
        len(answered) / span if span > 0 else None,
    )
    resolve.update(
        offered_per_s=rate,
        errors=timed.errors(),
        send_lateness_p99_ms=percentile_ms(sorted(lateness), 99),
        cpu=timed.cpu,
        services_cpu_s=timed.services_cpu_s,
    )
    wall = timed.cpu.get("wall_s", 0.0) or 1.0
    return [
        _latency_run("baseline: bare Kafka produce → consume", hop, rate),
        _latency_run("baseline: GetWorkerCredit alone", idle["GetWorkerCredit"]),
        _latency_run("baseline: VerifyCard alone", idle["VerifyCard"]),
        resolve,
        _watched_run("level D visible (watched outcomes)", [o.level_s for o in timed.watched]),
        _watched_run("card RED visible (watched outcomes)", [o.card_s for o in timed.watched]),
        _latency_run(
            "GetWorkerCredit polls under load",
            timed.level_polls.durations_s,
            len(timed.level_polls.durations_s) / wall,
        ),
        _latency_run(
            "VerifyCard polls under load",
            timed.card_polls.durations_s,
            len(timed.card_polls.durations_s) / wall,
        ),
    ]


@contextlib.asynccontextmanager
async def _services(env: BenchEnv) -> AsyncIterator[tuple[dict[str, ServiceProcess], dict[str, str]]]:
    """The three services, each on a fresh database, once they answer SERVING."""
    async with contextlib.AsyncExitStack() as stack:
        dsns: dict[str, str] = {}
        services: dict[str, ServiceProcess] = {}
        for name in SERVICES:
            db = await stack.enter_async_context(scratch_database(env.endpoints, f"jzbench_prop_{name}"))
            dsns[name] = env.endpoints.dsn(db)
            services[name] = await stack.enter_async_context(running_service(env, name, db))
        yield services, dsns


async def run(
    env: BenchEnv, outcomes: int = 4_000, rate: float = 200.0, watch_every: int = 20
) -> dict[str, object]:
    """Set up ``outcomes`` workers and cases, then time their outcomes' propagation."""
    bootstrap = env.endpoints.kafka_bootstrap
    for topic in TOPICS:
        await reset_topic(bootstrap, topic)
    async with _services(env) as (services, dsns), _clients(env, services) as clients:
        set_up = time.perf_counter()
        subjects = await _setup(clients, bootstrap, outcomes)
        await _settle(clients, subjects, list(dsns.values()))
        setup_s = time.perf_counter() - set_up
        hop = await _kafka_hop(bootstrap, min(outcomes, 1_000), rate)
        idle = await _idle_lookups(clients, subjects)
        since = datetime.now().astimezone()
        timed = await _timed(clients, subjects, rate, watch_every, {n: s.pid for n, s in services.items()})
        all_done = await _all_propagated(clients, [o.subject for o in timed.answered])
        stages = await _stages(dsns, since)
    return {
        "outcomes": outcomes,
        "offered_per_s": rate,
        "watched": len(timed.watched),
        "poll_interval_ms": POLL_INTERVAL_S * 1000,
        "setup_s": round(setup_s, 1),
        "stages": stages,
        "figures": _figures(timed, hop, all_done),
        "runs": _runs(timed, hop, idle, rate),
    }
