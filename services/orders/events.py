"""The events orders publishes (its contract, protos/jiazheng/orders/events/v1/events.proto)."""

from __future__ import annotations

from jiazheng.orders.events.v1 import events_pb2
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.orders.domain import Order
from services.orders.mapping import SERVICE_TYPE_TO_PROTO

SOURCE = "/jiazheng/orders"
TOPIC = events_topic("orders")


def order_created(order: Order) -> EventEnvelope:
    d = order.draft
    message = events_pb2.OrderCreated(
        order_id=str(order.order_id),
        platform_id=order.platform_id,
        service_type=SERVICE_TYPE_TO_PROTO[d.service_type],
        district_code=d.district_code,
        worker_id=d.worker_id or "",
        scheduled_start_time=timestamp(d.scheduled_start),
        duration_hours=d.duration_hours,
        create_time=timestamp(order.created_at),
    )
    return new_event(message, source=SOURCE, subject=f"orders/{order.order_id}", time=order.created_at)
