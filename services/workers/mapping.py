"""Domain values ↔ protobuf enums (jiazheng.workers.v1), shared by the API and the events.

The domain's names equal the proto's after the enum prefix; skill levels and health tiers also
share their numbers.
"""

from __future__ import annotations

from jiazheng.workers.v1 import workers_pb2 as pb
from services.workers.domain import CardColour, EmploymentModel, HealthTier, SkillLevel, SpecialAbility, Trade

TRADE: dict[Trade, pb.Trade.ValueType] = {t: pb.Trade.Value(f"TRADE_{t.name}") for t in Trade}
TRADE_FROM_PROTO = {v: k for k, v in TRADE.items()}
EMPLOYMENT_MODEL: dict[EmploymentModel, pb.EmploymentModel.ValueType] = {
    m: pb.EmploymentModel.Value(f"EMPLOYMENT_MODEL_{m.name}") for m in EmploymentModel
}
EMPLOYMENT_MODEL_FROM_PROTO = {v: k for k, v in EMPLOYMENT_MODEL.items()}
CARD_COLOUR: dict[CardColour, pb.CardColour.ValueType] = {
    c: pb.CardColour.Value(f"CARD_COLOUR_{c.name}") for c in CardColour
}
CARD_COLOUR_FROM_PROTO = {v: k for k, v in CARD_COLOUR.items()}
SPECIAL_ABILITY: dict[SpecialAbility, pb.SpecialAbility.ValueType] = {
    a: pb.SpecialAbility.Value(f"SPECIAL_ABILITY_{a.name}") for a in SpecialAbility
}
SPECIAL_ABILITY_FROM_PROTO = {v: k for k, v in SPECIAL_ABILITY.items()}
SKILL_LEVEL: dict[SkillLevel, pb.SkillLevel.ValueType] = {
    s: pb.SkillLevel.Value(f"SKILL_{s.name}") for s in SkillLevel
}
HEALTH_TIER: dict[HealthTier, pb.HealthTier.ValueType] = {
    h: pb.HealthTier.Value(f"HEALTH_TIER_{h.name}") for h in HealthTier
}
HEALTH_TIER_FROM_PROTO = {v: k for k, v in HEALTH_TIER.items()}
