"""Orders domain: pure rules, no I/O, no protobuf."""

from services.orders.domain.catalogue import (
    DEFAULT_CATALOGUE,
    Catalogue,
    CatalogueEntry,
    HourlyRate,
    PriceRule,
    TermPrice,
    change_entry,
    check_entry,
)
from services.orders.domain.order import (
    BookingWindow,
    Order,
    OrderDraft,
    OrderState,
    ServiceType,
    create_order,
)
from services.orders.domain.vocabulary import CardColour, CreditLevel, HealthTier, SkillLevel, Trade

__all__ = [
    "DEFAULT_CATALOGUE",
    "BookingWindow",
    "CardColour",
    "Catalogue",
    "CatalogueEntry",
    "CreditLevel",
    "HealthTier",
    "HourlyRate",
    "Order",
    "OrderDraft",
    "OrderState",
    "PriceRule",
    "ServiceType",
    "SkillLevel",
    "TermPrice",
    "Trade",
    "change_entry",
    "check_entry",
    "create_order",
]
