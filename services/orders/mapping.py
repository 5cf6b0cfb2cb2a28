"""Domain values ↔ protobuf enums and messages, shared by the API and the published events."""

from __future__ import annotations

from jiazheng.orders.v1 import orders_pb2
from jiazheng.type.v1 import service_type_pb2
from jiazheng.workers.v1 import workers_pb2
from services.orders import domain
from services.orders.domain import OfferState, OrderState, Party, ServiceType, SpecialNeed

SERVICE_TYPE_TO_PROTO: dict[ServiceType, service_type_pb2.ServiceType.ValueType] = {
    t: service_type_pb2.ServiceType.Value(f"SERVICE_TYPE_{t.name}") for t in ServiceType
}
SERVICE_TYPE_FROM_PROTO = {v: k for k, v in SERVICE_TYPE_TO_PROTO.items()}
ORDER_STATE_TO_PROTO: dict[OrderState, orders_pb2.OrderState.ValueType] = {
    s: orders_pb2.OrderState.Value(f"ORDER_STATE_{s.name}") for s in OrderState
}
OFFER_STATE_TO_PROTO: dict[OfferState, orders_pb2.OfferState.ValueType] = {
    s: orders_pb2.OfferState.Value(f"OFFER_STATE_{s.name}") for s in OfferState
}
PARTY_TO_PROTO: dict[Party, orders_pb2.Party.ValueType] = {
    p: orders_pb2.Party.Value(f"PARTY_{p.name}") for p in Party
}
PARTY_FROM_PROTO = {v: k for k, v in PARTY_TO_PROTO.items()}
SPECIAL_NEED_TO_PROTO: dict[SpecialNeed, orders_pb2.SpecialNeed.ValueType] = {
    n: orders_pb2.SpecialNeed.Value(f"SPECIAL_NEED_{n.name}") for n in SpecialNeed
}
SPECIAL_NEED_FROM_PROTO = {v: k for k, v in SPECIAL_NEED_TO_PROTO.items()}
TRADE_TO_PROTO: dict[domain.Trade, workers_pb2.Trade.ValueType] = {
    t: workers_pb2.Trade.Value(f"TRADE_{t.name}") for t in domain.Trade
}
TRADE_FROM_PROTO = {v: k for k, v in TRADE_TO_PROTO.items()}
HEALTH_TIER_TO_PROTO: dict[domain.HealthTier, workers_pb2.HealthTier.ValueType] = {
    t: workers_pb2.HealthTier.Value(f"HEALTH_TIER_{t.name}") for t in domain.HealthTier
}
HEALTH_TIER_FROM_PROTO = {v: k for k, v in HEALTH_TIER_TO_PROTO.items()}
SKILL_LEVEL_TO_PROTO: dict[domain.SkillLevel, workers_pb2.SkillLevel.ValueType] = {
    lv: workers_pb2.SkillLevel.Value(f"SKILL_LEVEL_{lv.name.removeprefix('LEVEL_')}")
    for lv in domain.SkillLevel
}
SKILL_LEVEL_FROM_PROTO = {v: k for k, v in SKILL_LEVEL_TO_PROTO.items()}


def catalogue_entry_to_proto(entry: domain.CatalogueEntry) -> orders_pb2.CatalogueEntry:
    price = entry.price
    rule = (
        orders_pb2.PriceRule(fen_per_hour=price.fen_per_hour)
        if isinstance(price, domain.HourlyRate)
        else orders_pb2.PriceRule(
            term=orders_pb2.TermPrice(fen_per_term=price.fen_per_term, term_hours=price.term_hours)
        )
    )
    return orders_pb2.CatalogueEntry(
        service_type=SERVICE_TYPE_TO_PROTO[entry.service_type],
        health_tier=HEALTH_TIER_TO_PROTO[entry.health_tier],
        trade=TRADE_TO_PROTO[entry.trade],
        min_skill_level=SKILL_LEVEL_TO_PROTO[entry.min_skill_level],
        default_hours=entry.default_hours,
        max_hours=entry.max_hours,
        price=rule,
    )


def catalogue_entry_from_proto(entry: orders_pb2.CatalogueEntry) -> domain.CatalogueEntry:
    rule = entry.price
    price: domain.PriceRule = (
        domain.HourlyRate(rule.fen_per_hour)
        if rule.WhichOneof("rule") == "fen_per_hour"
        else domain.TermPrice(rule.term.fen_per_term, rule.term.term_hours)
    )
    return domain.CatalogueEntry(
        service_type=SERVICE_TYPE_FROM_PROTO[entry.service_type],
        health_tier=HEALTH_TIER_FROM_PROTO[entry.health_tier],
        trade=TRADE_FROM_PROTO[entry.trade],
        min_skill_level=SKILL_LEVEL_FROM_PROTO[entry.min_skill_level],
        default_hours=entry.default_hours,
        max_hours=entry.max_hours,
        price=price,
    )
