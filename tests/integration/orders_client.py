"""The orders service as the integration tests call it: any RPC of OrderService or
CatalogueService, a new order, its candidates once matching knows the workers, a ready pair."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from deploy.local.stack import Endpoints
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.orders.v1 import orders_pb2_grpc
from jiazheng.type.v1 import service_type_pb2
from libs.common.beijing import BEIJING
from tests.integration.clients import auth
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.workers_client import create_company, ready_worker


async def orders_call(svc: RunningService, key: str, method: str, request: Any) -> Any:
    async with svc.channel() as channel:
        stub: Any = (
            orders_pb2_grpc.CatalogueServiceStub(channel)
            if method in o.DESCRIPTOR.services_by_name["CatalogueService"].methods_by_name
            else orders_pb2_grpc.OrderServiceStub(channel)
        )
        return await getattr(stub, method)(request, metadata=auth(key))


def start_days_ahead(days_ahead: int) -> Timestamp:
    """10:00 in Beijing, ``days_ahead`` days from today."""
    day = datetime.now(BEIJING).date() + timedelta(days=days_ahead)
    stamp = Timestamp()
    stamp.FromDatetime(datetime(day.year, day.month, day.day, 10, tzinfo=BEIJING).astimezone(UTC))
    return stamp


def start_hours_ahead(hours: float) -> Timestamp:
    """``hours`` from now, to the second."""
    stamp = Timestamp()
    stamp.FromDatetime((datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0))
    return stamp


async def new_order(
    orders: RunningService,
    key: str,
    days_ahead: int = 0,
    district: str = "110105",
    start: Timestamp | None = None,
    **fields: Any,
) -> o.Order:
    """Four hours of elderly care for 李奶奶 at 10:00 ``days_ahead`` days from today (or ``start``)."""
    order = o.Order(
        service_type=service_type_pb2.SERVICE_TYPE_ELDERLY_CARE,
        district_code=district,
        consumer_ref=f"c-{uuid.uuid4().hex[:8]}",
        scheduled_start_time=start or start_days_ahead(days_ahead),
        duration_hours=4,
        contact=o.Contact(full_name="李奶奶", mobile="13800001234"),
        address="北京市朝阳区望京西路8号",
        special_needs=[o.SPECIAL_NEED_ELDERLY_CLIENT],
    )
    for name, value in fields.items():
        setattr(order, name, value)
    request = o.CreateOrderRequest(request_id=str(uuid.uuid4()), order=order)
    reply: o.CreateOrderResponse = await orders_call(orders, key, "CreateOrder", request)
    return reply.order


async def candidates(
    orders: RunningService, key: str, order: o.Order, expected: set[str]
) -> o.MatchOrderResponse:
    """The match once the expected workers are among the candidates (the events take a moment)."""

    async def matched() -> o.MatchOrderResponse | None:
        reply: o.MatchOrderResponse = await orders_call(
            orders, key, "MatchOrder", o.MatchOrderRequest(name=order.name, max_candidates=50)
        )
        found = {c.worker.removeprefix("workers/") for c in reply.candidates}
        return reply if expected <= found else None

    return await eventually(matched, within=60)


async def new_pair(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService, district: str = "110105"
) -> list[tuple[str, str]]:
    """Two ready workers of one new company serving ``district``: ids and card verification links."""
    operator = harness.key("operator")
    company = await create_company(workers, operator)
    return [await ready_worker(endpoints, workers, operator, company.name, district) for _ in range(2)]


async def offered_to(orders: RunningService, key: str, order: o.Order, worker_id: str) -> o.Offer:
    """The order offered to ``worker_id`` by name."""
    request = o.OfferOrderRequest(name=order.name, worker_id=worker_id)
    reply: o.OfferOrderResponse = await orders_call(orders, key, "OfferOrder", request)
    return reply.offer
