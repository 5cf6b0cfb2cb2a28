"""What the pages show, in the words a consumer or a regulator reads: plain Chinese for a card's
status and reasons, and the indicators arranged as chart series. Pure functions; no rule is
decided here (colours, reasons, levels and indicators come from the services)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jiazheng.regulator.v1 import regulator_pb2
from jiazheng.workers.v1 import workers_pb2
from libs.common.districts import BEIJING_DISTRICTS


@dataclass(frozen=True)
class Status:
    css: str  # green, yellow, red
    title: str
    advice: str


STATUS = {
    workers_pb2.CARD_COLOUR_GREEN: Status(
        "green", "绿码：可以上门服务", "身份、背景审查、体检和保险均有效。"
    ),
    workers_pb2.CARD_COLOUR_YELLOW: Status(
        "yellow", "黄码：资质待完善", "可以核实身份，但部分资质缺失或过期，请谨慎，必要时联系平台。"
    ),
    workers_pb2.CARD_COLOUR_RED: Status(
        "red", "红码：不得上门服务", "请勿让其入户，并联系平台或拨打 12345 反映。"
    ),
}
REASONS = {
    "background_check_pending": "背景审查尚在进行中",
    "background_check_failed": "背景审查未通过",
    "identity_not_genuine": "身份核验未通过",
    "health_check_missing": "没有有效的健康体检记录",
    "health_check_expired": "健康体检已过期",
    "insurance_missing": "没有投保",
    "insurance_expired": "保险已过期",
    "card_revoked": "服务证已被吊销",
    "suspended": "已被暂停服务",
    "credit_level_d": "信用等级为 D，已暂停派单",
}
REFUSALS = {
    workers_pb2.TOKEN_VERDICT_MALFORMED: "这不是居家上门服务证的二维码。",
    workers_pb2.TOKEN_VERDICT_UNKNOWN_KEY: "此服务证不是由已公布的签发密钥签发的，无法核验。",
    workers_pb2.TOKEN_VERDICT_BAD_SIGNATURE: "此服务证的内容被改动过，签名不符。",
    workers_pb2.TOKEN_VERDICT_EXPIRED: "此服务证已过期。",
    workers_pb2.TOKEN_VERDICT_REVOKED: "此服务证已被吊销或已补发新证。",
    workers_pb2.TOKEN_VERDICT_NOT_YET_VALID: "此服务证尚未生效。",
}
TRADES = {
    workers_pb2.TRADE_MATERNITY_NURSE: "母婴护理员",
    workers_pb2.TRADE_HOUSEKEEPER: "家务服务员",
    workers_pb2.TRADE_FAMILY_CARER: "家庭照护员",
}
SKILL_LEVELS = {
    workers_pb2.SKILL_LEVEL_5: "五级/初级工",
    workers_pb2.SKILL_LEVEL_4: "四级/中级工",
    workers_pb2.SKILL_LEVEL_3: "三级/高级工",
    workers_pb2.SKILL_LEVEL_2: "二级/技师",
}


def reason_text(reason: str) -> str:
    return REASONS.get(reason, reason)


def refusal_text(verdict: workers_pb2.TokenVerdict.ValueType) -> str:
    return REFUSALS.get(verdict, "此服务证无法核验。")


def card_view(reply: workers_pb2.VerifyCardResponse) -> dict[str, Any]:
    """The card page's content for a VALID token."""
    worker = reply.worker
    return {
        "status": STATUS.get(reply.colour, STATUS[workers_pb2.CARD_COLOUR_RED]),
        "reasons": [reason_text(r) for r in reply.reasons],
        "name": worker.masked_full_name,
        "company": worker.company_display_name,
        "trades": [TRADES.get(t, "") for t in worker.trades if t in TRADES],
        "skill_level": SKILL_LEVELS.get(worker.skill_level, "未取得职业技能等级"),
        "health_until": worker.health_check_valid_until or "",
        "insurance_until": worker.insurance_valid_until or "",
        "credit_level": worker.credit_level or "",
    }


CREDIT_LEVELS = ("A", "B", "C", "D")


def district_name(code: str) -> str:
    return BEIJING_DISTRICTS.get(code, code)


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _per_thousand(part: int, whole: int) -> float | None:
    return round(1000 * part / whole, 1) if whole else None


def _hours(seconds: int) -> float | None:
    return round(seconds / 3600, 1) if seconds else None


def dashboard_series(days: Sequence[regulator_pb2.DistrictDay]) -> dict[str, Any]:
    """The indicators as chart series: totals over the districts per day for counts and shares;
    per district for medians and the credit distribution (a worker serving two districts counts
    in both, so those do not add up across districts)."""
    dates = sorted({d.date for d in days})
    districts = sorted({d.district_code for d in days})
    by_date: dict[str, list[regulator_pb2.DistrictDay]] = defaultdict(list)
    for day in days:
        by_date[day.date].append(day)

    def total(field: str) -> list[int]:
        return [sum(getattr(d, field) for d in by_date[date]) for date in dates]

    placed, complaints = total("orders_placed"), total("complaints_filed")
    dispatched, green = total("orders_dispatched"), total("dispatched_green")
    insured, uninsured = total("orders_insured"), total("orders_uninsured")
    return {
        "dates": dates,
        "districts": [{"code": c, "name": district_name(c)} for c in districts],
        "orders_placed": placed,
        "orders_completed": total("orders_completed"),
        "complaints_filed": complaints,
        "complaints_per_thousand": [_per_thousand(c, p) for c, p in zip(complaints, placed, strict=True)],
        "green_share": [_share(g, d) for g, d in zip(green, dispatched, strict=True)],
        "insured_share": [_share(i, i + u) for i, u in zip(insured, uninsured, strict=True)],
        "mediation_backlog": total("mediation_backlog"),
        "sla_breaches": total("sla_breaches"),
        "elderly_care_orders": total("elderly_care_orders"),
        "age_friendly_orders": total("age_friendly_orders"),
        "first_response_hours": _per_district(days, dates, districts, "median_first_response_seconds"),
        "resolution_hours": _per_district(days, dates, districts, "median_resolution_seconds"),
        "credit_levels": _credit_levels(by_date[dates[-1]] if dates else [], districts),
    }


def _per_district(
    days: Iterable[regulator_pb2.DistrictDay], dates: list[str], districts: list[str], field: str
) -> dict[str, list[float | None]]:
    hours = {(d.district_code, d.date): _hours(getattr(d, field)) for d in days}
    return {district_name(c): [hours.get((c, date)) for date in dates] for c in districts}


def _credit_levels(last_day: Iterable[regulator_pb2.DistrictDay], districts: list[str]) -> dict[str, Any]:
    """Workers at each level on the range's last day, per district."""
    counts = {d.district_code: {c.level: c.workers for c in d.credit_levels} for d in last_day}
    return {
        "districts": [district_name(c) for c in districts],
        "levels": {level: [counts.get(c, {}).get(level, 0) for c in districts] for level in CREDIT_LEVELS},
    }
