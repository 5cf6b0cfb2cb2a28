"""Benchmark: a realistic Beijing day, compressed (issue 14, Benchmarks 1 and 2).

**The day.** ``bench/day_plan.py`` generates one day of orders (Asia/Shanghai), seeded: created on
a diurnal curve with morning and evening peaks, across the 16 districts by population and the
catalogue's service types, each a chain of real gRPC calls: CreateOrder → MatchOrder → OfferOrder
(to the worker the plan chose, who must be eligible) → AcceptOffer → CheckIn with the worker's real
signed card token (the workers service signs with the run's card key, orders verifies with its
public half, as tests/integration/conftest.py sets them up) → CheckOut → RateOrder by each side;
3 % cancelled, 1 % no-shows; about 1.5 % of completed orders complained of (FileComplaint),
answered by the worker's company (RespondToCase, DecideCase), resolved by the company (ResolveCase)
or in mediation (ClaimNextCase + RecordAgreement + RecordPerformance by a consumer-association
mediator); compensation becomes insurance's automatic claim, which the insurer adjudicates and
pays. The volume is ``day_orders`` (default 3,000): **about 1/10 of a plausible city volume** (a
Beijing day is tens of thousands of platform orders, ARCHITECTURE.md), chosen so that the set-up
and the 10× replay fit in a few minutes on 2 cores; the rate that the system sustains is found by
the ramp, not by the volume.

**Before the measured part (untimed).** Five service processes (orders, workers, credit,
complaints, insurance; fresh databases, topics recreated empty; the regulator is not run: faust
on the same two cores would dominate the figures, and its indicators are reconciled by the kill
test). Companies (with company keys of their own, added to the run's keys) and the workers the
plan needs, each made GREEN through the APIs as the integration tests make one (background
check, health check, a 三级 certificate, availability, IssueCard) and insured by its company's
group policy (CreatePolicy, package-standard, covering the service types of its trade), whose
WorkerCoverageChanged turns the card GREEN. Every worker must be GREEN and known to matching
before anything is timed. The steps of the replayed chains that fall before the window are made
too (as fast as they go), so that the window starts with the orders in flight that it would have.

**Replay.** The day's busiest ``window_minutes`` (on a quarter-hour grid, by steps) replayed open
loop on schedule at 10× (a step due at day time t is sent at start + (t − window start) / 10; a
chain's steps wait for the one before). Each order's scheduled start is its day time on a future
date (one date per pass, ``PASS_DAYS`` apart, so that passes never book the same windows); no-show
orders are immediate (scheduled now) so that the no-show can be reported. Steps after the window
are not made. Beside the 10× replay, ``probes`` extra workers with a severe complaint each (set up
by bench/credit_propagation.py's ``_setup``) are resolved at an even pace and watched with that
module's ``_resolve``/``_watch``: the outcome → level D (GetWorkerCredit) and → card RED
(VerifyCard) latencies of issue 9, under the day's load.

**Ramp.** Further passes (fresh chains of another seeded day, each its own future date) at
compressions 20×, 40×, … (``ramp``), each over ``min(window, ramp_seconds × compression)`` of day
time, stopping at the first that is not sustainable. **Sustainable** means: no call failed
other than as the plan expects (its preparation included); every service's gRPC p99 ≤ 1 s; the
driver sent on time (send lateness p99 ≤ 1 s); and within ``DRAIN_S`` (15 s) of the last call
every outbox is empty and every consumer group has caught up (lag 0), so the backlog did not grow
without bound. Every loop is bounded: a pass's calls by its span + 120 s, its preparation by
``PREP_TIMEOUT_S``, each call by ``CALL_TIMEOUT_S`` and ``RETRIES``.

**Baseline (same run).** Before each pass (after its preparation, once the services have handled
its events), the same pass (its preparation untimed, then its window on the same schedule, at the
same compression) is made by a second driver of its own against ``bench/bare_day_server.py``: one
grpc.aio process answering every method of the five services with an empty reply. Same call mix,
same offered rate, same client: the ceiling of client + gRPC transport on this machine. Each pass's
calls/s, p50 and p99 (all services, and for the 10× pass each service's) are figures with that
baseline and the ratio. The bare driver keeps its own progress, which is not reconciled.

**Reported**, per pass: calls/s, p50 and p99 (all services, each service, each method), send
lateness, failures by step, code and message; per service, sampled every ``SAMPLE_EVERY_S``: the
outbox backlog, its consumer group's lag, and events published (its topic's end offsets) and
consumed (its group's committed offsets) per second; the time to drain; CPU seconds per process.

**Reconciliation.** After the last pass, once drained: orders by state = what the driver's calls
left; credit's OrderCompleted and consumer RatingPosted ledger entries = completed orders and
consumer ratings; complaints' cases (probes apart) = complaints filed, and resolved = outcomes
recorded; insurance's automatic claims = outcomes with compensation on an order, paid = PayClaim
calls that succeeded. A mismatch is in ``reconciliation.mismatches`` and fails the "nothing
lost" figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.timestamp_pb2 import Timestamp

from bench import credit_propagation as prop
from bench.common import (
    BenchEnv,
    CpuWindow,
    Target,
    cpu_ms_per_unit,
    figure,
    percentile_ms,
    process_cpu_s,
    reset_topic,
    running_module,
)
from bench.common import running_service as start_service
from bench.day_plan import DAY, Chain, Step, WorkerPool, busiest_window, plan_day, split
from deploy.local.services import DevKey, card_jwks, new_dev_card_keys
from deploy.local.stack import scratch_database
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.complaints.v1 import complaints_pb2_grpc
from jiazheng.credit.v1 import credit_pb2_grpc
from jiazheng.insurance.v1 import claims_pb2, claims_pb2_grpc, policies_pb2, policies_pb2_grpc
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.orders.v1 import orders_pb2_grpc
from jiazheng.workers.v1 import workers_pb2 as w
from jiazheng.workers.v1 import workers_pb2_grpc
from libs.common.beijing import BEIJING
from libs.common.kafka import events_topic
from services.insurance.service_layer.claims import automatic_claim_id
from tests.integration.clients import auth
from tests.integration.workers_client import social_credit_code

SERVICES = ("orders", "workers", "credit", "complaints", "insurance")
# The topics each service's consumer group reads (services/*/app.py, SOURCES).
CONSUMES = {
    "orders": ("workers", "credit"),
    "workers": ("credit", "insurance", "complaints"),
    "credit": ("orders", "complaints", "workers", "insurance"),
    "complaints": ("orders", "insurance"),
    "insurance": ("orders", "complaints"),
}
TOPICS = [events_topic(s) for s in SERVICES]
COMPANIES = 6
POLICY_MAX = 500  # insured workers per CreatePolicy
PREP_CONCURRENCY = 12
PREP_TIMEOUT_S = 600.0  # a pass's steps before its window, made as fast as they go
# Days between two passes' dates: a pass's live-in and maternity orders book their worker for 26
# days, and some of its orders start the next morning; no booking of a pass is in a later one's way
# (the orders service books at most 366 days ahead).
PASS_DAYS = 32
ID_NUMBERS_FROM = 1_000_000  # the probes' workers (credit_propagation._setup) have 0, 1, ...
CALL_TIMEOUT_S = 10.0
RETRIES, RETRY_PAUSE_S = 20, 0.5  # a step waiting for an event another service has not seen yet
P99_LIMIT_MS, LATENESS_LIMIT_S, DRAIN_S = 1000.0, 1.0, 15.0
SAMPLE_EVERY_S = 1.0
TRADE_TYPES: dict[Any, tuple[Any, ...]] = {
    w.TRADE_HOUSEKEEPER: (1, 2, 7, 8),
    w.TRADE_FAMILY_CARER: (5, 6, 9),
    w.TRADE_MATERNITY_NURSE: (3, 4),
}
BORN = date(1980, 5, 1)
ORDER_COMPLETED = "jiazheng.orders.events.v1.OrderCompleted"
RATING_POSTED = "jiazheng.orders.events.v1.RatingPosted"


# -- clients and keys ------------------------------------------------------------------------------


def _company_keys(count: int) -> list[DevKey]:
    """Company principals of the run, each acting for one company id (given to CreateCompany)."""
    return [
        DevKey(f"jzk_bench_{uuid.uuid4().hex}", f"day-company-{n}", "company", str(uuid.uuid4()))
        for n in range(count)
    ]


@dataclass
class Stubs:
    channels: dict[str, grpc.aio.Channel]
    env: BenchEnv
    companies: list[DevKey]

    def md(self, principal: str) -> list[tuple[str, str]]:
        return auth(self.env.key(principal))

    def company_md(self, n: int) -> list[tuple[str, str]]:
        return auth(self.companies[n].key)

    def stub(self, service: str, method: str) -> Any:
        ch = self.channels[service]
        if service == "orders":
            return orders_pb2_grpc.OrderServiceStub(ch)
        if service == "workers":
            cards = w.DESCRIPTOR.services_by_name["CardService"].methods_by_name
            return (
                workers_pb2_grpc.CardServiceStub if method in cards else workers_pb2_grpc.WorkerServiceStub
            )(ch)
        if service == "complaints":
            mediation = c.DESCRIPTOR.services_by_name["MediationService"].methods_by_name
            return (
                complaints_pb2_grpc.MediationServiceStub
                if method in mediation
                else complaints_pb2_grpc.ComplaintServiceStub
            )(ch)
        if service == "insurance":
            return (
                claims_pb2_grpc.ClaimServiceStub
                if method.endswith(("Claim", "Claims"))
                else policies_pb2_grpc.PolicyServiceStub
            )(ch)
        return credit_pb2_grpc.CreditServiceStub(ch)


@dataclass
class Stats:
    """Every call of a pass: latency by service and method, failures by method and code."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    by_method: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    lateness: list[float] = field(default_factory=list)
    skipped: int = 0


class Caller:
    """Times each call into the current pass's ``Stats``."""

    def __init__(self, stubs: Stubs) -> None:
        self.stubs = stubs
        self.stats = Stats()

    async def __call__(self, service: str, method: str, request: Any, md: list[tuple[str, str]]) -> Any:
        rpc = getattr(self.stubs.stub(service, method), method)
        t0 = time.perf_counter()
        try:
            reply = await rpc(request, metadata=md, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError:
            self.stats.latencies[service].append(time.perf_counter() - t0)
            raise
        elapsed = time.perf_counter() - t0
        self.stats.latencies[service].append(elapsed)
        self.stats.by_method[f"{service}.{method}"].append(elapsed)
        return reply

    async def retried(
        self, service: str, method: str, request: Any, md: list[tuple[str, str]], codes: tuple[Any, ...]
    ) -> Any:
        """The call again while it fails with one of ``codes`` (a consumer not caught up yet), bounded."""
        for attempt in range(RETRIES):
            try:
                return await self(service, method, request, md)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in codes or attempt == RETRIES - 1:
                    raise
                await asyncio.sleep(RETRY_PAUSE_S)
        raise AssertionError("unreachable")


# -- preparation: companies, workers, policies ------------------------------------------------------


@dataclass
class Worker:
    id: str
    company: int
    token: str


async def _bounded(items: Sequence[Any], make: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    gate = asyncio.Semaphore(PREP_CONCURRENCY)

    async def one(item: Any) -> Any:
        async with gate:
            return await make(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


async def _companies(call: Caller, stubs: Stubs) -> None:
    for key in stubs.companies:
        company = w.Company(
            social_credit_code=social_credit_code(),
            display_name="北京好家政有限公司",
            premises_square_metres=120,
            outlets=[w.Outlet(display_name="网点", district_code="110105")],
            employment_model=w.EMPLOYMENT_MODEL_EMPLOYEE,
        )
        request = w.CreateCompanyRequest(request_id=str(uuid.uuid4()), company=company, company_id=key.tenant)
        await call("workers", "CreateCompany", request, stubs.md("operator"))


async def _worker(call: Caller, stubs: Stubs, index: int, trade: Any, district: str) -> Worker:
    company = index % len(stubs.companies)
    op, today = stubs.md("operator"), date.today()
    request = w.CreateWorkerRequest(
        request_id=str(uuid.uuid4()),
        parent=f"companies/{stubs.companies[company].tenant}",
        id_number=prop._id_number(ID_NUMBERS_FROM + index),
        full_name="王芳",
        mobile="13912345678",
        photo_ref="photos/w.jpg",
        service_districts=[district],
        trades=[trade],
    )
    name = (await call("workers", "CreateWorker", request, op)).worker.name
    steps: list[tuple[str, Any]] = [
        (
            "RecordBackgroundCheck",
            w.RecordBackgroundCheckRequest(
                worker=name, identity_genuine=True, check_date=(today - timedelta(days=30)).isoformat()
            ),
        ),
        (
            "RecordHealthCheck",
            w.RecordHealthCheckRequest(
                worker=name,
                tier=w.HEALTH_TIER_MATERNAL_INFANT,  # the strictest: satisfies every service type
                issue_date=(today - timedelta(days=10)).isoformat(),
                hospital="北京协和医院",
                certificate_number="TJ-1",
            ),
        ),
        (
            "RecordSkillCertificate",
            w.RecordSkillCertificateRequest(
                worker=name,
                trade=trade,
                level=w.SKILL_LEVEL_3,
                certificate_number="ZS-3",
                issue_date=(today - timedelta(days=5)).isoformat(),
            ),
        ),
        (
            "SetAvailability",
            w.SetAvailabilityRequest(
                worker=name,
                weekly_slots=[
                    w.WeeklySlot(day_of_week=d, start_minute=0, end_minute=1440) for d in range(1, 8)
                ],
            ),
        ),
    ]
    for method, step in steps:
        await call("workers", method, step, op)
    card = (await call("workers", "IssueCard", w.IssueCardRequest(worker=name), op)).card
    return Worker(name.removeprefix("workers/"), company, card.token)


async def _policies(
    call: Caller, stubs: Stubs, workers: dict[int, Worker], trades: list[tuple[int, str]]
) -> None:
    """Each company's group policy for its new workers, in policies of at most ``POLICY_MAX``."""
    today = datetime.now(BEIJING).date()
    for company in range(len(stubs.companies)):
        insured = [
            policies_pb2.InsuredWorkerInput(
                worker_id=wk.id,
                birth_date=(date(1970, 1, 1) + timedelta(days=i // 1000)).isoformat(),
                service_types=TRADE_TYPES[trades[i][0]],
                job_class=3,  # class 3 is what cleaning and live-in work need
            )
            for i, wk in sorted(workers.items())
            if wk.company == company
        ]
        for n in range(0, len(insured), POLICY_MAX):
            request = policies_pb2.CreatePolicyRequest(
                request_id=str(uuid.uuid4()),
                product="products/package-standard",
                start_date=today.isoformat(),
                workers=insured[n : n + POLICY_MAX],
            )
            await call("insurance", "CreatePolicy", request, stubs.company_md(company))


async def _ready_for_matching(orders_dsn: str, ids: Sequence[str], timeout_s: float = 300) -> None:
    """Every worker known to matching with a GREEN card and a credit level (from the events)."""
    sql = (
        "SELECT count(*) FROM worker_eligibility WHERE worker_id = ANY($1::text[])"
        " AND card_colour = 'green' AND credit_level IS NOT NULL"
    )
    conn = await asyncpg.connect(orders_dsn)
    try:
        deadline = time.perf_counter() + timeout_s
        while (ready := await conn.fetchval(sql, list(ids))) < len(ids):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"only {ready} of {len(ids)} workers GREEN and levelled in matching")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


# -- the driver --------------------------------------------------------------------------------------


@dataclass
class Progress:
    """What the driver's calls did to one chain."""

    order: str = ""
    offer: str = ""
    state: str = ""  # the order's state after the last call that succeeded
    case: str = ""
    case_resolved: bool = False
    claim_expected: bool = False
    paid: bool = False
    broken: bool = False
    consumer_rated: bool = False


@dataclass
class Totals:
    """What the driver did, over every pass: the reconciliation's expectations."""

    chains: dict[int, Progress] = field(default_factory=dict)

    def count(self, what: Callable[[Progress], bool]) -> int:
        return sum(1 for p in self.chains.values() if what(p))


class Driver:
    """Makes a plan's steps through the APIs."""

    def __init__(self, call: Caller, stubs: Stubs, workers: dict[int, Worker], totals: Totals) -> None:
        self.call, self.stubs, self.workers, self.totals = call, stubs, workers, totals
        self.chains: dict[int, Chain] = {}
        self.by_case: dict[str, int] = {}
        self.day: date = date.today()
        self.platform = stubs.md("demo-platform")
        self._mediators = [stubs.md("consumer-mediator"), stubs.md("consumer-mediator-2")]
        self._turn = 0

    def plan(self, chains: Sequence[Chain], day: date) -> None:
        self.day = day
        for ch in chains:
            self.chains[ch.index] = ch
            self.totals.chains.setdefault(ch.index, Progress())

    async def step(self, step: Step) -> None:
        p = self.totals.chains[step.chain]
        if p.broken:
            self.call.stats.skipped += 1
            return
        try:
            await getattr(self, f"_{step.name}")(self.chains[step.chain], p)
        except grpc.aio.AioRpcError as exc:
            p.broken = True
            self.call.stats.errors[f"{step.name}: {exc.code().name}: {(exc.details() or '')[:140]}"] += 1

    def _scheduled(self, ch: Chain) -> Timestamp:
        stamp = Timestamp()
        if ch.immediate:  # reported as a no-show after the start: the start is now
            stamp.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
            return stamp
        days, seconds = divmod(ch.start, DAY)
        midnight = datetime(self.day.year, self.day.month, self.day.day, tzinfo=BEIJING)
        stamp.FromDatetime((midnight + timedelta(days=days, seconds=seconds)).astimezone(UTC))
        return stamp

    async def _create(self, ch: Chain, p: Progress) -> None:
        order = o.Order(
            service_type=ch.kind.service_type,  # type: ignore[arg-type]
            district_code=ch.district,
            consumer_ref=f"c-{ch.index}",
            scheduled_start_time=self._scheduled(ch),
            duration_hours=ch.kind.hours,
            contact=o.Contact(full_name="李女士", mobile="13800001234"),
            address="北京市朝阳区望京西路8号",
        )
        request = o.CreateOrderRequest(request_id=str(uuid.uuid4()), order=order)
        p.order = (await self.call("orders", "CreateOrder", request, self.platform)).order.name
        p.state = "created"

    async def _match(self, ch: Chain, p: Progress) -> None:
        await self.call(
            "orders", "MatchOrder", o.MatchOrderRequest(name=p.order, max_candidates=5), self.platform
        )

    async def _offer(self, ch: Chain, p: Progress) -> None:
        request = o.OfferOrderRequest(name=p.order, worker_id=self.workers[ch.worker].id)
        p.offer = (await self.call("orders", "OfferOrder", request, self.platform)).offer.name
        p.state = "offered"

    async def _accept(self, ch: Chain, p: Progress) -> None:
        await self.call("orders", "AcceptOffer", o.AcceptOfferRequest(name=p.offer), self.platform)
        p.state = "assigned"

    async def _check_in(self, ch: Chain, p: Progress) -> None:
        request = o.CheckInRequest(name=p.order, card_token=self.workers[ch.worker].token)
        await self.call("orders", "CheckIn", request, self.platform)
        p.state = "checked_in"

    async def _check_out(self, ch: Chain, p: Progress) -> None:
        await self.call("orders", "CheckOut", o.CheckOutRequest(name=p.order), self.platform)
        p.state = "completed"

    async def _rate(self, p: Progress, rater: int, stars: int) -> None:
        request = o.RateOrderRequest(name=p.order, rater=rater, stars=stars)  # type: ignore[arg-type]
        await self.call("orders", "RateOrder", request, self.platform)

    async def _rate_consumer(self, ch: Chain, p: Progress) -> None:
        await self._rate(p, o.PARTY_CONSUMER, ch.consumer_stars)
        p.consumer_rated = True

    async def _rate_worker(self, ch: Chain, p: Progress) -> None:
        await self._rate(p, o.PARTY_WORKER, ch.worker_stars)

    async def _cancel(self, ch: Chain, p: Progress) -> None:
        by = o.PARTY_WORKER if ch.cancelled_by_worker else o.PARTY_CONSUMER
        request = o.CancelOrderRequest(name=p.order, cancelled_by=by, reason="计划有变")
        await self.call("orders", "CancelOrder", request, self.platform)
        p.state = "cancelled"

    async def _no_show(self, ch: Chain, p: Progress) -> None:
        by = o.PARTY_WORKER if ch.no_show_by_worker else o.PARTY_CONSUMER
        await self.call(
            "orders", "ReportNoShow", o.ReportNoShowRequest(name=p.order, at_fault=by), self.platform
        )
        p.state = "no_show"

    async def _file(self, ch: Chain, p: Progress) -> None:
        assert ch.complaint is not None
        worker = self.workers[ch.worker]
        request = c.FileComplaintRequest(
            request_id=str(uuid.uuid4()),
            order=p.order,
            respondent=c.PARTY_KIND_WORKER if ch.complaint.against_worker else c.PARTY_KIND_COMPANY,
            worker=f"workers/{worker.id}" if ch.complaint.against_worker else "",
            company=f"companies/{self.stubs.companies[worker.company].tenant}",
            category=c.CATEGORY_QUALITY if ch.complaint.severity != c.SEVERITY_SEVERE else c.CATEGORY_DAMAGE,
            severity=ch.complaint.severity,  # type: ignore[arg-type]
            description="服务质量问题",
        )
        # NOT_FOUND until complaints has consumed the order's events.
        reply = await self.call.retried(
            "complaints", "FileComplaint", request, self.platform, (grpc.StatusCode.NOT_FOUND,)
        )
        p.case = reply.complaint_case.name
        self.by_case[p.case] = ch.index

    def _company(self, ch: Chain) -> list[tuple[str, str]]:
        return self.stubs.company_md(self.workers[ch.worker].company)

    async def _respond(self, ch: Chain, p: Progress) -> None:
        await self.call("complaints", "RespondToCase", c.RespondToCaseRequest(name=p.case), self._company(ch))

    async def _decide(self, ch: Chain, p: Progress) -> None:
        assert ch.complaint is not None
        request = c.DecideCaseRequest(name=p.case, accept=not ch.complaint.mediated)
        await self.call("complaints", "DecideCase", request, self._company(ch))

    def _outcome(self, ch: Chain) -> c.Outcome:
        assert ch.complaint is not None
        k = ch.complaint
        return c.Outcome(result=k.result, at_fault=k.at_fault, compensation_fen=k.compensation_fen)  # type: ignore[arg-type]

    def _resolved(self, ch: Chain, p: Progress) -> None:
        assert ch.complaint is not None
        p.case_resolved = True
        p.claim_expected = ch.complaint.compensation_fen > 0

    async def _resolve(self, ch: Chain, p: Progress) -> None:
        request = c.ResolveCaseRequest(name=p.case, outcome=self._outcome(ch))
        await self.call("complaints", "ResolveCase", request, self._company(ch))
        self._resolved(ch, p)

    async def _mediate(self, ch: Chain, p: Progress) -> None:
        """A mediator claims the next case of the queue (maybe another chain's), records its
        agreement with the outcome that chain's plan gives (the company refunds part of the fee
        today) and, the refund made, its performance: the case is resolved (RecordAgreement alone
        leaves it in ``agreement`` until the follow-up, and no claim is made before)."""
        self._turn += 1
        mediator = self._mediators[self._turn % 2]
        claimed = (
            await self.call("complaints", "ClaimNextCase", c.ClaimNextCaseRequest(), mediator)
        ).complaint_case
        other = self.chains[self.by_case[claimed.name]]
        undertaking = c.Undertaking(
            party=c.PARTY_KIND_COMPANY,
            action="退还部分服务费",
            due_date=datetime.now(BEIJING).date().isoformat(),
        )
        agreement = c.Agreement(
            facts="双方确认服务存在问题", responsibility="按调解结果承担", undertakings=[undertaking]
        )
        request = c.RecordAgreementRequest(
            name=claimed.name, agreement=agreement, outcome=self._outcome(other)
        )
        await self.call("complaints", "RecordAgreement", request, mediator)
        performed = c.RecordPerformanceRequest(name=claimed.name, performed=True)
        await self.call("complaints", "RecordPerformance", performed, mediator)
        self._resolved(other, self.totals.chains[other.index])

    def _claim(self, p: Progress) -> str:
        return f"claims/{automatic_claim_id(p.case.removeprefix('cases/'))}"

    async def _adjudicate(self, ch: Chain, p: Progress) -> None:
        assert ch.complaint is not None
        if not p.case_resolved:  # mediated: the mediator may have taken another chain's case first
            self.call.stats.expected["adjudicate before the outcome"] += 1
            return
        request = claims_pb2.AdjudicateClaimRequest(
            name=self._claim(p), request_id=str(uuid.uuid4()), assessed_fen=ch.complaint.compensation_fen
        )
        codes = (grpc.StatusCode.NOT_FOUND,)  # until insurance has consumed the outcome
        await self.call.retried("insurance", "AdjudicateClaim", request, self.stubs.md("demo-insurer"), codes)

    async def _pay(self, ch: Chain, p: Progress) -> None:
        if not p.case_resolved:
            return
        request = claims_pb2.PayClaimRequest(name=self._claim(p), request_id=str(uuid.uuid4()))
        try:
            await self.call("insurance", "PayClaim", request, self.stubs.md("demo-insurer"))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:  # denied: nothing to pay
                raise
            self.call.stats.expected["claim not payable"] += 1
            return
        p.paid = True


# -- sampling backlog and lag ---------------------------------------------------------------------


class Sampler:
    """Each service's outbox backlog and consumer group's lag, every ``SAMPLE_EVERY_S``."""

    def __init__(self, bootstrap: str, dsns: dict[str, str]) -> None:
        self.bootstrap, self.dsns = bootstrap, dsns
        self.series: list[dict[str, Any]] = []

    async def __aenter__(self) -> Sampler:
        self.conns = {n: await asyncpg.connect(d) for n, d in self.dsns.items()}
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self.admin.start()
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self.consumer.start()
        self.partitions = [
            TopicPartition(t, p)
            for t in TOPICS
            for p in sorted(self.consumer.partitions_for_topic(t) or {0, 1, 2})
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()
        for conn in self.conns.values():
            await conn.close()

    async def sample(self) -> dict[str, Any]:
        backlog = {
            n: int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
            for n, conn in self.conns.items()
        }
        ends = await self.consumer.end_offsets(self.partitions)
        produced = {s: sum(end for tp, end in ends.items() if tp.topic == events_topic(s)) for s in SERVICES}
        lag, consumed = {}, {}
        for service, sources in CONSUMES.items():
            committed = await self.admin.list_consumer_group_offsets(f"jiazheng-{service}")
            topics = {events_topic(s) for s in sources}
            done = {
                tp: committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
                for tp in ends
                if tp.topic in topics
            }
            lag[service] = sum(ends[tp] - offset for tp, offset in done.items())
            consumed[service] = sum(done.values())
        return {"backlog": backlog, "lag": lag, "produced": produced, "consumed": consumed}

    async def run(self, t0: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            s = await self.sample()
            self.series.append({"t_s": round(time.perf_counter() - t0, 1), **s})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)

    async def drained(self, timeout_s: float) -> float | None:
        """Seconds until every outbox is empty and every group caught up; None past ``timeout_s``."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout_s:
            s = await self.sample()
            if not any(s["backlog"].values()) and not any(s["lag"].values()):
                return round(time.perf_counter() - t0, 2)
            await asyncio.sleep(0.25)
        return None


# -- passes -------------------------------------------------------------------------------------------


async def _in_order(driver: Driver, steps: Sequence[Step], concurrency: int) -> None:
    """The steps as fast as they go: chains side by side, each chain's steps in order; within
    ``PREP_TIMEOUT_S``."""
    by_chain: dict[int, list[Step]] = defaultdict(list)
    for s in steps:
        by_chain[s.chain].append(s)
    gate = asyncio.Semaphore(concurrency)

    async def chain(seq: list[Step]) -> None:
        async with gate:
            for s in seq:
                await driver.step(s)

    await asyncio.wait_for(asyncio.gather(*(chain(seq) for seq in by_chain.values())), PREP_TIMEOUT_S)


async def _on_schedule(
    driver: Driver, steps: Sequence[Step], w0: float, compression: float, start: float
) -> None:
    """Open loop: each step sent when due, after its chain's step before (bounded by a deadline)."""
    last: dict[int, asyncio.Task[None]] = {}
    stats = driver.call.stats

    async def one(s: Step, before: asyncio.Task[None] | None) -> None:
        due = start + (s.at - w0) / compression
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if before is not None:
            await asyncio.wait([before])
        stats.lateness.append(time.perf_counter() - due)
        await driver.step(s)

    for s in steps:
        last[s.chain] = asyncio.create_task(one(s, last.get(s.chain)))
    span = (steps[-1].at - w0) / compression if steps else 0.0
    if not last:
        return
    _, pending = await asyncio.wait(list(last.values()), timeout=span + 120)
    for task in pending:
        task.cancel()
    if pending:
        stats.errors["not finished within the pass's deadline"] += len(pending)


@dataclass
class Pass:
    name: str
    compression: float
    sim_span_s: float
    steps: list[Step]
    prep: list[Step]
    day: date
    chains: list[Chain]


def _calls(what: str, p: Pass, stats: Stats, cpu: dict[str, Any]) -> dict[str, Any]:
    """A pass's calls: rate, latencies (all, by service, by method), failures, send lateness."""
    wall = cpu.get("wall_s", 0.0) or 1.0
    per_service: dict[str, dict[str, Any]] = {}
    for service in SERVICES:
        lat = sorted(stats.latencies.get(service, []))
        per_service[service] = {
            "calls": len(lat),
            "calls_per_s": round(len(lat) / wall, 1),
            "p50_ms": percentile_ms(lat, 50),
            "p99_ms": percentile_ms(lat, 99),
        }
    methods = {
        m: {"calls": len(v), "p50_ms": percentile_ms(sorted(v), 50), "p99_ms": percentile_ms(sorted(v), 99)}
        for m, v in sorted(stats.by_method.items())
    }
    every = sorted(v for x in stats.latencies.values() for v in x)
    return {
        "what": f"{what}: {len(p.steps)} steps, {p.sim_span_s / 60:.0f} min of day time",
        "compression": p.compression,
        "steps": len(p.steps),
        "prepared_steps": len(p.prep),
        "calls": len(every),
        "calls_per_s": round(len(every) / wall, 1),
        "p50_ms": percentile_ms(every, 50),
        "p99_ms": percentile_ms(every, 99),
        "send_lateness_p99_ms": percentile_ms(sorted(stats.lateness), 99) if stats.lateness else 0.0,
        "errors": dict(stats.errors),
        "expected": dict(stats.expected),
        "skipped_steps": stats.skipped,
        "services": per_service,
        "methods": methods,
        "cpu": cpu,
    }


def _summary(
    p: Pass, stats: Stats, series: list[dict[str, Any]], drain_s: float | None, cpu: dict[str, Any]
) -> dict[str, Any]:
    """``_calls`` of the services' pass, with each service's backlog and lag, and whether it was
    sustainable."""
    summary = _calls(p.name, p, stats, cpu)
    span_s = (series[-1]["t_s"] - series[0]["t_s"]) if len(series) > 1 else 0.0
    for service, entry in summary["services"].items():
        published, consumed = (
            (series[-1][k][service] - series[0][k][service] if series else 0)
            for k in ("produced", "consumed")
        )
        entry.update(
            events_published=published,
            events_published_per_s=round(published / span_s, 1) if span_s else None,
            events_consumed=consumed,
            events_consumed_per_s=round(consumed / span_s, 1) if span_s else None,
            outbox_backlog_max=max((s["backlog"].get(service, 0) for s in series), default=0),
            outbox_backlog_end=series[-1]["backlog"].get(service, 0) if series else None,
            consumer_lag_max=max((s["lag"].get(service, 0) for s in series), default=0),
            consumer_lag_end=series[-1]["lag"].get(service, 0) if series else None,
        )
    p99s = [s["p99_ms"] for s in summary["services"].values() if s["calls"]]
    sustainable = (
        not stats.errors
        and all(v <= P99_LIMIT_MS for v in p99s)
        and summary["send_lateness_p99_ms"] <= LATENESS_LIMIT_S * 1000
        and drain_s is not None
    )
    return {**summary, "drained_after_s": drain_s, "sustainable": sustainable, "series": series}


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class Run:
    env: BenchEnv
    stubs: Stubs
    call: Caller
    dsns: dict[str, str]
    pids: dict[str, int]
    pool: WorkerPool
    workers: dict[int, Worker]
    totals: Totals
    driver: Driver
    bare: Driver  # the same steps against bench/bare_day_server.py, progress of its own
    bare_pid: int
    seed: int
    day_orders: int
    window_minutes: float
    passes: int = 0
    next_chain: int = 0

    def plan(self, name: str, compression: float, sim_span_s: float) -> Pass:
        self.passes += 1
        self.pool.new_pass()
        chains = plan_day(self.seed + self.passes, self.day_orders, self.pool, self.next_chain)
        self.next_chain += len(chains)
        w0, _ = busiest_window(chains, self.window_minutes)
        prep, steps = split(chains, (w0, w0 + sim_span_s))
        used = {s.chain for s in prep + steps}
        day = datetime.now(BEIJING).date() + timedelta(days=PASS_DAYS * self.passes)
        return Pass(
            name, compression, sim_span_s, steps, prep, day, [ch for ch in chains if ch.index in used]
        )

    async def prepare(self, p: Pass) -> dict[str, int]:
        """The workers the pass needs (untimed), then its steps before the window; what failed."""
        self.call.stats = Stats()
        new = sorted({ch.worker for ch in p.chains} - set(self.workers))
        made = await _bounded(new, lambda i: _worker(self.call, self.stubs, i, *self.pool.trades[i]))
        self.workers.update(zip(new, made, strict=True))
        await _policies(self.call, self.stubs, {i: self.workers[i] for i in new}, self.pool.trades)
        await _ready_for_matching(self.dsns["orders"], [self.workers[i].id for i in new])
        self.driver.plan(p.chains, p.day)
        await _in_order(self.driver, p.prep, PREP_CONCURRENCY)
        return dict(self.call.stats.errors)

    async def replay_bare(self, p: Pass) -> dict[str, Any]:
        """The pass's steps (its preparation untimed, then the window on the same schedule) against
        the bare server: the same driver's calls at the same offered rate, answered empty. It starts
        once the services have handled their own preparation's events."""
        d = self.bare
        d.plan(p.chains, p.day)
        d.call.stats = Stats()
        await _in_order(d, p.prep, PREP_CONCURRENCY)
        d.call.stats = stats = Stats()
        async with Sampler(self.env.endpoints.kafka_bootstrap, self.dsns) as sampler:
            await sampler.drained(DRAIN_S)  # the services' preparation handled: they are idle
            stop = asyncio.Event()
            start = time.perf_counter() + 0.5
            # Sampling the idle services as during their pass: the bench process does the same work.
            sampling = asyncio.create_task(sampler.run(start, stop))
            cpu = CpuWindow(self.bare_pid)
            cpu.start()
            await _on_schedule(d, p.steps, p.steps[0].at if p.steps else 0.0, p.compression, start)
            cpu.stop()
            stop.set()
            await sampling
        summary = _calls(f"bare gRPC server {p.name.removeprefix('replay ')}", p, stats, cpu.result)
        summary["cpu_ms_per_call"] = cpu_ms_per_unit(cpu.result, summary["calls"])  # the server's
        return summary

    async def replay(
        self, p: Pass, probes: Sequence[prop.Subject] = ()
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The bare server's pass, then the services' pass (after its preparation)."""
        prepare_errors = await self.prepare(p)
        bare = await self.replay_bare(p)
        self.call.stats = stats = Stats()
        w0 = p.steps[0].at if p.steps else 0.0
        async with Sampler(self.env.endpoints.kafka_bootstrap, self.dsns) as sampler:
            stop = asyncio.Event()
            start = time.perf_counter() + 0.5
            sampling = asyncio.create_task(sampler.run(start, stop))
            cpu = CpuWindow()
            before = {n: process_cpu_s(pid) for n, pid in self.pids.items()}
            cpu.start()
            watched = _probe(self, probes, start, p.sim_span_s / p.compression)
            await asyncio.gather(_on_schedule(self.driver, p.steps, w0, p.compression, start), watched.run())
            cpu.stop()
            drain = await sampler.drained(DRAIN_S)
            stop.set()
            await sampling
        used = {n: round(process_cpu_s(pid) - before[n], 2) for n, pid in self.pids.items()}
        summary = _summary(p, stats, sampler.series, drain, {**cpu.result, "services_cpu_s": used})
        # The five processes' CPU (their consumers' work included) per call of the driver's.
        summary["cpu_ms_per_call"] = cpu_ms_per_unit(
            {"server_process_cpu_s": sum(used.values())}, summary["calls"]
        )
        summary["prepare_errors"] = prepare_errors
        summary["sustainable"] = summary["sustainable"] and not prepare_errors
        if probes:
            summary["propagation"] = watched.result()
        return bare, summary


class _probe:
    """The issue-9 outcomes resolved at an even pace through the pass and watched (credit_propagation)."""

    def __init__(self, r: Run, subjects: Sequence[prop.Subject], start: float, span_s: float) -> None:
        self.r, self.subjects, self.start, self.span_s = r, subjects, start, span_s
        self.outcomes: list[prop.Outcome] = []
        self.level, self.card = prop.Polls(), prop.Polls()

    async def run(self) -> None:
        if not self.subjects:
            return
        clients = prop.Clients(
            self.r.stubs.channels, self.r.stubs.md("operator"), self.r.stubs.md("demo-platform")
        )
        gap = self.span_s / len(self.subjects)
        self.outcomes = [prop.Outcome(s, self.start + (i + 0.5) * gap) for i, s in enumerate(self.subjects)]
        await asyncio.gather(*(prop._resolve(clients, x, True, self.level, self.card) for x in self.outcomes))

    def result(self) -> dict[str, Any]:
        answered = [x for x in self.outcomes if not x.error]
        level = sorted(prop._seen([x.level_s for x in answered]))
        card = sorted(prop._seen([x.card_s for x in answered]))
        return {
            "outcomes": len(self.outcomes),
            "errors": dict(Counter(x.error for x in self.outcomes if x.error)),
            "given_up": sum(1 for x in answered if x.level_s is None or x.card_s is None),
            "level_d_p50_ms": percentile_ms(level, 50),
            "level_d_p99_ms": percentile_ms(level, 99),
            "card_red_p50_ms": percentile_ms(card, 50),
            "card_red_p99_ms": percentile_ms(card, 99),
            "resolve_p99_ms": percentile_ms(sorted(x.t0 - x.sent for x in answered), 99),
        }


async def _rows(dsn: str, sql: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {str(r[0]): int(r[1]) for r in await conn.fetch(sql)}
    finally:
        await conn.close()


async def _reconcile(r: Run, probe_cases: int) -> dict[str, Any]:
    """What each service holds against what the driver did; every difference listed."""
    t = r.totals
    orders = await _rows(r.dsns["orders"], "SELECT state, count(*) FROM orders GROUP BY state")
    ledger = await _rows(
        r.dsns["credit"], "SELECT event_type, count(*) FROM ledger_entries GROUP BY event_type"
    )
    consumer_ratings = await _rows(
        r.dsns["orders"], "SELECT 'consumer', count(*) FROM orders WHERE consumer_rating IS NOT NULL"
    )
    cases = await _rows(r.dsns["complaints"], "SELECT state, count(*) FROM cases GROUP BY state")
    claims = await _rows(r.dsns["insurance"], "SELECT state, count(*) FROM claims GROUP BY state")
    expected_orders = Counter(p.state for p in t.chains.values() if p.state)
    rated = t.count(lambda p: p.consumer_rated)
    completed = expected_orders["completed"]
    checks = {
        "orders by state": (dict(expected_orders), orders),
        "credit OrderCompleted entries = completed orders": (completed, ledger.get(ORDER_COMPLETED, 0)),
        "consumer ratings in orders": (rated, consumer_ratings.get("consumer", 0)),
        "credit RatingPosted entries >= consumer ratings": (rated, min(rated, ledger.get(RATING_POSTED, 0))),
        "complaints cases = filed (+ probes)": (
            t.count(lambda p: bool(p.case)) + probe_cases,
            sum(cases.values()),
        ),
        "complaints resolved = outcomes (+ probes)": (
            t.count(lambda p: p.case_resolved) + probe_cases,
            cases.get("resolved", 0),
        ),
        "insurance claims = outcomes with compensation": (
            t.count(lambda p: p.claim_expected),
            sum(claims.values()),
        ),
        "insurance claims paid = PayClaim succeeded": (t.count(lambda p: p.paid), claims.get("paid", 0)),
    }
    mismatches = [k for k, (want, got) in checks.items() if want != got]
    return {
        "checks": {k: {"driver": want, "services": got} for k, (want, got) in checks.items()},
        "ledger_by_event_type": ledger,
        "cases_by_state": cases,
        "claims_by_state": claims,
        "mismatches": mismatches,
        "regulator": "not run (see the module's docstring)",
    }


@contextlib.asynccontextmanager
async def _stack(env: BenchEnv) -> AsyncIterator[tuple[dict[str, Any], dict[str, str], Any]]:
    """The five services (workers signing cards with the run's card key, orders verifying check-ins
    with its public half, as tests/integration/conftest.py sets them) and the bare server."""
    card = new_dev_card_keys()
    extra = {"workers": card, "orders": {"JZ_CARD_JWKS": card_jwks(card)}}
    async with contextlib.AsyncExitStack() as stack:
        dsns, services = {}, {}
        for name in SERVICES:
            db = await stack.enter_async_context(scratch_database(env.endpoints, f"jzbench_day_{name}"))
            dsns[name] = env.endpoints.dsn(db)
            services[name] = await stack.enter_async_context(start_service(env, name, db, extra.get(name)))
        db = await stack.enter_async_context(scratch_database(env.endpoints, "jzbench_day_bare"))
        bare = await stack.enter_async_context(running_module(env, "bench.bare_day_server", db))
        yield services, dsns, bare


def _figures(
    passes: list[tuple[dict[str, Any], dict[str, Any]]], rec: dict[str, Any]
) -> list[dict[str, object]]:
    """Each pass (10x, then the ramp's) beside the bare server's pass of the same steps; the 10x one
    by service too."""
    figures: list[dict[str, object]] = []
    bare, main = passes[0]
    for b, m in passes:
        x = f"day {m['compression']:g}x"
        figures += [
            figure(f"{x}: completed RPCs, all services", "calls/s", m["calls_per_s"], b["calls_per_s"]),
            figure(f"{x}: gRPC p50, all services", "ms", m["p50_ms"], b["p50_ms"]),
            figure(
                f"{x}: gRPC p99, all services", "ms", m["p99_ms"], b["p99_ms"], Target(at_most=P99_LIMIT_MS)
            ),
        ]
    for service in SERVICES:
        m, b = main["services"][service], bare["services"][service]
        figures.append(
            figure(f"day 10x: {service} completed RPCs", "calls/s", m["calls_per_s"], b["calls_per_s"])
        )
        if m["calls"]:  # workers and credit answer no call of the day's: their work is consuming
            p99 = Target(at_most=P99_LIMIT_MS)
            figures.append(figure(f"day 10x: {service} gRPC p99", "ms", m["p99_ms"], b["p99_ms"], p99))
        figures += [
            figure(f"day 10x: {service} events consumed", "events/s", m["events_consumed_per_s"]),
            figure(f"day 10x: {service} consumer lag, max", "events", m["consumer_lag_max"]),
        ]
    drained = main["drained_after_s"]
    figures.append(
        figure("day 10x: drained after the last call", "ms", None if drained is None else drained * 1000)
    )
    top = max((m["compression"] for _, m in passes if m["sustainable"]), default=None)
    figures.append(figure("day: highest sustainable compression", "x", top, target=Target(at_least=10)))
    prop_ = main.get("propagation", {})
    figures.append(
        figure(
            "day 10x: outcome → level D p99",
            "ms",
            prop_.get("level_d_p99_ms"),
            target=Target(at_most=prop.LEVEL_P99_MS),
        )
    )
    figures.append(
        figure(
            "day 10x: outcome → card RED p99",
            "ms",
            prop_.get("card_red_p99_ms"),
            target=Target(at_most=prop.CARD_P99_MS),
        )
    )
    figures.append(
        figure(
            "day: nothing lost (totals reconciled across services)",
            "yes/no",
            not rec["mismatches"],
            target=Target(holds="every service's totals equal what the driver did"),
        )
    )
    return figures


async def run(
    env: BenchEnv,
    day_orders: int = 3_000,
    window_minutes: float = 20.0,
    ramp: Sequence[float] = (20.0, 40.0, 80.0, 160.0, 320.0),
    ramp_seconds: float = 20.0,
    probes: int = 100,
    seed: int = 14,
) -> dict[str, Any]:
    """Set up, replay the busiest window at 10x, ramp; each pass first against the bare server;
    reconcile."""
    companies = _company_keys(COMPANIES)
    env = BenchEnv(env.endpoints, keys=[*env.keys, *companies], pii_keys=env.pii_keys)
    for topic in TOPICS:
        await reset_topic(env.endpoints.kafka_bootstrap, topic)
    started = time.perf_counter()
    async with _stack(env) as (services, dsns, bare_server):
        channels = {n: grpc.aio.insecure_channel(f"127.0.0.1:{s.port}") for n, s in services.items()}
        bare_channel = grpc.aio.insecure_channel(f"127.0.0.1:{bare_server.port}")
        try:
            stubs = Stubs(channels, env, companies)
            bare_stubs = Stubs({n: bare_channel for n in SERVICES}, env, companies)
            call = Caller(stubs)
            totals = Totals()
            pool = WorkerPool()
            workers: dict[int, Worker] = {}
            r = Run(
                env,
                stubs,
                call,
                dsns,
                {n: s.pid for n, s in services.items()},
                pool,
                workers,
                totals,
                Driver(call, stubs, workers, totals),
                Driver(Caller(bare_stubs), bare_stubs, workers, Totals()),
                bare_server.pid,
                seed,
                day_orders,
                window_minutes,
            )
            await _companies(call, stubs)
            clients = prop.Clients(channels, stubs.md("operator"), stubs.md("demo-platform"))
            subjects = await prop._setup(clients, env.endpoints.kafka_bootstrap, probes) if probes else []
            if subjects:
                await prop._settle(clients, subjects, [dsns[n] for n in ("workers", "complaints", "credit")])
            setup_s = time.perf_counter() - started
            window_s = window_minutes * 60
            passes = [await r.replay(r.plan("replay 10x", 10.0, window_s), subjects)]
            if passes[0][1]["sustainable"]:
                for compression in ramp:
                    span = min(window_s, ramp_seconds * compression)
                    passes.append(await r.replay(r.plan(f"ramp {compression:g}x", compression, span)))
                    if not passes[-1][1]["sustainable"]:
                        break
            rec = await _reconcile(r, len(subjects))
        finally:
            for ch in [*channels.values(), bare_channel]:
                await ch.close(None)
    return {
        "day_orders": day_orders,
        "scale": "about 1/10 of a plausible Beijing day at the default",
        "window_minutes": window_minutes,
        "workers": len(workers),
        "companies": COMPANIES,
        "probes": probes,
        "setup_s": round(setup_s, 1),
        "duration_s": round(time.perf_counter() - started, 1),
        "sustainable_means": (
            f"no unexpected failure, every service's gRPC p99 <= {P99_LIMIT_MS:g} ms, send lateness p99 <= "
            f"{LATENESS_LIMIT_S:g} s, every outbox empty and every consumer group caught up"
            f" within {DRAIN_S:g} s"
        ),
        "baseline": (
            "bench/bare_day_server.py: one grpc.aio process answering every method of the five services"
            " with an empty reply, sent the same pass's calls by the same driver on the same schedule"
            " (the ceiling of client + gRPC transport on this machine)"
        ),
        "reconciliation": rec,
        "figures": _figures(passes, rec),
        "runs": [run_ for pair in passes for run_ in pair],
    }


if __name__ == "__main__":  # a quick look without the runner: python -m bench.beijing_day
    import json

    from bench.common import BENCH_HOME
    from deploy.local.stack import LocalStack

    stack = LocalStack(BENCH_HOME)
    try:
        result = asyncio.run(
            run(
                BenchEnv(stack.up()),
                day_orders=1_500,
                window_minutes=5,
                ramp=(20.0, 40.0, 80.0),
                ramp_seconds=8,
                probes=10,
            )
        )
    finally:
        stack.down()
    for r_ in result["runs"]:
        r_.pop("series", None)
    print(json.dumps(result, indent=1, ensure_ascii=False, default=str))
