"""Indicators on the real stack: a generated day of activity (seeded) produced as the producing
services' events to their real topics, projected and counted by a real regulator process; the
figures it publishes equal those this test computes from the same inputs in plain Python, and a
late event inside the grace period changes its day while one beyond it changes nothing.

The districts are six-digit codes outside Beijing's (99xxxx, new each run): the regulator reads
the source topics from their start, so the session's other events and earlier runs' on the same
stack stay out of these figures."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import uuid
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import grpc
from aiokafka import AIOKafkaProducer
from google.protobuf import json_format
from google.protobuf.message import Message

from deploy.local.stack import Endpoints
from jiazheng.complaints.events.v1 import events_pb2 as complaints
from jiazheng.credit.events.v1 import events_pb2 as credit
from jiazheng.insurance.events.v1 import events_pb2 as insurance
from jiazheng.orders.events.v1 import events_pb2 as orders
from jiazheng.regulator.v1 import regulator_pb2 as pb
from jiazheng.regulator.v1 import regulator_pb2_grpc
from jiazheng.type.v1 import service_type_pb2 as st
from jiazheng.workers.events.v1 import events_pb2 as workers
from jiazheng.workers.v1 import workers_pb2 as wpb
from libs.common.beijing import beijing_day, beijing_midnight
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.regulator.domain.projection import JSON_CONTENT_TYPE, REGULATOR_SOURCE
from services.regulator.topics import INDICATORS_TOPIC, regulator_topic
from tests.integration.clients import auth
from tests.integration.harness import ServiceHarness, eventually
from tests.integration.kafka_tools import read_topic
from tests.integration.workers_client import produce

SEED = 11
GRACE_DAYS = 7
LEVELS: dict[int, str] = {credit.CREDIT_LEVEL_A: "A", credit.CREDIT_LEVEL_B: "B"}
LEVELS |= {credit.CREDIT_LEVEL_C: "C", credit.CREDIT_LEVEL_D: "D"}
SKILLS: dict[int, int] = {
    wpb.SKILL_LEVEL_5: 5,
    wpb.SKILL_LEVEL_4: 4,
    wpb.SKILL_LEVEL_3: 3,
    wpb.SKILL_LEVEL_2: 2,
}
ELDERLY, AGE_FRIENDLY = st.SERVICE_TYPE_ELDERLY_CARE, st.SERVICE_TYPE_AGE_FRIENDLY_ADAPTATION
SERVICES: list[int] = [st.SERVICE_TYPE_CLEANING, ELDERLY, AGE_FRIENDLY]
COLOURS: list[int] = [wpb.CARD_COLOUR_GREEN, wpb.CARD_COLOUR_YELLOW]
ORDERS = events_topic("orders")
Produced = tuple[str, str, Message, datetime]
"""A service, the subject, the event and its time."""


@dataclass
class Worker:
    id: str
    districts: list[str]
    colours: list[tuple[datetime, int]] = field(default_factory=list)
    levels: list[tuple[datetime, int]] = field(default_factory=list)
    skill: tuple[datetime, int] | None = None


@dataclass
class Order:
    id: str
    district: str
    service: int
    created: datetime
    assigned: tuple[datetime, Worker] | None = None
    covered: bool | None = None
    completed: datetime | None = None


@dataclass
class Case:
    id: str
    district: str
    filed: datetime
    answers: list[tuple[datetime, int]] = field(default_factory=list)
    mediation: tuple[datetime, datetime | None] | None = None
    resolved: datetime | None = None
    breaches: int = 0


class Activity:
    """One Beijing day's generated activity, as facts and as the services' events."""

    def __init__(self, seed: int, day: date, districts: list[str]) -> None:
        self.rng, self.day, self.districts = random.Random(seed), day, districts
        self.workers = [self._worker() for _ in range(6)]
        self.orders = [self._order() for _ in range(30)]
        self.cases = [self._case() for _ in range(10)]

    def at(self, hours: float) -> datetime:
        return beijing_midnight(self.day) + timedelta(hours=hours)

    def _worker(self) -> Worker:
        worker = Worker(str(uuid.uuid4()), self.rng.sample(self.districts, self.rng.randint(1, 2)))
        for hours in (-12, self.rng.uniform(1, 23)):  # the day before, then during the day
            worker.colours.append((self.at(hours), self.rng.choice(COLOURS)))
            worker.levels.append((self.at(hours + 0.1), self.rng.choice(list(LEVELS))))
        if self.rng.random() < 0.7:
            worker.skill = (self.at(self.rng.uniform(0, 23)), self.rng.choice(list(SKILLS)))
        return worker

    def _order(self) -> Order:
        created = self.rng.uniform(0.2, 20)
        order = Order(
            str(uuid.uuid4()), self.rng.choice(self.districts), self.rng.choice(SERVICES), self.at(created)
        )
        if self.rng.random() < 0.7:
            order.assigned = (self.at(created + self.rng.uniform(0.1, 2)), self.rng.choice(self.workers))
            order.covered = self.rng.random() < 0.6
            if self.rng.random() < 0.6:
                order.completed = self.at(created + 3)
        return order

    def _case(self) -> Case:
        filed = self.rng.uniform(0.2, 16)
        case = Case(str(uuid.uuid4()), self.rng.choice(self.districts), self.at(filed))
        answered = filed + self.rng.uniform(0.1, 3)
        if self.rng.random() < 0.8:
            case.answers = [(self.at(answered), int((answered - filed) * 3600))]
            case.answers += [(self.at(answered + 1), 99_999)] if self.rng.random() < 0.5 else []
        case.breaches = self.rng.randint(0, 2)
        fate = self.rng.choice(["resolved", "mediation", "mediation_resolved", "open"])
        if fate.startswith("mediation"):
            case.mediation = (
                self.at(answered + 0.5),
                self.at(answered + 2) if fate.endswith("resolved") else None,
            )
        if fate.endswith("resolved"):
            case.resolved = self.at(answered + 2)
        return case

    def events(self) -> dict[str, list[EventEnvelope]]:
        """Each service's events, in time order."""
        produced: dict[str, list[tuple[datetime, EventEnvelope]]] = {}
        for service, subject, message, moment in (
            *self._worker_events(),
            *self._order_events(),
            *self._case_events(),
        ):
            envelope = new_event(message, source=f"/jiazheng/{service}", subject=subject, time=moment)
            produced.setdefault(service, []).append((moment, envelope))
        return {s: [e for _, e in sorted(pairs, key=lambda p: p[0])] for s, pairs in produced.items()}

    def _worker_events(self) -> Iterator[Produced]:
        for w in self.workers:
            subject = f"workers/{w.id}"
            registered = workers.WorkerRegistered(worker_id=w.id, service_districts=w.districts)
            yield "workers", subject, registered, self.at(-20)
            for moment, colour in w.colours:
                yield (
                    "workers",
                    subject,
                    workers.CardStatusChanged(worker_id=w.id, colour=_enum(colour)),
                    moment,
                )
            for moment, level in w.levels:
                yield "credit", subject, credit.CreditLevelChanged(worker_id=w.id, level=_enum(level)), moment
            if w.skill:
                certificate = workers.SkillCertificateRecorded(
                    worker_id=w.id, highest_level=_enum(w.skill[1])
                )
                yield "workers", subject, certificate, w.skill[0]

    def _order_events(self) -> Iterator[Produced]:
        for o in self.orders:
            subject, district = f"orders/{o.id}", o.district
            created = orders.OrderCreated(
                order_id=o.id, district_code=district, service_type=_enum(o.service)
            )
            yield "orders", subject, created, o.created
            if o.assigned:
                moment, worker = o.assigned
                assigned = orders.OrderAssigned(order_id=o.id, worker_id=worker.id, district_code=district)
                yield "orders", subject, assigned, moment
                yield "insurance", subject, _cover(o, worker), moment + timedelta(minutes=1)
            if o.completed:
                yield (
                    "orders",
                    subject,
                    orders.OrderCompleted(order_id=o.id, district_code=district),
                    o.completed,
                )

    def _case_events(self) -> Iterator[Produced]:
        for c in self.cases:
            subject, filed_at = f"cases/{c.id}", timestamp(c.filed)
            filed = complaints.CaseFiled(case_id=c.id, district_code=c.district, file_time=filed_at)
            yield "complaints", subject, filed, c.filed
            for moment, seconds in c.answers:
                answered = complaints.CaseAnswered(case_id=c.id, response_seconds=seconds)
                yield "complaints", subject, answered, moment
            for n in range(c.breaches):
                breached = complaints.SlaBreached(case_id=c.id, deadline_kind="decision")
                yield "complaints", subject, breached, c.filed + timedelta(hours=5 + n)
            if c.mediation:
                yield "complaints", subject, complaints.CaseEscalatedToMediation(case_id=c.id), c.mediation[0]
            if c.resolved:
                resolved = complaints.CaseResolved(
                    case_id=c.id, file_time=filed_at, time=timestamp(c.resolved)
                )
                yield "complaints", subject, resolved, c.resolved


def _enum(value: int) -> Any:
    """A generated enum value (an int) where the generated classes type their enums."""
    return value


def _cover(order: Order, worker: Worker) -> Message:
    """What insurance publishes when the order is accepted: its cover, or that it has none."""
    if order.covered:
        return insurance.OrderCoverageRecorded(order_id=order.id, worker_id=worker.id)
    return insurance.OrderUncovered(order_id=order.id, worker_id=worker.id, district_code=order.district)


def _last_before(history: list[tuple[datetime, int]], moment: datetime, inclusive: bool = True) -> int | None:
    earlier = [value for at, value in sorted(history) if at < moment or (inclusive and at == moment)]
    return earlier[-1] if earlier else None


def _median(samples: list[int]) -> int:
    return int(statistics.median(samples)) if samples else 0


def expected(activity: Activity, district: str) -> pb.DistrictDay:
    """The district's figures for the day, from the generated facts (docs/regulators.md)."""
    placed = [o for o in activity.orders if o.district == district]
    dispatched = [o.assigned for o in placed if o.assigned]
    cases = [c for c in activity.cases if c.district == district]
    end = beijing_midnight(activity.day + timedelta(days=1))
    serving = [w for w in activity.workers if district in w.districts]
    levels = [LEVELS.get(_last_before(w.levels, end, inclusive=False) or 0) for w in serving]
    skills = [SKILLS.get(w.skill[1]) for w in serving if w.skill]
    return pb.DistrictDay(
        district_code=district,
        date=activity.day.isoformat(),
        orders_placed=len(placed),
        orders_completed=sum(1 for o in placed if o.completed),
        orders_dispatched=len(dispatched),
        dispatched_green=sum(
            1 for at, w in dispatched if _last_before(w.colours, at) == wpb.CARD_COLOUR_GREEN
        ),
        complaints_filed=len(cases),
        complaints_per_thousand_orders=len(cases) * 1000 / len(placed) if placed else 0.0,
        median_first_response_seconds=_median([c.answers[0][1] for c in cases if c.answers]),
        median_resolution_seconds=_median(
            [int((c.resolved - c.filed).total_seconds()) for c in cases if c.resolved]
        ),
        mediation_backlog=sum(1 for c in cases if c.mediation and c.mediation[1] is None),
        sla_breaches=sum(c.breaches for c in cases),
        orders_insured=sum(1 for o in placed if o.covered is True),
        orders_uninsured=sum(1 for o in placed if o.covered is False),
        elderly_care_orders=sum(1 for o in placed if o.service == ELDERLY),
        age_friendly_orders=sum(1 for o in placed if o.service == AGE_FRIENDLY),
        credit_levels=[pb.LevelCount(level=lv, workers=levels.count(lv)) for lv in "ABCD"],
        certified_workers=[pb.SkillLevelCount(skill_level=s, workers=skills.count(s)) for s in (5, 4, 3, 2)],
    )


async def published(bootstrap: str, keys: set[str]) -> dict[str, pb.DistrictDay]:
    """The last figures the indicators topic carries for each of ``keys`` (<district>/<date>)."""
    last: dict[str, pb.DistrictDay] = {}
    for record in sorted(await read_topic(bootstrap, INDICATORS_TOPIC), key=lambda r: r.offset):
        key = (record.key or b"").decode()
        if key in keys:
            last[key] = json_format.Parse(record.value, pb.DistrictDay())
    return last


_HANDED_OUT: set[str] = set()


async def fresh_districts(bootstrap: str, n: int) -> list[str]:
    """``n`` test districts (99xxxx) that no earlier test of this run was given and that have no
    figures on the indicators topic (a reused stack home keeps earlier runs'): a day's figures are
    then the calling test's events alone. Random picks collided once in CI (25 orders where the
    test produced 10)."""
    records = await read_topic(bootstrap, INDICATORS_TOPIC)
    taken = _HANDED_OUT | {(r.key or b"").decode().partition("/")[0] for r in records}
    chosen = random.sample([d for d in (f"99{i:04d}" for i in range(10_000)) if d not in taken], n)
    _HANDED_OUT.update(chosen)
    return chosen


async def figures_become(bootstrap: str, want: dict[str, pb.DistrictDay], within: float = 120) -> None:
    async def reached() -> bool:
        return await published(bootstrap, set(want)) == want

    try:
        await eventually(reached, within=within, interval=1)
    finally:
        assert await published(bootstrap, set(want)) == want


def _order_placed(district: str, moment: datetime) -> EventEnvelope:
    order_id = str(uuid.uuid4())
    message = orders.OrderCreated(
        order_id=order_id, district_code=district, service_type=st.SERVICE_TYPE_ELDERLY_CARE
    )
    return new_event(message, source="/jiazheng/orders", subject=f"orders/{order_id}", time=moment)


async def test_a_generated_days_indicators_equal_the_figures_computed_from_its_inputs(
    endpoints: Endpoints, harness: ServiceHarness
) -> None:
    bootstrap = endpoints.kafka_bootstrap
    day = beijing_day(datetime.now(UTC)) - timedelta(days=2)
    districts = await fresh_districts(bootstrap, 3)
    activity = Activity(SEED, day, districts)
    regulator = await harness.start(
        "regulator", supervised=True, consumer_group_prefix=f"test-r2-{uuid.uuid4().hex[:8]}"
    )
    for service, envelopes in activity.events().items():
        await produce(bootstrap, events_topic(service), *envelopes, *envelopes[:3])  # 3 delivered twice

    want = {f"{d}/{day.isoformat()}": expected(activity, d) for d in districts}
    await figures_become(bootstrap, want)

    first, too_late = districts[0], day - timedelta(days=GRACE_DAYS + 2)
    await produce(bootstrap, ORDERS, _order_placed(first, beijing_midnight(too_late) + timedelta(hours=12)))
    await produce(bootstrap, ORDERS, _order_placed(first, activity.at(12)))
    activity.orders.append(Order("late", first, ELDERLY, activity.at(12)))
    want[f"{first}/{day.isoformat()}"] = expected(activity, first)
    await figures_become(bootstrap, want)
    assert await published(bootstrap, {f"{first}/{too_late.isoformat()}"}) == {}

    # What a regulator queries through the API is what the topic carries.
    request = pb.ListIndicatorsRequest(
        start_date=too_late.isoformat(), end_date=day.isoformat(), district_codes=districts
    )

    async def answered() -> dict[str, pb.DistrictDay]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{regulator.port}") as channel:
            stub = regulator_pb2_grpc.RegulatorServiceStub(channel)
            reply = await stub.ListIndicators(request, metadata=auth(harness.key("regulator")))
        return {f"{d.district_code}/{d.date}": d for d in reply.days}

    async def as_published() -> dict[str, pb.DistrictDay] | None:
        days = await answered()
        return days if {key: days.get(key) for key in want} == want else None

    days = await eventually(as_published, within=60)
    assert f"{first}/{too_late.isoformat()}" not in days


async def test_a_restarted_regulator_recovers_a_district_whose_events_came_through_every_partition(
    endpoints: Endpoints, harness: ServiceHarness
) -> None:
    """One district's complaints filed through each partition of the regulator topic in turn (2,
    then 1, then 0), so that its day is written from all three. faust recovers a table from its
    changelog partitions in no order of ours: the restarted regulator must still hold the last
    figures, and count the next case on top of them."""
    bootstrap = endpoints.kafka_bootstrap
    group, (district,) = f"test-r3-{uuid.uuid4().hex[:8]}", await fresh_districts(bootstrap, 1)
    day = beijing_day(datetime.now(UTC)) - timedelta(days=2)
    key = f"{district}/{day.isoformat()}"
    regulator = await harness.start("regulator", supervised=True, consumer_group_prefix=group)
    filed, morning = 0, beijing_midnight(day) + timedelta(hours=10)
    for partition in (2, 1, 0):
        for _ in range(4):
            await produce_case_filed(bootstrap, partition, district, morning)
            filed += 1
            await eventually(partial(_filed_is, bootstrap, key, filed), within=300, interval=0.5)
    harness.stop(regulator)

    regulator = await harness.start("regulator", supervised=True, consumer_group_prefix=group)
    await eventually(lambda: _listed_filed_is(harness, regulator.port, day, district, filed), within=120)
    await produce_case_filed(bootstrap, 1, district, morning + timedelta(hours=1))
    await eventually(lambda: _filed_is(bootstrap, key, filed + 1), within=120, interval=0.5)


async def test_a_subscriber_to_the_indicators_from_now_on_gets_the_next_change_already_listed(
    endpoints: Endpoints, harness: ServiceHarness
) -> None:
    """As the dashboard follows the figures: Subscribe(LATEST, the indicators topic), and once the
    initial metadata came (the reader is positioned), a case filed at once is in the stream, and
    ListIndicators shows its figures when the record arrives."""
    (district,) = await fresh_districts(endpoints.kafka_bootstrap, 1)
    day = beijing_day(datetime.now(UTC)) - timedelta(days=1)
    key = harness.key("regulator")
    regulator = await harness.start(
        "regulator", supervised=True, consumer_group_prefix=f"test-r4-{uuid.uuid4().hex[:8]}"
    )
    request = pb.SubscribeRequest(start=pb.START_POSITION_LATEST, topics=[INDICATORS_TOPIC])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{regulator.port}") as channel:
        stub = regulator_pb2_grpc.RegulatorServiceStub(channel)
        call = stub.Subscribe(request, metadata=auth(key))
        try:
            await asyncio.wait_for(call.initial_metadata(), 60)
            await produce_case_filed(endpoints.kafka_bootstrap, 0, district, beijing_midnight(day))
            changed = await asyncio.wait_for(_first_about(call, f"{district}/{day.isoformat()}"), 300)
            listed = await _listed_filed_is(harness, regulator.port, day, district, 1)
        finally:
            call.cancel()

    assert json_format.Parse(changed.data_json, pb.DistrictDay()).complaints_filed == 1
    assert listed


async def _first_about(responses: AsyncIterable[pb.SubscribeResponse], subject: str) -> pb.RegulatorEvent:
    async for response in responses:
        if response.event.subject == subject:
            return response.event
    raise AssertionError(f"the stream ended before {subject}")


async def produce_case_filed(bootstrap: str, partition: int, district: str, moment: datetime) -> None:
    """A regulator record of a filed case, written straight to ``partition`` of complaints' topic."""
    case = str(uuid.uuid4())
    data = json.dumps({"caseId": case, "districtCode": district}).encode()
    record = EventEnvelope(
        id=str(uuid.uuid4()),
        type="jiazheng.complaints.events.v1.CaseFiled",
        source=REGULATOR_SOURCE,
        subject=f"cases/{case}",
        time=moment,
        data=data,
        extra_headers={"content-type": JSON_CONTENT_TYPE},
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            regulator_topic("complaints"),
            value=record.data,
            key=record.key,
            headers=record.kafka_headers(),
            partition=partition,
        )
    finally:
        await producer.stop()


async def _filed_is(bootstrap: str, key: str, filed: int) -> bool:
    figures = (await published(bootstrap, {key})).get(key)
    return figures is not None and figures.complaints_filed == filed


async def _listed_filed_is(harness: ServiceHarness, port: int, day: date, district: str, filed: int) -> bool:
    request = pb.ListIndicatorsRequest(
        start_date=day.isoformat(), end_date=day.isoformat(), district_codes=[district]
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = regulator_pb2_grpc.RegulatorServiceStub(channel)
        reply = await stub.ListIndicators(request, metadata=auth(harness.key("regulator")))
    return [d.complaints_filed for d in reply.days] == [filed]
