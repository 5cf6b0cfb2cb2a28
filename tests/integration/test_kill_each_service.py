"""Issue 14, fault injection 1: each service killed (SIGKILL) in the middle of a stream of 10,000
source events crossing all of them; after the restarts, nothing is lost and nothing applied twice.

A stack of its own (its broker's data fresh each run, stopped at the end) runs the six services
that consume events (orders, workers, credit, complaints, insurance, regulator), each under the
local supervisor, on scratch databases and in consumer groups of a fresh prefix. A seeded stream
(tests/integration/crossing_stream.py) is produced to the services' real event topics in ten
batches; halfway through six of them one service is killed in turn (the supervisor restarts it),
and after another a slice of what was already produced is delivered again. Once every outbox is
drained and every consumer group has caught up, what each service holds equals what the inputs
imply, computed in plain Python: credit's ledger (entry by entry: source event, worker, kind,
magnitude) and the companies' cases, the workers' card status, matching's copy of levels and
colours, complaints' cases and orders, insurance's covers, automatic claims and payouts, the
regulator's indicators; and nothing went to a dead-letter topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg
import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf import json_format

from deploy.local.services import DEMO_COMPANY_ID
from deploy.local.stack import LocalStack, default_home
from deploy.local.stack import scratch_database as new_scratch_database
from jiazheng.insurance.v1 import claims_pb2 as cpb
from jiazheng.regulator.v1 import regulator_pb2 as rpb
from jiazheng.type.v1 import service_type_pb2 as st
from jiazheng.workers.v1 import workers_pb2 as wpb
from libs.common.beijing import beijing_day
from libs.common.kafka import dlq_topic, events_topic
from services.insurance.domain.products import DEFAULT_PRODUCTS
from services.insurance.service_layer.claims import automatic_claim_id
from services.regulator.topics import INDICATORS_TOPIC, SOURCE_SERVICES, regulator_topic
from tests.integration.crossing_stream import Award, CrossingStream, Sent
from tests.integration.harness import RunningService, ServiceHarness, services_on
from tests.integration.insurance_client import beijing_today, claim_call, create_policy, insured
from tests.integration.kafka_tools import read_topic
from tests.integration.test_regulator_indicators import expected
from tests.integration.workers_client import call, create_worker, ensure_company

pytestmark = [pytest.mark.integration, pytest.mark.own_stack]

SEED = 14
EVENTS = 10_000
BATCHES = 10
# The batch halfway through which each service is killed; the regulator first, as it takes longest
# to come back (faust's group holds the dead member's partitions for its 60 s session timeout).
KILLS = {0: "regulator", 1: "credit", 2: "workers", 3: "complaints", 4: "orders", 8: "insurance"}
DUPLICATES_AFTER, DUPLICATES = 6, 500  # re-delivered: a slice of the batches before
PACE_S = 2.0  # between batches: the stream goes on while the killed services come back
AWARDS_FROM = 8  # the batches of compensation awards: insurance must hold their orders first
CARD_WORKERS, POLICY_WORKERS = 60, 40
BORN = date(1985, 3, 1)
WITH_DATABASE = ("orders", "workers", "credit", "complaints", "insurance")
SERVICES = (*WITH_DATABASE, "regulator")
# The topics each consumer group reads (services/*/app.py).
CONSUMES: dict[str, list[str]] = {
    "orders": [events_topic(s) for s in ("workers", "credit")],
    "workers": [events_topic(s) for s in ("credit", "insurance", "complaints")],
    "credit": [events_topic(s) for s in ("orders", "complaints", "workers", "insurance")],
    "complaints": [events_topic(s) for s in ("orders", "insurance")],
    "insurance": [events_topic(s) for s in ("orders", "complaints")],
    "regulator": [events_topic(s) for s in SOURCE_SERVICES] + [regulator_topic(s) for s in SOURCE_SERVICES],
}


@pytest.fixture(scope="module")
def kills_stack() -> Iterator[LocalStack]:
    """The stack of this module, with a broker formatted afresh: a regulator reads every source
    topic from its start, so a run never replays the runs before it."""
    stack = LocalStack(default_home("test") / "kills")
    stack.stop_kafka()
    shutil.rmtree(stack.kafka_dir, ignore_errors=True)
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def kills_harness(kills_stack: LocalStack) -> Iterator[ServiceHarness]:
    with services_on(kills_stack.endpoints(), kills_stack.home) as harness:
        yield harness


@dataclass
class Platform:
    """The six services, their databases and consumer groups."""

    services: dict[str, RunningService]
    dsns: dict[str, str]
    prefix: str
    bootstrap: str

    def group(self, consumer: str) -> str:
        return f"{self.prefix}-{consumer}"


@contextlib.asynccontextmanager
async def six_services(harness: ServiceHarness) -> AsyncIterator[Platform]:
    prefix, before = f"kills-{uuid.uuid4().hex[:8]}", {id(svc) for svc in harness.running()}
    async with contextlib.AsyncExitStack() as databases:
        names = {
            name: await databases.enter_async_context(
                new_scratch_database(harness.endpoints, f"jz_kills_{name}")
            )
            for name in WITH_DATABASE
        }
        try:
            started = await asyncio.gather(
                *(
                    harness.start(name, names.get(name), 0, True, consumer_group_prefix=prefix)
                    for name in SERVICES
                )
            )
            dsns = {name: harness.endpoints.dsn(db) for name, db in names.items()}
            services = dict(zip(SERVICES, started, strict=True))
            yield Platform(services, dsns, prefix, harness.endpoints.kafka_bootstrap)
        finally:  # before their databases are dropped
            ours = [svc for svc in harness.running() if id(svc) not in before]
            await asyncio.gather(*(asyncio.to_thread(svc.stop) for svc in ours))
            for svc in ours:
                harness.stop(svc)


class Offsets:
    """How far each consumer group is behind the end of the topics it reads."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.partitions: dict[str, list[TopicPartition]] = {}

    async def __aenter__(self) -> Offsets:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def records(self, topic: str) -> int:
        """How many records ``topic`` ever had (its partitions' end offsets, on a fresh broker)."""
        partitions = await self._partitions([topic])
        return sum((await self.consumer.end_offsets(partitions)).values())

    async def _partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        missing = [t for t in topics if t not in self.partitions]
        if missing:
            for described in await self.admin.describe_topics(missing):
                topic = described["topic"]
                self.partitions[topic] = [
                    TopicPartition(topic, p["partition"]) for p in described["partitions"]
                ]
        return [tp for t in topics for tp in self.partitions[t]]

    async def lag(self, group: str, topics: Sequence[str]) -> int:
        return sum((await self.behind(group, topics)).values())

    async def behind(self, group: str, topics: Sequence[str]) -> dict[str, int]:
        """The partitions of ``topics`` where ``group`` has not committed up to the end, with how far."""
        partitions = await self._partitions(topics)
        ends = await self.consumer.end_offsets(partitions)
        committed = await self.admin.list_consumer_group_offsets(group)
        lags = {tp: end - max(committed[tp].offset if tp in committed else 0, 0) for tp, end in ends.items()}
        return {f"{tp.topic}:{tp.partition}": lag for tp, lag in lags.items() if lag}


async def rows(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def produce(producer: AIOKafkaProducer, sent: Sequence[Sent]) -> None:
    """In the stream's order: one aggregate's events stay in their order (key = subject)."""
    pending = [
        await producer.send(s.topic, value=s.event.data, key=s.event.key, headers=s.event.kafka_headers())
        for s in sent
    ]
    await asyncio.gather(*pending)


async def card_workers(workers: RunningService, operator: str, n: int) -> list[str]:
    """``n`` workers with their background and health checks in order: YELLOW for want of cover."""
    company = await ensure_company(workers, operator, DEMO_COMPANY_ID)
    at_once = asyncio.Semaphore(8)
    checked = (date.today() - timedelta(days=10)).isoformat()

    async def one() -> str:
        async with at_once:
            worker = await create_worker(workers, operator, company.name)
            check = wpb.RecordBackgroundCheckRequest(
                worker=worker.name, identity_genuine=True, check_date=checked
            )
            await call(workers, operator, "RecordBackgroundCheck", check)
            health = wpb.RecordHealthCheckRequest(
                worker=worker.name,
                tier=wpb.HEALTH_TIER_LIVE_IN,
                issue_date=checked,
                hospital="北京协和医院",
                certificate_number="TJ-14",
            )
            await call(workers, operator, "RecordHealthCheck", health)
            return str(worker.name.removeprefix("workers/"))

    return list(await asyncio.gather(*(one() for _ in range(n))))


def professional_liability_deductible() -> int:
    products = json.loads(DEFAULT_PRODUCTS.read_text())["products"]
    [package] = [p for p in products if p["id"] == "package-standard"]
    [terms] = [t for t in package["terms"] if t["kind"] == "PROFESSIONAL_LIABILITY"]
    return int(terms["deductible_fen"])


@dataclass
class Run:
    """What the run observed, for its assertions and its report."""

    started: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)
    lag_at_kill: dict[str, int] = field(default_factory=dict)

    def mark(self, phase: str) -> None:
        self.phases[phase] = round(time.monotonic() - self.started, 1)

    def report(self, stream: CrossingStream) -> str:
        by_type = dict(sorted(stream.counts().items()))
        return json.dumps(
            {
                "events": len(stream.sent),
                "by_type": by_type,
                "duplicates": DUPLICATES,
                "lag_at_kill": self.lag_at_kill,
                "phases_s": self.phases,
            },
            indent=1,
        )


async def until(check: Callable[[], Awaitable[object]], within: float, interval: float = 1.0) -> None:
    """Poll ``check`` (async, returning what is still missing) until it returns nothing."""
    deadline = time.monotonic() + within
    while True:
        missing = await check()
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still missing after {within}s: {missing!r}")
        await asyncio.sleep(interval)


async def insurance_holds_the_checked_in_orders(p: Platform, stream: CrossingStream) -> None:
    ids = [o.id for o in stream.insured_orders]

    async def missing() -> int:
        found = await rows(
            p.dsns["insurance"],
            "SELECT order_id FROM insured_orders WHERE order_id = ANY($1::text[]) AND check_in IS NOT NULL",
            ids,
        )
        return len(ids) - len(found)

    await until(missing, within=180)


async def pay_the_covered_claims(p: Platform, insurer: str, awards: list[Award]) -> None:
    """The insurer adjudicates each automatic claim of a covered order at what was claimed and pays
    it; a call that fails (insurance restarting) is made again with its request id."""
    names = [f"claims/{automatic_claim_id(a.case_id)}" for a in awards]

    async def not_filed() -> int:
        filed = await rows(
            p.dsns["insurance"],
            "SELECT claim_id FROM claims WHERE state = 'filed' AND claim_id = ANY($1::uuid[])",
            [n.removeprefix("claims/") for n in names],
        )
        return len(names) - len(filed)

    await until(not_filed, within=180)

    async def settle(award: Award, name: str) -> None:
        adjudicate = cpb.AdjudicateClaimRequest(
            name=name, request_id=str(uuid.uuid4()), assessed_fen=award.compensation_fen
        )
        pay = cpb.PayClaimRequest(name=name, request_id=str(uuid.uuid4()))
        for method, request in (("AdjudicateClaim", adjudicate), ("PayClaim", pay)):
            for attempt in range(60):
                try:
                    await claim_call(p.services["insurance"], insurer, method, request)
                    break
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == 59:
                        raise
                    await asyncio.sleep(1)

    await asyncio.gather(*(settle(a, n) for a, n in zip(awards, names, strict=True)))


async def quiet(p: Platform, offsets: Offsets, consumers: Sequence[str]) -> dict[str, object]:
    """What is still in flight: unpublished outbox rows, and how far the ``consumers`` lag."""
    busy: dict[str, object] = {}
    for name in WITH_DATABASE:
        unpublished = await rows(p.dsns[name], "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
        if unpublished[0]["n"]:
            busy[f"{name} outbox"] = unpublished[0]["n"]
    for name in consumers:
        if behind := await offsets.behind(p.group(name), CONSUMES[name]):
            busy[f"{name} lag"] = behind
    return busy


async def settled(p: Platform, offsets: Offsets, consumers: Sequence[str], within: float) -> None:
    """Every outbox drained and the ``consumers`` caught up, twice in a row a few seconds apart."""

    async def busy() -> dict[str, object]:
        first = await quiet(p, offsets, consumers)
        if first:
            return first
        await asyncio.sleep(3)
        return await quiet(p, offsets, consumers)

    await until(busy, within=within, interval=2)


async def indicators(bootstrap: str, districts: set[str]) -> dict[tuple[str, str], rpb.DistrictDay]:
    """The last figures the indicators topic carries for each day of ``districts``."""
    last: dict[tuple[str, str], rpb.DistrictDay] = {}
    for record in sorted(await read_topic(bootstrap, INDICATORS_TOPIC), key=lambda r: r.offset):
        district, _, day = (record.key or b"").decode().partition("/")
        if district in districts:
            last[(district, day)] = json_format.Parse(record.value, rpb.DistrictDay())
    return last


FLOWS = (
    "orders_placed",
    "orders_completed",
    "orders_dispatched",
    "orders_insured",
    "orders_uninsured",
    "elderly_care_orders",
    "complaints_filed",
)


def summed(figures: dict[tuple[str, str], rpb.DistrictDay], district: str, skip: str = "") -> dict[str, int]:
    """The flows of ``district`` added over its days (but ``skip``)."""
    days = [f for (d, day), f in figures.items() if d == district and day != skip]
    return {n: sum(getattr(f, n) for f in days) for n in FLOWS}


def flows(**counts: int) -> dict[str, int]:
    return {n: counts.get(n, 0) for n in FLOWS}


async def produce_with_kills(p: Platform, offsets: Offsets, stream: CrossingStream, run: Run) -> None:
    """The stream in batches; after some of them a service killed, after one a slice again."""
    rng = random.Random(SEED)
    producer = AIOKafkaProducer(bootstrap_servers=p.bootstrap, enable_idempotence=True, linger_ms=10)
    await producer.start()
    try:
        for n in range(BATCHES):
            if n == AWARDS_FROM:
                await insurance_holds_the_checked_in_orders(p, stream)
                run.mark("insurance holds the orders")
            batch = stream.batch(n, BATCHES)
            if victim := KILLS.get(n):  # killed halfway through the batch
                await produce(producer, batch[: len(batch) // 2])
                p.services[victim].kill_child(signal.SIGKILL)
                await produce(producer, batch[len(batch) // 2 :])
                # Seconds before the restarted process rejoins the group (after the dead member's
                # session times out): its lag now is what is left for that process.
                run.lag_at_kill[victim] = await offsets.lag(p.group(victim), CONSUMES[victim])
            else:
                await produce(producer, batch)
            if n == DUPLICATES_AFTER:
                earlier = [s for s in stream.sent if s.position < (n + 1) / BATCHES]
                await produce(producer, sorted(rng.sample(earlier, DUPLICATES), key=lambda s: s.position))
            await asyncio.sleep(PACE_S)
    finally:
        await producer.stop()


@pytest.mark.timeout(600)
async def test_each_service_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
    kills_harness: ServiceHarness,
) -> None:
    harness, run = kills_harness, Run()
    async with six_services(harness) as p, Offsets(p.bootstrap) as offsets:
        run.mark("services serving")
        districts = [f"99{n:04d}" for n in random.Random(SEED).sample(range(10_000), 11)]
        policy_workers = [str(uuid.uuid4()) for _ in range(POLICY_WORKERS)]
        await create_policy(
            p.services["insurance"],
            harness.key("demo-company"),
            "package-standard",
            beijing_today(),
            None,
            *(insured(w, BORN, 2, (st.SERVICE_TYPE_ELDERLY_CARE,)) for w in policy_workers),
        )
        stream = CrossingStream(
            seed=SEED,
            company_id=DEMO_COMPANY_ID,
            card_worker_ids=await card_workers(p.services["workers"], harness.key("operator"), CARD_WORKERS),
            day=beijing_day(datetime.now(UTC)) - timedelta(days=2),
            day_districts=[districts[0:3], districts[3:6], districts[6:9]],
            policy_workers=policy_workers,
            insurance_district=districts[9],
            dispute_district=districts[10],
            total=EVENTS,
        )
        run.mark("workers registered, policy bought")
        try:
            await produce_with_kills(p, offsets, stream, run)
            run.mark("stream produced")
            await pay_the_covered_claims(
                p, harness.key("demo-insurer"), [a for a in stream.awards if a.order.covered]
            )
            run.mark("covered claims paid")
            await settled(p, offsets, WITH_DATABASE, within=240)
            run.mark("services settled")
            await each_killed_mid_stream_and_back_once(p, offsets, run)
            deductible = professional_liability_deductible()
            await credit_holds_what_the_stream_implies(p, stream, deductible)
            await workers_and_orders_hold_the_colours_and_levels(p, stream)
            await complaints_holds_the_cases_and_orders(p, stream)
            await insurance_holds_the_covers_and_claims(p, stream, deductible)
            run.mark("services asserted")
            # The regulator: its group caught up (every record handled and committed), then its figures.
            await p.services["regulator"].wait_serving(timeout=60)
            await settled(p, offsets, ["regulator"], within=300)
            run.mark("regulator settled")
            await until(lambda: figures_apart(p.bootstrap, stream), within=60, interval=3)
            run.mark("regulator figures")
        finally:
            print(run.report(stream))  # pytest -s shows it


async def each_killed_mid_stream_and_back_once(p: Platform, offsets: Offsets, run: Run) -> None:
    """Each victim's group was behind when it died; each service was restarted once (and serves: the
    regulator once it has its partitions back); no event went to a dead-letter topic."""
    for name in WITH_DATABASE:
        await p.services[name].wait_serving(timeout=30)
    restarts = {name: svc.supervision() for name, svc in p.services.items()}
    assert {n: s.restarts if s else None for n, s in restarts.items()} == dict.fromkeys(SERVICES, 1)
    assert sorted(run.lag_at_kill) == sorted(SERVICES)
    assert all(lag > 0 for lag in run.lag_at_kill.values()), run.lag_at_kill
    dead_letters = {name: await offsets.records(dlq_topic(name)) for name in WITH_DATABASE}
    assert dead_letters == dict.fromkeys(WITH_DATABASE, 0)


async def credit_holds_what_the_stream_implies(p: Platform, stream: CrossingStream, deductible: int) -> None:
    """Entry for entry: each source event's (worker, kind, magnitude), once; the at-fault payouts,
    once each; the cases filed against the company; a score for each worker with a scored fact."""
    dsn, on_ledger = p.dsns["credit"], stream.workers_on_the_ledger()
    found = await rows(
        dsn,
        "SELECT event_id, worker_id, kind, magnitude FROM ledger_entries WHERE worker_id = ANY($1::text[])",
        on_ledger,
    )
    sent = {e.event_id for e in stream.ledger}
    mine = [
        (r["event_id"], r["worker_id"], r["kind"], r["magnitude"]) for r in found if r["event_id"] in sent
    ]
    want = [(e.event_id, e.worker_id, e.kind, e.magnitude) for e in stream.ledger]
    kinds = Counter(k for _, _, k, _ in mine)
    assert kinds == Counter(e.kind for e in stream.ledger)
    assert sorted(mine) == sorted(want)
    paid = sorted((r["worker_id"], r["kind"], r["magnitude"]) for r in found if r["event_id"] not in sent)
    payouts = [a for a in stream.awards if a.order.covered and a.worker_at_fault]
    assert paid == sorted(
        (a.order.worker_id, "claim_paid_at_fault", a.compensation_fen - deductible) for a in payouts
    )
    assert len({r["event_id"] for r in found}) == len(found)

    cases = await rows(p.dsns["complaints"], "SELECT case_id::text FROM cases")
    graded = await rows(dsn, "SELECT case_id FROM company_complaints WHERE company_id = $1", DEMO_COMPANY_ID)
    assert sorted(r["case_id"] for r in graded) == sorted(r["case_id"] for r in cases)
    assert len(graded) == len(stream.disputes)

    scores = await rows(
        dsn, "SELECT worker_id FROM worker_scores WHERE worker_id = ANY($1::text[])", on_ledger
    )
    assert {r["worker_id"] for r in scores} == stream.scored() | {a.order.worker_id for a in payouts}

    profiles = await rows(
        dsn,
        "SELECT worker_id, company_id, card_colour FROM worker_profiles WHERE worker_id = ANY($1::text[])",
        [w.id for w in stream.card_workers] + list(stream.day_levels_and_colours()),
    )
    want_profiles = {w.id: (DEMO_COMPANY_ID, w.colour.upper()) for w in stream.card_workers}
    want_profiles |= {
        w: (DEMO_COMPANY_ID, c.upper()) for w, (_, c) in stream.day_levels_and_colours().items()
    }
    assert {r["worker_id"]: (r["company_id"], r["card_colour"]) for r in profiles} == want_profiles


async def workers_and_orders_hold_the_colours_and_levels(p: Platform, stream: CrossingStream) -> None:
    """The card status the inputs give each known worker; matching's copy of it; matching's copy of
    each level, whether produced or credit's own."""
    cards = await rows(
        p.dsns["workers"],
        "SELECT worker_id::text, colour, credit_level, suspended, insured_until FROM card_status"
        " WHERE worker_id = ANY($1::uuid[])",
        [w.id for w in stream.card_workers],
    )
    got = {
        r["worker_id"]: (r["colour"], r["credit_level"], r["suspended"], r["insured_until"]) for r in cards
    }
    credit_levels = {
        r["worker_id"]: r["level"]
        for r in await rows(p.dsns["credit"], "SELECT worker_id, level FROM worker_scores")
    }
    want = {
        w.id: (
            w.colour,
            credit_levels.get(w.id) if w.scored_by_credit else w.level,
            w.suspended,
            w.insured_until,
        )
        for w in stream.card_workers
    }
    assert got == want

    everyone = stream.workers_on_the_ledger()
    eligibility = await rows(
        p.dsns["orders"],
        "SELECT worker_id, card_colour, credit_level FROM worker_eligibility"
        " WHERE worker_id = ANY($1::text[])",
        everyone,
    )
    held = {r["worker_id"]: (r["card_colour"], r["credit_level"]) for r in eligibility}
    colours = {w.id: w.colour for w in stream.card_workers} | {
        w: c for w, (_, c) in stream.day_levels_and_colours().items()
    }
    levels = {w: credit_levels.get(w) for w in everyone}
    levels |= {w.id: w.level for w in stream.card_workers if not w.scored_by_credit}
    levels |= {w: level for w, (level, _) in stream.day_levels_and_colours().items()}
    assert {w: c for w, (c, _) in held.items() if w in colours} == colours
    assert {w: held.get(w, ("", None))[1] for w in everyone} == levels


async def complaints_holds_the_cases_and_orders(p: Platform, stream: CrossingStream) -> None:
    cases = await rows(
        p.dsns["complaints"], "SELECT kind, category, order_id, district_code, company_id FROM cases"
    )
    got = Counter((r["kind"], r["category"], r["order_id"], r["district_code"]) for r in cases)
    assert got == Counter((d.kind, d.category, d.order_id, d.district) for d in stream.disputes)
    assert {r["company_id"] for r in cases} == {DEMO_COMPANY_ID}
    known = await rows(p.dsns["complaints"], "SELECT order_id FROM known_orders")
    assert {r["order_id"] for r in known} == stream.known_orders


async def insurance_holds_the_covers_and_claims(p: Platform, stream: CrossingStream, deductible: int) -> None:
    dsn = p.dsns["insurance"]
    covers = await rows(
        dsn,
        "SELECT order_id, cover_policy_id IS NOT NULL AS covered, check_in IS NOT NULL AS checked_in"
        " FROM insured_orders",
    )
    got = {r["order_id"]: r["covered"] for r in covers}
    want = {o.id: o.covered for o in stream.insured_orders}
    want |= {o.id: False for d in stream.days for o in d.orders if o.assigned}
    assert got == want
    assert all(r["checked_in"] for r in covers if r["order_id"] in {o.id for o in stream.insured_orders})

    claims = await rows(
        dsn, "SELECT case_id, order_id, state, claimed_fen, insurer, worker_at_fault, payable_fen FROM claims"
    )
    found = {
        r["case_id"]: (
            r["order_id"],
            r["state"],
            r["claimed_fen"],
            r["insurer"],
            r["worker_at_fault"],
            r["payable_fen"],
        )
        for r in claims
    }
    assert found == {
        a.case_id: (
            a.order.id,
            "paid" if a.order.covered else "denied",
            a.compensation_fen,
            "demo-insurer" if a.order.covered else "",
            a.worker_at_fault,
            a.compensation_fen - deductible if a.order.covered else 0,
        )
        for a in stream.awards
    }


def _fields(figures: rpb.DistrictDay | None) -> dict[str, str]:
    if figures is None:
        return {}
    return {f.name: str(getattr(figures, f.name)) for f in figures.DESCRIPTOR.fields}


async def figures_apart(bootstrap: str, stream: CrossingStream) -> dict[str, object]:
    """Where the regulator's figures differ from what the inputs imply (nothing: they agree). The
    generated days' figures are as test_regulator_indicators computes them; on the other days, what
    the services' own events add (insurance's covers, complaints' cases), in plain counts."""
    day_districts = [d for day in stream.days for d in day.districts]
    figures = await indicators(
        bootstrap, {*day_districts, stream.insurance_district, stream.dispute_district}
    )
    day = stream.day.isoformat()
    apart: dict[str, object] = {}
    for generated in stream.days:
        for district in generated.districts:
            got, want = _fields(figures.get((district, day))), _fields(expected(generated, district))
            if got != want:
                apart[f"{district}/{day}"] = {
                    k: (got or {}).get(k) for k, v in (want or {}).items() if (got or {}).get(k) != v
                }
            others = flows(orders_uninsured=generated.assigned(district))
            if (summed_up := summed(figures, district, skip=day)) != others:
                apart[f"{district}/other days"] = (summed_up, others)
    orders = stream.insured_orders
    covered = sum(1 for o in orders if o.covered)
    insured = flows(
        orders_placed=len(orders),
        orders_dispatched=len(orders),
        orders_insured=covered,
        orders_uninsured=len(orders) - covered,
        elderly_care_orders=len(orders),
    )
    if (got_insured := summed(figures, stream.insurance_district)) != insured:
        apart[f"{stream.insurance_district}/all days"] = (got_insured, insured)
    fee_disputes = sum(1 for d in stream.disputes if d.district == stream.dispute_district)
    if (got_disputes := summed(figures, stream.dispute_district)) != flows(complaints_filed=fee_disputes):
        apart[f"{stream.dispute_district}/all days"] = (got_disputes, flows(complaints_filed=fee_disputes))
    return apart
