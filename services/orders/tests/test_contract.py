"""The household-service contract (家政服务合同): drafting, its hash, defaults and replacement (换阿姨)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from libs.common.errors import InvalidArgument
from services.orders.domain.contract import (
    DEFAULT_CANCELLATION,
    DISPUTE_ROUTE,
    REPLACEMENT_DAYS,
    CancellationFee,
    CancellationTerms,
    Contract,
    ContractParties,
    ContractService,
    ContractTerms,
    PaymentCycle,
    breach_clauses,
    cancellation_clauses,
    contract_from_canonical,
    default_terms,
    draft_contract,
    format_yuan,
    replacement_contract,
    replacement_due,
)
from services.orders.domain.vocabulary import ServiceType

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
START = NOW + timedelta(days=3)
CONTRACT_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
ORDER_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")


# A clause of a company's own, unlike the defaults: the consumer pays 5 % with less than 48 hours'
# notice and 30 % with less than 6; the worker's side 15 % with less than 36 and 40 % with less than 2.
CLAUSE = CancellationTerms(
    consumer=(CancellationFee(48, 5), CancellationFee(6, 30)),
    worker=(CancellationFee(36, 15), CancellationFee(2, 40)),
)


def make_parties(**changes: Any) -> ContractParties:
    parties = ContractParties(
        platform_id="p-meituan",
        company_id="co-1",
        worker_id="w-42",
        card_id="card-42",
        consumer_ref="c-123",
        consumer_name="王小红",
        consumer_phone="13800138000",
        address="朝阳区建国路 88 号 2 单元 301",
    )
    return dataclasses.replace(parties, **changes)


def make_service(**changes: Any) -> ContractService:
    service = ContractService(
        service_type=ServiceType.MATERNITY,
        district_code="110105",
        start=START,
        end=START + timedelta(days=26),
        hours=26 * 24,
        special_needs=("会做月子餐", "家中有猫"),
        price_fen=1_500_000,
    )
    return dataclasses.replace(service, **changes)


def make_terms(**changes: Any) -> ContractTerms:
    terms = ContractTerms(
        wage_fen=1_200_000,
        management_fee_fen=300_000,
        deposit_fen=100_000,
        payment_cycle=PaymentCycle.MONTHLY,
        trial_days=7,
        private_hire_penalty_fen=500_000,
        cancellation=CLAUSE,
    )
    return dataclasses.replace(terms, **changes)


def make_contract(
    parties: ContractParties | None = None,
    service: ContractService | None = None,
    terms: ContractTerms | None = None,
    now: datetime = NOW,
) -> Contract:
    return draft_contract(
        CONTRACT_ID,
        ORDER_ID,
        parties or make_parties(),
        service or make_service(),
        terms or make_terms(),
        now,
    )


def _changed(contract: Contract, path: str, value: Any) -> Contract:
    if "." not in path:
        return dataclasses.replace(contract, **{path: value})
    part, name = path.split(".")
    return dataclasses.replace(
        contract, **{part: dataclasses.replace(getattr(contract, part), **{name: value})}
    )


# One different value for every field of a contract, by its dotted path.
FIELD_CHANGES: dict[str, Any] = {
    "contract_id": uuid.UUID(int=99),
    "order_id": uuid.UUID(int=98),
    "trial_ends_at": START + timedelta(days=8),
    "replaces_contract_id": uuid.UUID(int=97),
    "created_at": NOW + timedelta(microseconds=1),
    "parties.platform_id": "p-eleme",
    "parties.company_id": "co-2",
    "parties.worker_id": "w-43",
    "parties.card_id": "card-43",
    "parties.consumer_ref": "c-124",
    "parties.consumer_name": "王小明",
    "parties.consumer_phone": "13800138001",
    "parties.address": "朝阳区建国路 88 号 2 单元 302",
    "service.service_type": ServiceType.INFANT_CARE,
    "service.district_code": "110108",
    "service.start": START + timedelta(hours=1),
    "service.end": START + timedelta(days=27),
    "service.hours": 26 * 24 + 1,
    "service.special_needs": ("会做月子餐",),
    "service.price_fen": 1_500_001,
    "terms.wage_fen": 1_200_001,
    "terms.management_fee_fen": 300_001,
    "terms.deposit_fen": 100_001,
    "terms.payment_cycle": PaymentCycle.WEEKLY,
    "terms.trial_days": 8,
    "terms.late_payment_per_mille_per_day": 6,
    "terms.private_hire_penalty_fen": 500_001,
    "terms.termination_notice_days": 4,
    "terms.cancellation": CancellationTerms(CLAUSE.consumer, (CancellationFee(36, 15),)),
}


def _leaf_paths() -> set[str]:
    nested = {"parties": ContractParties, "service": ContractService, "terms": ContractTerms}
    paths = {field.name for field in dataclasses.fields(Contract)} - nested.keys()
    for name, part in nested.items():
        paths |= {f"{name}.{field.name}" for field in dataclasses.fields(part)}
    return paths


def test_the_hash_test_changes_every_field_of_a_contract() -> None:
    assert set(FIELD_CHANGES) == _leaf_paths()


def test_equal_contracts_have_the_same_json_and_hash() -> None:
    beijing = timezone(timedelta(hours=8))
    in_beijing_time = make_contract(now=NOW.astimezone(beijing))

    assert in_beijing_time == make_contract()
    assert in_beijing_time.canonical_json() == make_contract().canonical_json()
    assert in_beijing_time.content_hash() == make_contract().content_hash()


@pytest.mark.parametrize(("path", "value"), FIELD_CHANGES.items())
def test_changing_any_single_field_changes_the_hash(path: str, value: Any) -> None:
    contract = make_contract()

    changed = _changed(contract, path, value)

    assert changed.content_hash() != contract.content_hash()


def test_the_hash_is_sha256_of_the_canonical_json() -> None:
    contract = make_contract()

    assert contract.content_hash() == hashlib.sha256(contract.canonical_json()).hexdigest()


def test_canonical_json_has_sorted_keys_no_spaces_utc_instants_and_integer_money() -> None:
    canonical = make_contract(now=NOW.astimezone(timezone(timedelta(hours=8)))).canonical_json()
    data = json.loads(canonical)

    assert json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == canonical
    assert data["created_at"] == "2024-06-01T12:00:00+00:00"
    assert data["terms"]["wage_fen"] == 1_200_000
    assert data["replaces_contract_id"] is None


@pytest.mark.parametrize("replaces", [None, uuid.UUID(int=7)])
def test_canonical_json_round_trips_to_the_same_values(replaces: uuid.UUID | None) -> None:
    contract = dataclasses.replace(make_contract(), replaces_contract_id=replaces)

    assert contract_from_canonical(contract.canonical_json()) == contract


def test_a_contract_without_a_cancellation_clause_keeps_the_json_and_hash_it_was_signed_with() -> None:
    # Drafted before contracts carried the clause: its canonical JSON has no key for it.
    contract = make_contract(terms=make_terms(cancellation=None))
    data = json.loads(contract.canonical_json())

    assert "cancellation" not in data["terms"]
    assert contract_from_canonical(contract.canonical_json()) == contract
    assert contract.content_hash() == hashlib.sha256(contract.canonical_json()).hexdigest()


def test_the_cancellation_clause_is_in_the_canonical_json_and_round_trips() -> None:
    contract = make_contract()
    data = json.loads(contract.canonical_json())

    assert data["terms"]["cancellation"] == {
        "consumer": [{"notice_hours": 48, "percent": 5}, {"notice_hours": 6, "percent": 30}],
        "worker": [{"notice_hours": 36, "percent": 15}, {"notice_hours": 2, "percent": 40}],
    }
    assert contract_from_canonical(contract.canonical_json()).terms.cancellation == CLAUSE


def test_a_draft_runs_its_trial_from_the_service_start() -> None:
    contract = make_contract()

    assert contract.trial_ends_at == START + timedelta(days=7)
    assert contract.created_at == NOW
    assert contract.replaces_contract_id is None


@pytest.mark.parametrize(
    ("service", "terms", "field", "says"),
    [
        ({}, {"wage_fen": 1_200_001}, "terms.wage_fen", "must add up to the order price of 1500000 fen"),
        ({"price_fen": 1_500_001}, {}, "terms.wage_fen", "must add up to the order price of 1500001 fen"),
        ({}, {"wage_fen": 1_500_001, "management_fee_fen": -1}, "terms.management_fee_fen", "negative"),
        ({"price_fen": -1}, {"wage_fen": -1, "management_fee_fen": 0}, "service.price_fen", "negative"),
        ({}, {"deposit_fen": -1}, "terms.deposit_fen", "negative"),
        ({}, {"private_hire_penalty_fen": -1}, "terms.private_hire_penalty_fen", "negative"),
        ({}, {"late_payment_per_mille_per_day": -1}, "terms.late_payment_per_mille_per_day", "negative"),
        ({}, {"termination_notice_days": -1}, "terms.termination_notice_days", "negative"),
        ({}, {"trial_days": -1}, "terms.trial_days", "between 0 and 30"),
        ({}, {"trial_days": 31}, "terms.trial_days", "between 0 and 30"),
        ({}, {"deposit_fen": 1_500_001}, "terms.deposit_fen", "must not exceed the order price"),
        ({"start": START.replace(tzinfo=None)}, {}, "service.start", "timezone-aware"),
        ({"end": START - timedelta(seconds=1)}, {}, "service.end", "before service.start"),
        (
            {},
            {"cancellation": CancellationTerms((CancellationFee(0, 10),), ())},
            "terms.cancellation.consumer[0].notice_hours",
            "between 1 and 8784",
        ),
        (
            {},
            {"cancellation": CancellationTerms((), (CancellationFee(24, 10), CancellationFee(8785, 10)))},
            "terms.cancellation.worker[1].notice_hours",
            "between 1 and 8784",
        ),
        (
            {},
            {"cancellation": CancellationTerms((), (CancellationFee(24, 101),))},
            "terms.cancellation.worker[0].percent",
            "between 0 and 100",
        ),
        (
            {},
            {"cancellation": CancellationTerms((CancellationFee(24, -1),), ())},
            "terms.cancellation.consumer[0].percent",
            "between 0 and 100",
        ),
        (
            {},
            {"cancellation": CancellationTerms((CancellationFee(24, 20), CancellationFee(2, 10)), ())},
            "terms.cancellation.consumer",
            "a shorter notice must not cost less",
        ),
        (
            {},
            {"cancellation": CancellationTerms((), (CancellationFee(24, 10), CancellationFee(24, 20)))},
            "terms.cancellation.worker",
            "each fee needs its own notice",
        ),
        (
            {},
            {"cancellation": CancellationTerms(tuple(CancellationFee(h, 10) for h in range(1, 7)), ())},
            "terms.cancellation.consumer",
            "at most 5 fees",
        ),
    ],
)
def test_draft_refusals_name_the_field(
    service: dict[str, Any], terms: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        make_contract(service=make_service(**service), terms=make_terms(**terms))

    assert caught.value.field == field
    assert says in caught.value.description


def test_a_draft_made_at_a_naive_instant_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        make_contract(now=NOW.replace(tzinfo=None))

    assert (caught.value.field, caught.value.description) == ("created_at", "must be timezone-aware")


@pytest.mark.parametrize(
    ("service", "terms"),
    [
        ({}, {"trial_days": 0}),
        ({}, {"trial_days": 30}),
        ({}, {"deposit_fen": 1_500_000}),
        ({"end": START}, {}),
        ({}, {"cancellation": CancellationTerms((), ())}),  # cancelling is free for both
        ({}, {"cancellation": CancellationTerms((CancellationFee(1, 0), CancellationFee(8784, 0)), ())}),
        ({}, {"cancellation": CancellationTerms((), tuple(CancellationFee(h, 100) for h in range(1, 6)))}),
    ],
)
def test_boundaries_are_accepted(service: dict[str, Any], terms: dict[str, Any]) -> None:
    contract = make_contract(service=make_service(**service), terms=make_terms(**terms))

    assert contract.terms == make_terms(**terms)


@pytest.mark.parametrize(
    ("price", "fee", "wage"),
    [
        (4_501, 900, 3_601),
        (4_503, 901, 3_602),
        (3, 1, 2),
        (1, 0, 1),
        (0, 0, 0),
        (1_500_000, 300_000, 1_200_000),
    ],
)
@pytest.mark.parametrize("hourly", [True, False])
def test_default_terms_take_a_fifth_half_up_and_add_up(price: int, fee: int, wage: int, hourly: bool) -> None:
    terms = default_terms(ServiceType.CLEANING, price, hourly)

    assert (terms.management_fee_fen, terms.wage_fen, terms.deposit_fen) == (fee, wage, 0)
    assert make_contract(service=make_service(price_fen=price), terms=terms).terms == terms


def test_hourly_defaults_pay_per_visit_without_a_trial() -> None:
    terms = default_terms(ServiceType.CLEANING, 13_500, hourly=True)

    assert (terms.payment_cycle, terms.trial_days) == (PaymentCycle.PER_VISIT, 0)


def test_term_defaults_pay_monthly_after_a_seven_day_trial() -> None:
    terms = default_terms(ServiceType.LIVE_IN_HOUSEKEEPER, 700_000, hourly=False)

    assert (terms.payment_cycle, terms.trial_days) == (PaymentCycle.MONTHLY, 7)
    assert (terms.late_payment_per_mille_per_day, terms.private_hire_penalty_fen) == (5, 0)
    assert terms.termination_notice_days == 3


@pytest.mark.parametrize("hourly", [True, False])
def test_default_terms_carry_the_default_cancellation_clause_for_both_sides(hourly: bool) -> None:
    terms = default_terms(ServiceType.CLEANING, 13_500, hourly)

    assert terms.cancellation == DEFAULT_CANCELLATION
    fees = [(fee.notice_hours, fee.percent) for fee in DEFAULT_CANCELLATION.consumer]
    assert fees == [(24, 10), (2, 20)]  # the figures orders charged before contracts had the clause
    assert DEFAULT_CANCELLATION.worker == DEFAULT_CANCELLATION.consumer


def test_replacement_is_due_three_days_after_the_request() -> None:
    assert REPLACEMENT_DAYS == 3
    assert replacement_due(NOW) == NOW + timedelta(days=3)


def test_a_replacement_links_the_previous_contract_and_keeps_order_service_and_terms() -> None:
    previous = make_contract()
    now = START + timedelta(days=5)

    following = replacement_contract(previous, uuid.UUID(int=5), "w-77", "card-77", now)

    assert following.contract_id == uuid.UUID(int=5)
    assert following.replaces_contract_id == previous.contract_id
    assert (following.order_id, following.service, following.terms) == (
        ORDER_ID,
        make_service(),
        make_terms(),
    )
    assert following.parties == make_parties(worker_id="w-77", card_id="card-77")
    assert following.created_at == now


def test_a_replacement_restarts_the_trial_from_now_once_the_service_has_started() -> None:
    now = START + timedelta(days=5)

    following = replacement_contract(make_contract(), uuid.UUID(int=5), "w-77", "card-77", now)

    assert following.trial_ends_at == now + timedelta(days=7)


def test_a_replacement_before_the_service_starts_keeps_the_trial_from_the_start() -> None:
    following = replacement_contract(make_contract(), uuid.UUID(int=5), "w-77", "card-77", NOW)

    assert following.trial_ends_at == START + timedelta(days=7)


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "¥0.00"), (5, "¥0.05"), (1_234, "¥12.34"), (123_450, "¥1,234.50"), (100_000_000, "¥1,000,000.00")],
)
def test_yuan_are_formatted_exactly_from_fen(fen: int, text: str) -> None:
    assert format_yuan(fen) == text


def test_breach_clauses_carry_the_agreed_rate_penalty_and_notice() -> None:
    terms = make_terms(late_payment_per_mille_per_day=3, termination_notice_days=7)

    text = "".join(breach_clauses(terms))

    assert "千分之3" in text
    assert "¥5,000.00" in text
    assert "提前7日" in text


def test_without_an_agreed_penalty_the_clause_says_none_was_agreed() -> None:
    text = "".join(breach_clauses(make_terms(private_hire_penalty_fen=0)))

    assert "未约定" in text
    assert "¥" not in text


def test_the_dispute_route_runs_from_negotiation_to_court() -> None:
    text = "".join(DISPUTE_ROUTE)

    steps = ["协商", "行业协会", "人民调解委员会", "消费者协会", "12345", "12315", "仲裁", "诉讼"]
    assert [text.index(step) for step in steps] == sorted(text.index(step) for step in steps)


def test_cancellation_clauses_state_each_sides_fees_with_the_amounts() -> None:
    consumer, worker = cancellation_clauses(make_terms(), 1_500_000)

    assert consumer == (
        "甲方在服务开始前48小时以上取消服务的，不支付取消费用；"
        "不足48小时取消的，支付服务费用的5%（¥750.00）；"
        "不足6小时或服务开始后取消的，支付服务费用的30%（¥4,500.00），由甲方向乙方支付。"
    )
    assert worker.startswith("乙方或其服务人员在服务开始前36小时以上取消服务的，不支付取消费用；")
    assert (
        "不足2小时或服务开始后取消的，支付服务费用的40%（¥6,000.00），由乙方或其服务人员向甲方支付" in worker
    )


def test_cancellation_clauses_say_when_a_side_cancels_free_and_are_absent_without_a_clause() -> None:
    free = make_terms(cancellation=CancellationTerms((CancellationFee(24, 0),), ()))

    assert cancellation_clauses(free, 1_000) == (
        "甲方取消服务的，不支付取消费用。",
        "乙方或其服务人员取消服务的，不支付取消费用。",
    )
    assert cancellation_clauses(make_terms(cancellation=None), 1_000) == ()
