"""Orders domain: pure rules, no I/O, no protobuf."""

from services.orders.domain.order import (
    BookingWindow,
    Order,
    OrderDraft,
    OrderState,
    ServiceType,
    create_order,
)

__all__ = ["BookingWindow", "Order", "OrderDraft", "OrderState", "ServiceType", "create_order"]
