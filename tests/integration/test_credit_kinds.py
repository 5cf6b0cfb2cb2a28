"""Each kind of fact moves a worker's credit as the model says, on the real stack: the fact is caused
through the producing service's own API (orders, complaints, workers), travels as an event, and the
full record credit answers (GetWorkerCredit, as an operator) has one line per fact with the points
and reason ``services.credit.model.evaluate`` gives the facts the test caused, and their score.

Covered elsewhere: an upheld complaint and a certificate (test_credit_chain.py), an award
(test_credit_lookups.py). At-fault claims paid have no producer yet (the insurance service, issue 10).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from google.protobuf.timestamp_pb2 import Timestamp

from deploy.local.stack import Endpoints
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.credit.v1 import credit_pb2 as pb
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.type.v1 import service_type_pb2
from jiazheng.workers.v1 import workers_pb2 as w
from libs.common.kafka import events_topic
from services.credit.model import BEIJING, Fact, FactKind, Substantiation, evaluate, v1
from tests.integration.complaints_client import complaints_call, file_worker_complaint
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import read_topic, wait_until_consumed
from tests.integration.test_credit_lookups import credit_of
from tests.integration.test_orders_lifecycle import orders_call
from tests.integration.workers_client import call, create_company, create_worker, ready_worker

pytestmark = pytest.mark.integration
CREDIT_GROUP = "jiazheng-credit"
CERTIFICATE = int(w.SKILL_LEVEL_4)  # ready_worker's certificate (四级): its level's number is the magnitude


@pytest.fixture(scope="module")
async def company(harness: ServiceHarness, workers: RunningService) -> str:
    """companies/{id}: the employer of this module's workers."""
    return (await create_company(workers, harness.key("operator"))).name


async def _new_worker(harness: ServiceHarness, workers: RunningService, company: str) -> str:
    """A registered worker (no check, no certificate): its id."""
    worker = await create_worker(workers, harness.key("operator"), company)
    return worker.name.removeprefix("workers/")


# -- what the record should say ------------------------------------------------------------


def _lines(record: pb.WorkerCredit, kind: FactKind) -> list[pb.ScoreLine]:
    """The record's lines of ``kind``, oldest first."""
    found = [line for line in record.lines if line.kind == kind]
    return sorted(found, key=lambda line: (line.occur_time.ToDatetime(tzinfo=UTC), line.fact_id))


async def _record_with(
    credit: RunningService, harness: ServiceHarness, worker_id: str, caused: Mapping[FactKind, list[int]]
) -> pb.WorkerCredit:
    """The worker's full record once it holds a line for each fact caused (events take a moment)."""

    async def holds() -> pb.WorkerCredit | None:
        try:
            record = await credit_of(credit, harness.key("operator"), worker_id)
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None
        found = Counter(line.kind for line in record.lines)
        return record if all(found[kind] >= len(m) for kind, m in caused.items()) else None

    return await eventually(holds, within=60)


def _facts(record: pb.WorkerCredit, caused: Mapping[FactKind, list[int]]) -> list[Fact]:
    """The facts the test caused, as the model takes them: for each kind, the record's lines
    (their ids and times) with the magnitudes the test gave, oldest first; the complaints the
    tests uphold are substantiated."""
    facts = []
    for kind, magnitudes in caused.items():
        lines = _lines(record, kind)
        assert len(lines) == len(magnitudes), (kind, lines)
        facts += [
            Fact(
                line.fact_id,
                record.worker.removeprefix("workers/"),
                kind,
                line.occur_time.ToDatetime(tzinfo=UTC),
                magnitude,
                Substantiation.SUBSTANTIATED if kind is FactKind.COMPLAINT_UPHELD else "",
                line.source,
            )
            for line, magnitude in zip(lines, magnitudes, strict=True)
        ]
    return facts


def assert_scored_as_the_model_says(record: pb.WorkerCredit, caused: Mapping[FactKind, list[int]]) -> None:
    """Every line of the record is one the model gives the caused facts (no more, no fewer), with
    its points and reason, and the score and level are the model's."""
    evaluation = evaluate(_facts(record, caused), record.evaluate_time.ToDatetime(tzinfo=UTC))

    shown = sorted((line.fact_id, line.kind, line.points, line.reason) for line in record.lines)
    expected = sorted((line.fact_id, str(line.kind), line.points, line.reason) for line in evaluation.lines)
    assert shown == expected
    assert (record.score, record.level) == (evaluation.score, pb.Level.Value(f"LEVEL_{evaluation.level}"))
    assert record.model_version == evaluation.model_version


def _points(record: pb.WorkerCredit, kind: FactKind) -> list[int]:
    return [line.points for line in _lines(record, kind)]


# -- orders --------------------------------------------------------------------------------


def _at(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def _assigned(orders: RunningService, platform: str, worker_id: str, start: datetime) -> str:
    """A new order of the demo platform starting at ``start``, offered to and accepted by the
    worker (once orders has heard the worker may take it): orders/{id}."""
    order = o.Order(
        service_type=service_type_pb2.SERVICE_TYPE_ELDERLY_CARE,
        district_code="110105",
        consumer_ref=f"c-{uuid.uuid4().hex[:8]}",
        scheduled_start_time=_at(start),
        duration_hours=4,
        contact=o.Contact(full_name="李奶奶", mobile="13800001234"),
        address="北京市朝阳区望京西路8号",
    )
    request = o.CreateOrderRequest(request_id=str(uuid.uuid4()), order=order)
    name: str = (await orders_call(orders, platform, "CreateOrder", request)).order.name

    async def offered() -> o.Offer | None:
        try:
            offer = o.OfferOrderRequest(name=name, worker_id=worker_id)
            reply: o.OfferOrderResponse = await orders_call(orders, platform, "OfferOrder", offer)
        except grpc.aio.AioRpcError as refused:  # not yet eligible: the workers' events are on their way
            if refused.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return None
        return reply.offer

    offer = await eventually(offered, within=60)
    await orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=offer.name))
    return name


async def _order_call(orders: RunningService, harness: ServiceHarness, method: str, request: Any) -> None:
    await orders_call(orders, harness.key("demo-platform"), method, request)


async def test_a_completed_order_and_the_consumers_rating_score_as_the_model_says(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    credit: RunningService,
    company: str,
) -> None:
    worker_id, card = await ready_worker(endpoints, workers, harness.key("operator"), company)
    start = datetime.now(UTC) + timedelta(days=2)
    order = await _assigned(orders, harness.key("demo-platform"), worker_id, start)
    await _order_call(orders, harness, "CheckIn", o.CheckInRequest(name=order, card_token=card))
    await _order_call(orders, harness, "CheckOut", o.CheckOutRequest(name=order))
    # The worker's rating of the consumer first: on the order's partition, it reaches credit
    # before the consumer's, and scores nothing.
    for rater, stars in ((o.PARTY_WORKER, 1), (o.PARTY_CONSUMER, 2)):
        await _order_call(
            orders, harness, "RateOrder", o.RateOrderRequest(name=order, rater=rater, stars=stars)
        )

    caused = {
        FactKind.CERTIFICATE_GRANTED: [CERTIFICATE],
        FactKind.ORDER_COMPLETED: [1],
        FactKind.RATING: [2],
    }
    record = await _record_with(credit, harness, worker_id, caused)

    assert_scored_as_the_model_says(record, caused)
    assert _points(record, FactKind.ORDER_COMPLETED) == [v1.ORDER_POINTS]
    assert _points(record, FactKind.RATING) == [v1.rating_points(2, 1)]
    assert v1.rating_points(2, 1) < 0  # two stars of five lower the score


async def test_a_second_no_show_within_28_days_costs_more_than_the_first(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    credit: RunningService,
    company: str,
) -> None:
    worker_id, _ = await ready_worker(endpoints, workers, harness.key("operator"), company)
    for minutes_ago in (50, 30):  # each order started a while ago, and the worker did not come
        order = await _assigned(
            orders,
            harness.key("demo-platform"),
            worker_id,
            datetime.now(UTC) - timedelta(minutes=minutes_ago),
        )
        report = o.ReportNoShowRequest(name=order, at_fault=o.PARTY_WORKER)
        await _order_call(orders, harness, "ReportNoShow", report)

    caused = {FactKind.CERTIFICATE_GRANTED: [CERTIFICATE], FactKind.NO_SHOW: [1, 1]}
    record = await _record_with(credit, harness, worker_id, caused)

    assert_scored_as_the_model_says(record, caused)
    assert _points(record, FactKind.NO_SHOW) == [-v1.NO_SHOW_STEP, -2 * v1.NO_SHOW_STEP]  # not yet faded


# -- complaints ----------------------------------------------------------------------------


async def _complaint(
    complaints: RunningService,
    harness: ServiceHarness,
    worker_id: str,
    company: str,
    severity: c.Severity.ValueType,
) -> str:
    """A consumer's complaint, through the demo platform, against the worker: cases/{id}."""
    return await file_worker_complaint(
        complaints,
        harness.key("demo-platform"),
        worker_id,
        company,
        c.CATEGORY_QUALITY,
        severity,
        "阿姨未按约定完成服务",
    )


UPHELD = c.Outcome(result=c.OUTCOME_RESULT_SUBSTANTIATED, at_fault=c.PARTY_KIND_WORKER)


async def test_a_mediation_agreement_the_worker_breached_costs_the_breach_penalty(
    harness: ServiceHarness,
    workers: RunningService,
    complaints: RunningService,
    credit: RunningService,
    company: str,
) -> None:
    worker_id = await _new_worker(harness, workers, company)
    case = await _complaint(complaints, harness, worker_id, company, c.SEVERITY_MINOR)
    operator, mediator = harness.key("operator"), harness.key("consumer-mediator")
    await complaints_call(complaints, operator, "DecideCase", c.DecideCaseRequest(name=case, accept=False))
    reassign = c.ReassignCaseRequest(name=case, mediator="consumer-mediator")
    await complaints_call(complaints, operator, "ReassignCase", reassign)
    due = (datetime.now(BEIJING).date() + timedelta(days=7)).isoformat()
    agreement = c.Agreement(
        facts="厨房未清洁",
        responsibility="阿姨负责返工",
        undertakings=[c.Undertaking(party=c.PARTY_KIND_WORKER, action="重新打扫", due_date=due)],
    )
    agreed = c.RecordAgreementRequest(name=case, agreement=agreement, outcome=UPHELD)
    await complaints_call(complaints, mediator, "RecordAgreement", agreed)
    breached = c.RecordPerformanceRequest(name=case, performed=False, breached_by=c.PARTY_KIND_WORKER)
    await complaints_call(complaints, mediator, "RecordPerformance", breached)

    caused = {FactKind.AGREEMENT_BREACHED: [1]}
    record = await _record_with(credit, harness, worker_id, caused)

    assert_scored_as_the_model_says(record, caused)  # the breach alone: the case was not resolved
    assert _points(record, FactKind.AGREEMENT_BREACHED) == [-v1.AGREEMENT_BREACH_PENALTY]


async def test_a_suspension_requested_is_shown_and_scores_nothing_beside_its_complaint(
    harness: ServiceHarness,
    workers: RunningService,
    complaints: RunningService,
    credit: RunningService,
    company: str,
) -> None:
    worker_id = await _new_worker(harness, workers, company)
    case = await _complaint(complaints, harness, worker_id, company, c.SEVERITY_SEVERE)
    resolve = c.ResolveCaseRequest(name=case, outcome=UPHELD)
    await complaints_call(complaints, harness.key("operator"), "ResolveCase", resolve)

    caused = {FactKind.COMPLAINT_UPHELD: [3], FactKind.SUSPENSION_REQUESTED: [1]}
    record = await _record_with(credit, harness, worker_id, caused)

    assert_scored_as_the_model_says(record, caused)
    [suspension] = _lines(record, FactKind.SUSPENSION_REQUESTED)
    assert (suspension.points, suspension.source) == (
        0,
        "jiazheng.complaints.events.v1.WorkerSuspensionRequested",
    )
    assert _points(record, FactKind.COMPLAINT_UPHELD) == [-v1.COMPLAINT_PENALTIES[3][1]]


# -- workers -------------------------------------------------------------------------------


def _training(worker_id: str, hours: int, passed: bool) -> w.RecordTrainingRequest:
    return w.RecordTrainingRequest(
        worker=f"workers/{worker_id}",
        course="养老护理员培训",
        provider="北京市家政服务职业技能培训中心",
        hours=hours,
        completion_date=date.today().isoformat(),
        exam_passed=passed,
    )


async def _trained(harness: ServiceHarness, workers: RunningService, worker_id: str, hours: int) -> None:
    """A course whose exam the worker failed (no fact), then one passed: on the worker's partition,
    the failed one reaches credit first."""
    for passed in (False, True):
        await call(workers, harness.key("operator"), "RecordTraining", _training(worker_id, hours, passed))


async def test_training_passed_gains_a_point_per_8_hours_and_a_failed_exam_nothing(
    harness: ServiceHarness, workers: RunningService, credit: RunningService, company: str
) -> None:
    worker_id = await _new_worker(harness, workers, company)
    hours = 3 * v1.TRAINING_HOURS_PER_POINT + 4

    await _trained(harness, workers, worker_id, hours)

    caused = {FactKind.TRAINING_COMPLETED: [hours]}
    record = await _record_with(credit, harness, worker_id, caused)
    assert_scored_as_the_model_says(record, caused)
    assert _points(record, FactKind.TRAINING_COMPLETED) == [3]


async def test_a_flagged_background_check_costs_the_penalty_per_flag(
    harness: ServiceHarness, workers: RunningService, credit: RunningService, company: str
) -> None:
    worker_id = await _new_worker(harness, workers, company)
    check = w.RecordBackgroundCheckRequest(
        worker=f"workers/{worker_id}",
        identity_genuine=True,
        drug_offence_within_3_years=True,
        check_date=date.today().isoformat(),
    )

    await call(workers, harness.key("operator"), "RecordBackgroundCheck", check)

    caused = {FactKind.BACKGROUND_FLAGGED: [1]}
    record = await _record_with(credit, harness, worker_id, caused)
    assert_scored_as_the_model_says(record, caused)
    assert _points(record, FactKind.BACKGROUND_FLAGGED) == [-v1.BACKGROUND_FLAG_PENALTY]


async def test_a_scored_event_delivered_again_changes_nothing(
    endpoints: Endpoints,
    harness: ServiceHarness,
    workers: RunningService,
    credit: RunningService,
    company: str,
) -> None:
    worker_id = await _new_worker(harness, workers, company)
    hours = 2 * v1.TRAINING_HOURS_PER_POINT
    await _trained(harness, workers, worker_id, hours)
    before = await _record_with(credit, harness, worker_id, {FactKind.TRAINING_COMPLETED: [hours]})
    [line] = _lines(before, FactKind.TRAINING_COMPLETED)
    topic = events_topic("workers")
    [record] = [
        r
        for r in await read_topic(endpoints.kafka_bootstrap, topic)
        if r.headers["ce_id"] == line.fact_id.encode()
    ]

    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
    await producer.start()
    try:
        for _ in range(2):  # the same CloudEvent (its id) twice, as a relay that crashed would
            sent = await producer.send_and_wait(
                topic, value=record.value, key=record.key, headers=list(record.headers.items())
            )
    finally:
        await producer.stop()
    await wait_until_consumed(endpoints.kafka_bootstrap, CREDIT_GROUP, topic, sent.partition, sent.offset)

    after = await credit_of(credit, harness.key("operator"), worker_id)
    assert [(x.fact_id, x.points) for x in after.lines] == [(line.fact_id, 2)]
    assert after.score == before.score == v1.START_SCORE + 2
