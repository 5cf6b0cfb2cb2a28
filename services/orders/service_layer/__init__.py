"""Orders use cases: each runs in one unit of work, state and events committed together."""

from services.orders.service_layer.offers import (
    OFFER_TIMER,
    Dispatch,
    Matcher,
    accept_offer,
    decline_offer,
    expire_offer,
    match_order,
    offer_order,
)
from services.orders.service_layer.orders import create_order, current_catalogue, update_catalogue_entry
from services.orders.service_layer.ports import (
    CatalogueRepository,
    ContractRepository,
    OfferRepository,
    OrderRepository,
    OrdersUnitOfWork,
    StoredContract,
    StoredOrder,
)
from services.orders.service_layer.visits import (
    CardKeys,
    cancel_order,
    check_in,
    check_out,
    dispute_charge,
    get_contract,
    rate_order,
    replace_worker,
    report_no_show,
)

__all__ = [
    "OFFER_TIMER",
    "CardKeys",
    "CatalogueRepository",
    "ContractRepository",
    "Dispatch",
    "Matcher",
    "OfferRepository",
    "OrderRepository",
    "OrdersUnitOfWork",
    "StoredContract",
    "StoredOrder",
    "accept_offer",
    "cancel_order",
    "check_in",
    "check_out",
    "create_order",
    "current_catalogue",
    "decline_offer",
    "dispute_charge",
    "expire_offer",
    "get_contract",
    "match_order",
    "offer_order",
    "rate_order",
    "replace_worker",
    "report_no_show",
    "update_catalogue_entry",
]
