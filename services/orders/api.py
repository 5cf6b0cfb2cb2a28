"""gRPC OrderService: protobuf ↔ domain, nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Any

import grpc

from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from libs.common.auth import Role, current_principal
from libs.common.errors import InvalidArgument
from libs.common.protoutil import timestamp
from services.orders import domain, queries, service_layer
from services.orders.mapping import ORDER_STATE_TO_PROTO, SERVICE_TYPE_FROM_PROTO, SERVICE_TYPE_TO_PROTO
from services.orders.queries import OrderReads
from services.orders.service_layer import OrdersUnitOfWork

SERVICE = orders_pb2.DESCRIPTOR.services_by_name["OrderService"]
SERVICE_NAME = SERVICE.full_name
POLICY = {
    f"/{SERVICE_NAME}/CreateOrder": frozenset({Role.PLATFORM}),
    f"/{SERVICE_NAME}/GetOrder": frozenset({Role.PLATFORM}),
}

Context = grpc.aio.ServicerContext[Any, Any]


def order_to_proto(order: domain.Order) -> orders_pb2.Order:
    d = order.draft
    return orders_pb2.Order(
        name=f"orders/{order.order_id}",
        platform_id=order.platform_id,
        service_type=SERVICE_TYPE_TO_PROTO[d.service_type],
        district_code=d.district_code,
        consumer_ref=d.consumer_ref,
        worker_id=d.worker_id or "",
        scheduled_start_time=timestamp(d.scheduled_start),
        duration_hours=d.duration_hours,
        state=ORDER_STATE_TO_PROTO[order.state],
        create_time=timestamp(order.created_at),
    )


def draft_from_proto(order: orders_pb2.Order) -> domain.OrderDraft:
    return domain.OrderDraft(
        service_type=SERVICE_TYPE_FROM_PROTO[order.service_type],
        district_code=order.district_code,
        consumer_ref=order.consumer_ref,
        worker_id=order.worker_id or None,
        scheduled_start=order.scheduled_start_time.ToDatetime(tzinfo=UTC),
        duration_hours=order.duration_hours,
    )


class OrderServicer(orders_pb2_grpc.OrderServiceServicer):
    def __init__(
        self, uow_factory: Callable[[], OrdersUnitOfWork], reads: OrderReads, window: domain.BookingWindow
    ) -> None:
        self._uow = uow_factory
        self._reads = reads
        self._window = window

    async def CreateOrder(
        self, request: orders_pb2.CreateOrderRequest, context: Context
    ) -> orders_pb2.CreateOrderResponse:
        order = await service_layer.create_order(
            self._uow(),
            current_principal().tenant,
            uuid.UUID(request.request_id),
            draft_from_proto(request.order),
            self._window,
        )
        return orders_pb2.CreateOrderResponse(order=order_to_proto(order))

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: Context
    ) -> orders_pb2.GetOrderResponse:
        try:
            order_id = uuid.UUID(request.name.removeprefix("orders/"))
        except ValueError:
            raise InvalidArgument("name", "must be orders/{order_id} with a UUID order id") from None
        order = await queries.get_order(self._reads, current_principal().tenant, order_id)
        return orders_pb2.GetOrderResponse(order=order_to_proto(order))
