"""The orders service's gRPC APIs: OrderService and CatalogueService, each with its policy."""

from services.orders.api.catalogue import POLICY as CATALOGUE_POLICY
from services.orders.api.catalogue import SERVICE as CATALOGUE_SERVICE
from services.orders.api.catalogue import CatalogueServicer
from services.orders.api.convert import draft_from_proto, order_to_proto
from services.orders.api.orders import POLICY as ORDER_POLICY
from services.orders.api.orders import SERVICE as ORDER_SERVICE
from services.orders.api.orders import OrderServicer

SERVICES = (ORDER_SERVICE, CATALOGUE_SERVICE)
POLICY = {**ORDER_POLICY, **CATALOGUE_POLICY}

__all__ = [
    "CATALOGUE_SERVICE",
    "ORDER_SERVICE",
    "POLICY",
    "SERVICES",
    "CatalogueServicer",
    "OrderServicer",
    "draft_from_proto",
    "order_to_proto",
]
