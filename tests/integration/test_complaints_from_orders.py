"""A disputed no-show travels from orders to complaints as an event, with no call between them,
and enters the mediation queue when the other side rejects it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from deploy.local.stack import Endpoints
from jiazheng.complaints.events.v1 import events_pb2 as ce
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.type.v1 import service_type_pb2
from jiazheng.workers.v1 import workers_pb2 as w
from libs.common.events import envelope_from_kafka
from libs.common.kafka import events_topic
from tests.integration.complaints_client import complaints_call, file_worker_complaint
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import read_topic
from tests.integration.test_orders_lifecycle import orders_call
from tests.integration.workers_client import becomes, create_company, ready_worker

pytestmark = pytest.mark.integration


async def _no_show(orders: RunningService, platform: str, worker_id: str) -> o.Order:
    """An order that started half an hour ago, assigned to ``worker_id``, who did not come."""
    start = Timestamp()
    start.FromDatetime(datetime.now(UTC) - timedelta(minutes=30))
    order = o.Order(
        service_type=service_type_pb2.SERVICE_TYPE_ELDERLY_CARE,
        district_code="110105",
        consumer_ref="c-no-show",
        scheduled_start_time=start,
        duration_hours=4,
        contact=o.Contact(full_name="赵先生", mobile="13700002222"),
        address="北京市朝阳区酒仙桥路2号",
    )
    created = (
        await orders_call(
            orders, platform, "CreateOrder", o.CreateOrderRequest(request_id=str(uuid.uuid4()), order=order)
        )
    ).order

    async def offered() -> o.Offer | None:
        try:
            reply = await orders_call(
                orders, platform, "OfferOrder", o.OfferOrderRequest(name=created.name, worker_id=worker_id)
            )
        except grpc.aio.AioRpcError as refused:  # not yet eligible: the workers events are on their way
            if refused.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return None
        offer: o.Offer = reply.offer
        return offer

    offer = await eventually(offered, within=60)
    await orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=offer.name))
    reported = await orders_call(
        orders, platform, "ReportNoShow", o.ReportNoShowRequest(name=created.name, at_fault=o.PARTY_WORKER)
    )
    return reported.order  # type: ignore[no-any-return]


async def test_a_disputed_no_show_arrives_as_an_event_and_enters_the_queue(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    complaints: RunningService,
) -> None:
    platform = harness.key("demo-platform")
    company = await create_company(workers, harness.key("operator"))
    worker_id, _ = await ready_worker(endpoints, workers, harness.key("operator"), company.name)
    order = await _no_show(orders, platform, worker_id)

    dispute = o.DisputeChargeRequest(
        name=order.name, disputed_by=o.PARTY_WORKER, reason="consumer was not home"
    )
    await orders_call(orders, platform, "DisputeCharge", dispute)

    async def filed() -> ce.CaseFiled | None:
        for record in await read_topic(endpoints.kafka_bootstrap, events_topic("complaints")):
            event = envelope_from_kafka(record.headers, record.value)
            if event.type.endswith(".CaseFiled"):
                case = event.parse(ce.CaseFiled)
                if case.order_id == order.name.removeprefix("orders/"):
                    return case
        return None

    case_filed = await eventually(filed, within=60)
    assert case_filed.kind == c.CASE_KIND_CHARGE_DISPUTE
    assert case_filed.category == c.CATEGORY_NO_SHOW
    assert case_filed.worker_id == worker_id
    name = f"cases/{case_filed.case_id}"

    # The consumer's side (the platform) answers and rejects: the case goes to the queue.
    await complaints_call(complaints, platform, "DecideCase", c.DecideCaseRequest(name=name, accept=False))
    queue = await complaints_call(
        complaints, harness.key("consumer-mediator"), "ListQueue", c.ListQueueRequest(page_size=200)
    )
    assert name in [q.name for q in queue.cases]


async def test_a_substantiated_severe_complaint_turns_the_workers_card_red(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService, complaints: RunningService
) -> None:
    operator = harness.key("operator")
    company = await create_company(workers, operator)
    worker_id, _ = await ready_worker(endpoints, workers, operator, company.name)
    platform = harness.key("demo-platform")
    case = await file_worker_complaint(
        complaints, platform, worker_id, company.name, c.CATEGORY_ABUSE, description="服务中辱骂老人"
    )
    outcome = c.Outcome(result=c.OUTCOME_RESULT_SUBSTANTIATED, at_fault=c.PARTY_KIND_WORKER)
    resolve = c.ResolveCaseRequest(name=case, outcome=outcome)
    await complaints_call(complaints, operator, "ResolveCase", resolve)

    await becomes(workers, operator, f"workers/{worker_id}", w.CARD_COLOUR_RED)
