"""The household-service contract (家政服务合同), after Beijing's model text (北京市家政服务合同示范文本).

A written contract is mandatory (商务部令2012年第11号). Orders draws one up when the worker accepts
an order's offer, binding the consumer (甲方), the company (乙方) and the company's worker (服务人员).
Its fees are the worker's wage plus the company's management fee (管理费), which together are the
order's price. All money is integer fen (分). Replacing a worker (换阿姨) ends one contract and links
the next, whose trial period (试用期) starts again. Its cancellation clause (取消服务) sets what
cancelling costs each side, by the notice given before the start.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from libs.common.errors import InvalidArgument
from services.orders.domain.vocabulary import ServiceType

REPLACEMENT_DAYS = 3  # the firm replaces the worker within 3 days of the consumer's request
MAX_TRIAL_DAYS = 30
MANAGEMENT_FEE_PERCENT = 20  # our default share of the price, not a regulated figure
TRIAL_DAYS_FOR_TERMS = 7
MAX_CANCELLATION_FEES = 5  # per side
MAX_NOTICE_HOURS = 366 * 24  # the booking window's reach

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
class CancellationFee:
    """Cancelling with less than ``notice_hours`` of notice before the start (or after it) costs
    the side that cancels ``percent`` of the price."""

    notice_hours: int
    percent: int


@dataclass(frozen=True)
class CancellationTerms:
    """取消服务: the fees of cancelling an assigned order, for each side. A shorter notice never
    costs less; cancelling with more notice than every fee names is free."""

    consumer: tuple[CancellationFee, ...]
    worker: tuple[CancellationFee, ...]


# Our default clause (docs/orders.md), the same for both sides: 10 % of the price with less than
# 24 hours' notice, 20 % with less than 2 hours' or after the start.
DEFAULT_CANCELLATION_FEES = (CancellationFee(24, 10), CancellationFee(2, 20))
DEFAULT_CANCELLATION = CancellationTerms(DEFAULT_CANCELLATION_FEES, DEFAULT_CANCELLATION_FEES)

# A field the canonical JSON leaves out while it is None: contracts drafted before the field
# existed keep the content, and so the hash, they were signed with.
_OMITTED_WHEN_NONE = {"omit_when_none": True}


def cancellation_percent(fees: tuple[CancellationFee, ...], notice: timedelta) -> int:
    """The share of the price a cancellation with ``notice`` before the start costs (negative:
    after it): the highest of the fees whose notice it falls short of; 0 when none."""
    return max((fee.percent for fee in fees if notice < timedelta(hours=fee.notice_hours)), default=0)


def share_of(price_fen: int, percent: int) -> int:
    """``percent`` of ``price_fen``, rounded half up to the fen."""
    return (price_fen * percent + 50) // 100


@dataclass(frozen=True)
class ContractTerms:
    """The money and rules agreed: 服务费 (wage + 管理费), 押金, 试用期, 违约责任 and 取消服务.

    ``cancellation`` None: a contract drafted before contracts carried the clause; the default
    clause applies to it.
    """

    wage_fen: int
    management_fee_fen: int
    deposit_fen: int
    payment_cycle: PaymentCycle
    trial_days: int
    late_payment_per_mille_per_day: int = 5  # 违约金: ‰ of the overdue amount for each day late
    private_hire_penalty_fen: int = 0  # 私自雇用: 0 when no penalty was agreed
    termination_notice_days: int = 3  # 提前解除合同的通知期
    cancellation: CancellationTerms | None = field(default=None, metadata=_OMITTED_WHEN_NONE)


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
        terms=ContractTerms(
            **terms
            | {
                "payment_cycle": PaymentCycle(terms["payment_cycle"]),
                "cancellation": _cancellation_from_plain(terms.get("cancellation")),
            }
        ),
        trial_ends_at=datetime.fromisoformat(data["trial_ends_at"]),
        replaces_contract_id=uuid.UUID(replaces) if replaces else None,
        created_at=datetime.fromisoformat(data["created_at"]),
    )


def _cancellation_from_plain(plain: dict[str, list[dict[str, int]]] | None) -> CancellationTerms | None:
    if plain is None:
        return None
    consumer, worker = (
        tuple(CancellationFee(**fee) for fee in plain[side]) for side in ("consumer", "worker")
    )
    return CancellationTerms(consumer, worker)


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get("omit_when_none") and getattr(value, f.name) is None)
        }
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


def cancellation_clauses(terms: ContractTerms, price_fen: int) -> tuple[str, ...]:
    """取消服务: what cancelling costs each side, as sentences built from the clause and the price."""
    clause = terms.cancellation
    if clause is None:
        return ()
    sides = (("甲方", "乙方", clause.consumer), ("乙方或其服务人员", "甲方", clause.worker))
    return tuple(_side_clause(who, to, fees, price_fen) for who, to, fees in sides)


def _side_clause(who: str, to: str, fees: tuple[CancellationFee, ...], price_fen: int) -> str:
    charged = sorted((fee for fee in fees if fee.percent), key=lambda fee: -fee.notice_hours)
    if not charged:
        return f"{who}取消服务的，不支付取消费用。"
    last = len(charged) - 1
    bands = "；".join(
        f"不足{fee.notice_hours}小时{'或服务开始后' if n == last else ''}取消的，"
        f"支付服务费用的{fee.percent}%（{format_yuan(share_of(price_fen, fee.percent))}）"
        for n, fee in enumerate(charged)
    )
    return (
        f"{who}在服务开始前{charged[0].notice_hours}小时以上取消服务的，不支付取消费用；"
        f"{bands}，由{who}向{to}支付。"
    )


def default_terms(service_type: ServiceType, price_fen: int, hourly: bool) -> ContractTerms:
    """Our documented defaults for ``service_type``, the same for every type today.

    The management fee is 20 % of the price, half up to the fen, the rest the wage; no deposit.
    Hourly services (钟点工) pay per visit with no trial; term-priced ones pay monthly with a
    7-day trial period (试用期). The cancellation clause is ``DEFAULT_CANCELLATION``.
    """
    fee = (price_fen * MANAGEMENT_FEE_PERCENT * 2 + 100) // 200
    cycle, trial = (PaymentCycle.PER_VISIT, 0) if hourly else (PaymentCycle.MONTHLY, TRIAL_DAYS_FOR_TERMS)
    return ContractTerms(
        wage_fen=price_fen - fee,
        management_fee_fen=fee,
        deposit_fen=0,
        payment_cycle=cycle,
        trial_days=trial,
        cancellation=DEFAULT_CANCELLATION,
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
    found = _negative(service, terms) + _instant_problems(service, now) + _term_problems(service, terms)
    return found + _cancellation_problems(terms.cancellation)


def _cancellation_problems(clause: CancellationTerms | None) -> list[tuple[str, str]]:
    if clause is None:
        return []
    sides = (("consumer", clause.consumer), ("worker", clause.worker))
    return [problem for side, fees in sides for problem in _fee_problems(f"terms.cancellation.{side}", fees)]


def _fee_problems(path: str, fees: tuple[CancellationFee, ...]) -> list[tuple[str, str]]:
    found = []
    if len(fees) > MAX_CANCELLATION_FEES:
        found.append((path, f"must have at most {MAX_CANCELLATION_FEES} fees"))
    for n, fee in enumerate(fees):
        if not 1 <= fee.notice_hours <= MAX_NOTICE_HOURS:
            found.append((f"{path}[{n}].notice_hours", f"must be between 1 and {MAX_NOTICE_HOURS}"))
        if not 0 <= fee.percent <= 100:
            found.append((f"{path}[{n}].percent", "must be between 0 and 100"))
    by_notice = sorted(fees, key=lambda fee: fee.notice_hours)
    pairs = itertools.pairwise(by_notice)
    if len({fee.notice_hours for fee in fees}) < len(fees) or any(a.percent < b.percent for a, b in pairs):
        found.append((path, "each fee needs its own notice, and a shorter notice must not cost less"))
    return found


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
