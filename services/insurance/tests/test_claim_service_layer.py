"""Claim and order-coverage use cases through the fake unit of work: what is stored, what is
published (once), and who may see or do what."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from jiazheng.insurance.events.v1 import events_pb2 as ev
from libs.common.auth import Principal, Role
from libs.common.errors import FailedPrecondition, InvalidArgument, NotFound
from libs.common.events import event_type_of
from libs.common.paging import encode_key_token
from libs.common.testing import FixedClock
from services.insurance.domain import claims as c
from services.insurance.domain.cover import CoverKind
from services.insurance.domain.orders import Order
from services.insurance.domain.policies import Applicant, Issue, issue
from services.insurance.domain.products import DEFAULT_PRODUCTS, load_catalogue
from services.insurance.domain.vocabulary import ServiceType
from services.insurance.service_layer import claims, coverage
from services.insurance.service_layer.claim_ports import ClaimRules
from services.insurance.tests.fakes import FakeInsuranceUnitOfWork

CATALOGUE = load_catalogue(DEFAULT_PRODUCTS)
RULES = ClaimRules(CATALOGUE)
TODAY = date(2026, 12, 1)
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
COMPANY = Principal("co-1-admin", Role.COMPANY, "co-1")
INSURER = Principal("demo-insurer", Role.INSURER, "demo-insurer")
OTHER_INSURER = Principal("other-insurer", Role.INSURER, "other-insurer")
OPERATOR = Principal("ops", Role.OPERATOR, "")


def order(order_id: str = "o-1", worker_id: str = "w-1") -> Order:
    return Order(
        order_id, "p-1", "co-1", worker_id, ServiceType.CLEANING, "110105", START, START + timedelta(hours=4)
    )


async def insured_uow(*worker_ids: str, product: str = "package-standard") -> FakeInsuranceUnitOfWork:
    uow = FakeInsuranceUnitOfWork(FixedClock(START - timedelta(hours=1)))
    workers = tuple(Applicant(w, date(1990, 5, 1), frozenset({ServiceType.CLEANING}), 2) for w in worker_ids)
    chosen = CATALOGUE.get(product)
    assert chosen is not None
    policy = issue(Issue("co-1", chosen, TODAY, None, workers), uuid.uuid4(), TODAY, uow.clock.now())
    async with uow:
        await uow.policies.add_once(policy, "co-1", uuid.uuid4())
        await uow.commit()
    return uow


async def accepted_and_checked_in(uow: FakeInsuranceUnitOfWork, the_order: Order | None = None) -> Order:
    the_order = the_order or order()
    async with uow:
        await coverage.accept_order(uow, the_order)
        await coverage.update_order(uow, the_order.order_id, check_in=START)
        await uow.commit()
    uow.clock.advance(timedelta(hours=3))
    return the_order


def types_published(uow: FakeInsuranceUnitOfWork) -> list[str]:
    return [p.event.type.rsplit(".", 1)[-1] for p in uow.published]


def filing(claimed: int = 3_000_00, kind: CoverKind = CoverKind.PROFESSIONAL_LIABILITY) -> c.ClaimFiling:
    return c.ClaimFiling("o-1", kind, START + timedelta(hours=1), claimed, "a vase broken")


# -- order coverage ----------------------------------------------------------------------------


async def test_an_accepted_order_of_an_insured_worker_is_covered_and_published() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    stored = uow.orders.by_id["o-1"]
    assert stored.coverage is not None
    assert (stored.coverage.covered, stored.coverage.insurer, stored.check_in) == (
        True,
        "demo-insurer",
        START,
    )
    recorded = uow.published[-1].event
    assert recorded.type == event_type_of(ev.OrderCoverageRecorded())
    assert recorded.subject == "orders/o-1"
    assert recorded.parse(ev.OrderCoverageRecorded).policy_id == str(stored.coverage.policy_id)


async def test_an_order_of_an_uninsured_worker_is_flagged_with_the_reason_to_its_company_only() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow, order("o-2", "w-9"))
    flagged = uow.published[-1].event.parse(ev.OrderUncovered)
    assert (flagged.order_id, flagged.reason, flagged.district_code) == (
        "o-2",
        "no policy lists the worker",
        "110105",
    )
    listed, token = await coverage.uncovered_orders(uow, COMPANY, "", 0)
    assert ([o.order_id for o in listed], token) == (["o-2"], "")
    other, _ = await coverage.uncovered_orders(uow, Principal("x", Role.COMPANY, "co-2"), "", 0)
    assert other == []
    with pytest.raises(NotFound):
        await coverage.get_order(uow, Principal("x", Role.COMPANY, "co-2"), "o-2")
    with pytest.raises(NotFound):
        await coverage.get_order(uow, INSURER, "o-2")  # no insurer covers it


async def test_a_new_worker_on_the_order_is_covered_again_and_has_not_checked_in() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow, order("o-1", "w-9"))
    async with uow:
        replaced = await coverage.accept_order(uow, order("o-1", "w-1"))
        await uow.commit()
    assert replaced.check_in is None
    assert replaced.coverage is not None
    assert replaced.coverage.covered
    assert types_published(uow) == ["OrderUncovered", "OrderCoverageRecorded"]


async def test_uncovered_orders_are_paged_soonest_due_first_then_by_id() -> None:
    uow = await insured_uow("w-1")
    later = {"o-0": 3, "o-1": 1, "o-2": 1, "o-3": 0}  # hours after START
    for order_id, hours in later.items():
        due = dataclasses.replace(order(order_id, "w-9"), scheduled_start=START + timedelta(hours=hours))
        await accepted_and_checked_in(uow, due)
    first, token = await coverage.uncovered_orders(uow, OPERATOR, "", 2)
    second, last = await coverage.uncovered_orders(uow, OPERATOR, token, 2)
    assert ([o.order_id for o in first + second], last) == (["o-3", "o-1", "o-2", "o-0"], "")
    with pytest.raises(InvalidArgument) as raised:
        await coverage.uncovered_orders(uow, COMPANY, token, 2)  # another caller's listing
    assert raised.value.field == "page_token"


# -- filing ------------------------------------------------------------------------------------


async def test_the_company_files_a_claim_on_its_order_once_per_request_id() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    request = uuid.uuid4()
    claim = await claims.file_claim(uow, RULES, COMPANY, request, filing())
    again = await claims.file_claim(uow, RULES, COMPANY, request, filing())
    assert again.claim_id == claim.claim_id
    assert (claim.insurer, claim.product_id, claim.state) == (
        "demo-insurer",
        "package-standard",
        c.ClaimState.FILED,
    )
    assert types_published(uow)[-1:] == ["ClaimFiled"]
    assert types_published(uow).count("ClaimFiled") == 1
    filed = uow.published[-1].event.parse(ev.ClaimFiled)
    assert filed.policy_id == str(claim.policy_id)
    assert "vase" not in uow.published[-1].event.data.decode(errors="replace")


async def test_the_covering_insurer_may_file_another_company_or_insurer_finds_no_order() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    assert (await claims.file_claim(uow, RULES, INSURER, uuid.uuid4(), filing())).filed_by == "demo-insurer"
    for stranger in (Principal("x", Role.COMPANY, "co-2"), OTHER_INSURER):
        with pytest.raises(NotFound, match="orders/o-1"):
            await claims.file_claim(uow, RULES, stranger, uuid.uuid4(), filing())


async def test_an_order_insurance_does_not_know_is_not_found() -> None:
    uow = await insured_uow("w-1")
    with pytest.raises(NotFound, match="orders/o-1"):
        await claims.file_claim(uow, RULES, COMPANY, uuid.uuid4(), filing())


async def test_a_claim_no_insurer_covers_is_denied_when_filed() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow, order("o-1", "w-9"))
    claim = await claims.file_claim(uow, RULES, COMPANY, uuid.uuid4(), filing())
    assert claim.state is c.ClaimState.DENIED
    assert claim.adjudication is not None
    assert claim.adjudication.reasons == ("no cover",)
    assert types_published(uow)[-2:] == ["ClaimFiled", "ClaimAdjudicated"]


# -- adjudication, payment, contest ------------------------------------------------------------


async def filed_claim(uow: FakeInsuranceUnitOfWork, claimed: int = 3_000_00) -> c.Claim:
    return await claims.file_claim(uow, RULES, COMPANY, uuid.uuid4(), filing(claimed))


async def test_a_second_claim_is_capped_at_what_the_first_left_of_the_limit() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    first, second = await filed_claim(uow, 150_000_00), await filed_claim(uow, 150_000_00)
    for claim in (first, second):
        await claims.adjudicate_claim(
            uow, RULES, INSURER, claim.claim_id, uuid.uuid4(), c.Assessment(150_000_00)
        )
    capped = await claims.get_claim(uow, COMPANY, second.claim_id)
    assert capped.adjudication is not None
    assert capped.adjudication.decision is c.Decision.PARTLY_APPROVED
    assert capped.payable_fen == 200_000_00 - (150_000_00 - 500_00)
    adjudicated = uow.published[-1].event.parse(ev.ClaimAdjudicated)
    assert adjudicated.payable_fen == capped.payable_fen
    assert adjudicated.reasons[-1].startswith("capped at the remaining limit")


async def test_only_the_claim_s_insurer_adjudicates_it() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    claim = await filed_claim(uow)
    with pytest.raises(NotFound, match=str(claim.claim_id)):
        await claims.adjudicate_claim(
            uow, RULES, OTHER_INSURER, claim.claim_id, uuid.uuid4(), c.Assessment(1)
        )


async def test_a_claim_is_paid_once_and_claim_paid_published_once() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    claim = await filed_claim(uow)
    await claims.adjudicate_claim(uow, RULES, INSURER, claim.claim_id, uuid.uuid4(), c.Assessment(3_000_00))
    request = uuid.uuid4()
    paid = await claims.pay_claim(uow, INSURER, claim.claim_id, request)
    assert (await claims.pay_claim(uow, INSURER, claim.claim_id, request)).paid_at == paid.paid_at
    with pytest.raises(FailedPrecondition, match="paid"):
        await claims.pay_claim(uow, INSURER, claim.claim_id, uuid.uuid4())
    assert types_published(uow).count("ClaimPaid") == 1
    assert uow.published[-1].event.parse(ev.ClaimPaid).paid_fen == 2_500_00


async def test_the_company_contests_a_denial() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    claim = await filed_claim(uow)
    await claims.adjudicate_claim(uow, RULES, INSURER, claim.claim_id, uuid.uuid4(), c.Assessment(100_00))
    contested = await claims.contest_denial(uow, COMPANY, claim.claim_id, uuid.uuid4(), "the loss was higher")
    assert contested.state is c.ClaimState.CONTESTED
    event = uow.published[-1].event.parse(ev.ClaimDenialContested)
    assert (event.company_id, event.denial_reason) == (
        "co-1",
        "within the deductible: assessed ¥100.00, deductible ¥500.00",
    )


async def test_claims_are_listed_to_those_who_may_see_them_by_state_and_paged() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    made = []
    for _ in range(4):
        made.append(await filed_claim(uow))
        uow.clock.advance(timedelta(minutes=1))
    await claims.adjudicate_claim(uow, RULES, INSURER, made[0].claim_id, uuid.uuid4(), c.Assessment(100_00))
    first, token = await claims.list_claims(uow, INSURER, None, "", 3)
    rest, last = await claims.list_claims(uow, INSURER, None, token, 3)
    # Oldest first, whatever the (random) claim ids.
    assert [x.claim_id for x in first + rest] == [x.claim_id for x in made]
    assert (len(first), len(rest), last) == (3, 1, "")
    denied, _ = await claims.list_claims(uow, COMPANY, c.ClaimState.DENIED, "", 0)
    assert [x.claim_id for x in denied] == [made[0].claim_id]
    assert (await claims.list_claims(uow, OTHER_INSURER, None, "", 0))[0] == []


async def test_claims_filed_at_one_instant_are_paged_by_id_and_a_forged_token_is_refused() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    made = [await filed_claim(uow) for _ in range(3)]
    first, token = await claims.list_claims(uow, INSURER, None, "", 2)
    rest, _ = await claims.list_claims(uow, INSURER, None, token, 2)
    assert [x.claim_id for x in first + rest] == sorted(x.claim_id for x in made)
    scope = f"|{INSURER.tenant}|"
    for key in ("not a time|" + str(uuid.uuid4()), f"{made[0].filed_at.isoformat()}|not an id"):
        with pytest.raises(InvalidArgument, match="page_token"):
            await claims.list_claims(uow, INSURER, None, encode_key_token(key, scope), 2)


# -- automatic claims --------------------------------------------------------------------------


def award(case_id: str = "case-1") -> c.CompensationAward:
    return c.CompensationAward(case_id, "o-1", "w-1", "co-1", 2_000_00, True, START + timedelta(hours=2))


async def test_a_complaint_s_compensation_files_one_claim_however_often_it_arrives() -> None:
    uow = await insured_uow("w-1")
    await accepted_and_checked_in(uow)
    for _ in range(2):
        async with uow:
            claim = await claims.file_from_award(uow, RULES, award())
            await uow.commit()
    assert claim.claim_id == claims.automatic_claim_id("case-1")
    assert (claim.case_id, claim.insurer, claim.worker_at_fault) == ("case-1", "demo-insurer", True)
    assert types_published(uow).count("ClaimFiled") == 1
    assert len(uow.claims.by_id) == 1
