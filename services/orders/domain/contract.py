"""The household-service contract (家政服务合同), after Beijing's model text (北京市家政服务合同示范文本).

A written contract is mandatory (商务部令2012年第11号). Orders draws one up when the worker accepts
an order's offer, binding the consumer (甲方), the company (乙方) and the company's worker (服务人员).
Its fees are the worker's wage plus the company's management fee (管理费), which together are the
order's price. All money is integer fen (分). Replacing a worker (换阿姨) ends one contract and links
the next, whose trial period (试用期) starts again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from libs.common.errors import InvalidArgument
from services.orders.domain.vocabulary import ServiceType

REPLACEMENT_DAYS = 3  # the firm replaces the worker within 3 days of the consumer's request
MAX_TRIAL_DAYS = 30
MANAGEMENT_FEE_PERCENT = 20  # our default share of the price, not a regulated figure
TRIAL_DAYS_FOR_TERMS = 7

DISPUTE_ROUTE = (
    "双方协商解决",
    "协商不成的，可向行业协会、人民调解委员会或消费者协会申请调解",
    "调解不成的，可拨打12345市民服务热线或12315消费者投诉举报专线",
    "依法申请仲裁或向人民法院提起诉讼",
)
"""争议解决: the route a dispute takes, each step open once the one before has failed."""

REPLACEMENT_CLAUSE = (
    f"甲方要求更换服务人员的，乙方应在{REPLACEMENT_DAYS}日内更换；"
    "更换后，试用期自新服务人员上户之日起重新计算。"
)
"""换阿姨: the firm's duty to replace the worker on request."""


class PaymentCycle(StrEnum):
    """How often the consumer pays (结算周期)."""

    PER_VISIT = "per_visit"  # 按次
    WEEKLY = "weekly"  # 按周
    MONTHLY = "monthly"  # 按月


@dataclass(frozen=True)
class ContractTerms:
    """The money and rules agreed: 服务费 (wage + 管理费), 押金, 试用期 and 违约责任."""

    wage_fen: int
    management_fee_fen: int
    deposit_fen: int
    payment_cycle: PaymentCycle
    trial_days: int
    late_payment_per_mille_per_day: int = 5  # 违约金: ‰ of the overdue amount for each day late
    private_hire_penalty_fen: int = 0  # 私自雇用: 0 when no penalty was agreed
    termination_notice_days: int = 3  # 提前解除合同的通知期


@dataclass(frozen=True)
class ContractParties:
    """Who signs: the consumer (甲方), the company (乙方) and its worker with their service card."""

    platform_id: str
    company_id: str
    worker_id: str
    card_id: str
    consumer_ref: str
    consumer_name: str
    consumer_phone: str
    address: str


@dataclass(frozen=True)
class ContractService:
    """The service content (服务内容): what, where, when, and the order's price."""

    service_type: ServiceType
    district_code: str
    start: datetime
    end: datetime
    hours: int
    special_needs: tuple[str, ...]
    price_fen: int


@dataclass(frozen=True)
class Contract:
    """One signed contract of an order; a replacement names the contract it replaces."""

    contract_id: uuid.UUID
    order_id: uuid.UUID
    parties: ContractParties
    service: ContractService
    terms: ContractTerms
    trial_ends_at: datetime
    replaces_contract_id: uuid.UUID | None
    created_at: datetime

    def canonical_json(self) -> bytes:
        """Every field as JSON: sorted keys, no spaces, UTC instants, money as integer fen."""
        text = json.dumps(_plain(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode()

    def content_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON: what both sides signed."""
        return hashlib.sha256(self.canonical_json()).hexdigest()


def contract_from_canonical(content: bytes) -> Contract:
    """The contract ``canonical_json`` wrote: the store keeps that text and reads it back."""
    data = json.loads(content)
    service, terms, replaces = data["service"], data["terms"], data["replaces_contract_id"]
    return Contract(
        contract_id=uuid.UUID(data["contract_id"]),
        order_id=uuid.UUID(data["order_id"]),
        parties=ContractParties(**data["parties"]),
        service=ContractService(
            **service
            | {
                "service_type": ServiceType(service["service_type"]),
                "start": datetime.fromisoformat(service["start"]),
                "end": datetime.fromisoformat(service["end"]),
                "special_needs": tuple(service["special_needs"]),
            }
        ),
        terms=ContractTerms(**terms | {"payment_cycle": PaymentCycle(terms["payment_cycle"])}),
        trial_ends_at=datetime.fromisoformat(data["trial_ends_at"]),
        replaces_contract_id=uuid.UUID(replaces) if replaces else None,
        created_at=datetime.fromisoformat(data["created_at"]),
    )


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def format_yuan(fen: int) -> str:
    """Integer fen as yuan, exactly: 123450 → ¥1,234.50."""
    yuan, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}¥{yuan:,}.{cents:02d}"


def breach_clauses(terms: ContractTerms) -> tuple[str, ...]:
    """违约责任: the breach clauses, as sentences built from the terms."""
    if terms.private_hire_penalty_fen:
        private_hire = (
            f"甲方私自雇用乙方服务人员的，应向乙方支付违约金{format_yuan(terms.private_hire_penalty_fen)}。"
        )
    else:
        private_hire = "双方未约定甲方私自雇用乙方服务人员的违约金。"
    return (
        f"甲方逾期支付服务费用的，每逾期一日，按逾期金额的千分之{terms.late_payment_per_mille_per_day}"
        "向乙方支付违约金。",
        private_hire,
        f"任何一方提前解除合同的，应提前{terms.termination_notice_days}日通知对方；"
        "未提前通知的，应赔偿对方因此造成的损失。",
        "乙方服务人员在服务中造成甲方损失的，由乙方依法承担赔偿责任。",
    )


def default_terms(service_type: ServiceType, price_fen: int, hourly: bool) -> ContractTerms:
    """Our documented defaults for ``service_type``, the same for every type today.

    The management fee is 20 % of the price, half up to the fen, the rest the wage; no deposit.
    Hourly services (钟点工) pay per visit with no trial; term-priced ones pay monthly with a
    7-day trial period (试用期).
    """
    fee = (price_fen * MANAGEMENT_FEE_PERCENT * 2 + 100) // 200
    cycle, trial = (PaymentCycle.PER_VISIT, 0) if hourly else (PaymentCycle.MONTHLY, TRIAL_DAYS_FOR_TERMS)
    return ContractTerms(
        wage_fen=price_fen - fee, management_fee_fen=fee, deposit_fen=0, payment_cycle=cycle, trial_days=trial
    )


def draft_contract(
    contract_id: uuid.UUID,
    order_id: uuid.UUID,
    parties: ContractParties,
    service: ContractService,
    terms: ContractTerms,
    now: datetime,
    replaces: uuid.UUID | None = None,
) -> Contract:
    """The contract of an accepted offer, its trial running from the service start."""
    problems = _problems(service, terms, now)
    if problems:
        raise InvalidArgument(*problems[0], *problems[1:])
    return Contract(
        contract_id, order_id, parties, service, terms, _trial_end(service.start, terms), replaces, now
    )


def _problems(service: ContractService, terms: ContractTerms, now: datetime) -> list[tuple[str, str]]:
    return _negative(service, terms) + _instant_problems(service, now) + _term_problems(service, terms)


def _negative(service: ContractService, terms: ContractTerms) -> list[tuple[str, str]]:
    amounts = {
        "service.price_fen": service.price_fen,
        "terms.wage_fen": terms.wage_fen,
        "terms.management_fee_fen": terms.management_fee_fen,
        "terms.deposit_fen": terms.deposit_fen,
        "terms.private_hire_penalty_fen": terms.private_hire_penalty_fen,
        "terms.late_payment_per_mille_per_day": terms.late_payment_per_mille_per_day,
        "terms.termination_notice_days": terms.termination_notice_days,
    }
    return [(field, "must not be negative") for field, amount in amounts.items() if amount < 0]


def _instant_problems(service: ContractService, now: datetime) -> list[tuple[str, str]]:
    instants = {"service.start": service.start, "service.end": service.end, "created_at": now}
    naive = [(field, "must be timezone-aware") for field, at in instants.items() if at.tzinfo is None]
    if naive or service.end >= service.start:
        return naive
    return [("service.end", "must not be before service.start")]


def _term_problems(service: ContractService, terms: ContractTerms) -> list[tuple[str, str]]:
    found = []
    if terms.wage_fen + terms.management_fee_fen != service.price_fen:
        found.append(
            (
                "terms.wage_fen",
                f"wage and management fee must add up to the order price of {service.price_fen} fen",
            )
        )
    if not 0 <= terms.trial_days <= MAX_TRIAL_DAYS:
        found.append(("terms.trial_days", f"must be between 0 and {MAX_TRIAL_DAYS}"))
    if terms.deposit_fen > service.price_fen:
        found.append(("terms.deposit_fen", f"must not exceed the order price of {service.price_fen} fen"))
    return found


def _trial_end(trial_start: datetime, terms: ContractTerms) -> datetime:
    return trial_start + timedelta(days=terms.trial_days)


def replacement_due(requested_at: datetime) -> datetime:
    """When the firm must have replaced the worker (换阿姨) asked for at ``requested_at``."""
    return requested_at + timedelta(days=REPLACEMENT_DAYS)


def replacement_contract(
    previous: Contract, new_contract_id: uuid.UUID, worker_id: str, card_id: str, now: datetime
) -> Contract:
    """The contract that follows ``previous`` with a new worker: same order and terms, a fresh trial.

    The trial restarts when the new worker starts: now, or the service start if that is later.
    """
    parties = dataclasses.replace(previous.parties, worker_id=worker_id, card_id=card_id)
    following = draft_contract(
        new_contract_id,
        previous.order_id,
        parties,
        previous.service,
        previous.terms,
        now,
        previous.contract_id,
    )
    return dataclasses.replace(
        following, trial_ends_at=_trial_end(max(now, previous.service.start), previous.terms)
    )
