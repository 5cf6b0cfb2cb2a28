"""Domain values ↔ protobuf enums, shared by the API and the published events."""

from __future__ import annotations

from jiazheng.orders.v1 import orders_pb2
from jiazheng.type.v1 import service_type_pb2
from services.orders.domain import OrderState, ServiceType

SERVICE_TYPE_TO_PROTO: dict[ServiceType, service_type_pb2.ServiceType.ValueType] = {
    t: service_type_pb2.ServiceType.Value(f"SERVICE_TYPE_{t.name}") for t in ServiceType
}
SERVICE_TYPE_FROM_PROTO = {v: k for k, v in SERVICE_TYPE_TO_PROTO.items()}
ORDER_STATE_TO_PROTO: dict[OrderState, orders_pb2.OrderState.ValueType] = {
    s: orders_pb2.OrderState.Value(f"ORDER_STATE_{s.name}") for s in OrderState
}
