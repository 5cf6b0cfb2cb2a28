"""ClaimService: its policy of roles, protobuf ↔ domain, and the servicer driven through the
in-memory unit of work as the current principal."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import cast

import pytest

from jiazheng.insurance.v1 import claims_pb2 as pb
from jiazheng.insurance.v1 import cover_pb2
from libs.common.auth import Principal, Role, acting_as
from libs.common.errors import FailedPrecondition, InvalidArgument, NotFound
from libs.common.protoutil import timestamp
from services.insurance.api.claims import POLICY, SERVICE, STATE, ClaimServicer, Context, claim_id
from services.insurance.domain.orders import Order
from services.insurance.domain.vocabulary import ServiceType
from services.insurance.service_layer import coverage
from services.insurance.tests.fakes import FakeInsuranceUnitOfWork
from services.insurance.tests.test_claim_service_layer import (
    COMPANY,
    INSURER,
    OPERATOR,
    RULES,
    START,
    insured_uow,
)

ORDER = "6a0f5d3e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
NO_CONTEXT = cast(Context, None)


def test_the_policy_covers_exactly_the_service_s_methods() -> None:
    assert set(POLICY) == {f"/{SERVICE.full_name}/{m.name}" for m in SERVICE.methods}


@pytest.mark.parametrize(
    ("method", "roles"),
    [
        ("FileClaim", {Role.COMPANY, Role.INSURER}),
        ("AdjudicateClaim", {Role.INSURER}),
        ("PayClaim", {Role.INSURER}),
        ("ContestClaimDenial", {Role.COMPANY}),
        ("GetClaim", {Role.COMPANY, Role.INSURER, Role.OPERATOR}),
        ("ListUncoveredOrders", {Role.COMPANY, Role.OPERATOR}),
    ],
)
def test_who_may_do_what(method: str, roles: set[Role]) -> None:
    assert POLICY[f"/{SERVICE.full_name}/{method}"] == roles


def test_every_claim_state_has_its_proto_state() -> None:
    assert sorted(STATE.values()) == [n for n in pb.ClaimState.values() if n]


@pytest.mark.parametrize("name", ["claims/not-a-uuid", "orders/6a0f5d3e-1b2c-4d5e-8f90-a1b2c3d4e5f6", ""])
def test_a_bad_claim_name_names_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        claim_id(name)
    assert error.value.field == "name"


async def servicer_with_order(worker_id: str = "w-1") -> tuple[ClaimServicer, FakeInsuranceUnitOfWork]:
    uow = await insured_uow("w-1")
    order = Order(
        ORDER, "p-1", "co-1", worker_id, ServiceType.CLEANING, "110105", START, START + timedelta(hours=4)
    )
    async with uow:
        await coverage.accept_order(uow, order)
        await coverage.update_order(uow, ORDER, check_in=START)
        await uow.commit()
    uow.clock.advance(timedelta(hours=3))
    return ClaimServicer(lambda: uow, RULES), uow


def file_request(hours_after_check_in: float = 1) -> pb.FileClaimRequest:
    return pb.FileClaimRequest(
        request_id=str(uuid.uuid4()),
        order=f"orders/{ORDER}",
        kind=cover_pb2.COVER_KIND_PROFESSIONAL_LIABILITY,
        incident_time=timestamp(START + timedelta(hours=hours_after_check_in)),
        claimed_fen=300_000_00,
        description="打碎了花瓶",
        circumstances=[cover_pb2.EXCLUSION_UNDECLARED_VALUABLES],
    )


async def test_a_claim_round_trips_from_filing_to_payment() -> None:
    servicer, _ = await servicer_with_order()
    with acting_as(COMPANY):
        filed = (await servicer.FileClaim(file_request(), NO_CONTEXT)).claim
    assert (filed.order, filed.state, filed.description) == (
        f"orders/{ORDER}",
        pb.CLAIM_STATE_FILED,
        "打碎了花瓶",
    )
    assert list(filed.circumstances) == [cover_pb2.EXCLUSION_UNDECLARED_VALUABLES]
    assert filed.policy.startswith("policies/")
    adjudicate = pb.AdjudicateClaimRequest(
        name=filed.name, request_id=str(uuid.uuid4()), assessed_fen=300_000_00, worker_at_fault=True
    )
    with acting_as(INSURER):
        decided = (await servicer.AdjudicateClaim(adjudicate, NO_CONTEXT)).claim
        paid = (
            await servicer.PayClaim(
                pb.PayClaimRequest(name=filed.name, request_id=str(uuid.uuid4())), NO_CONTEXT
            )
        ).claim
    assert (decided.decision, decided.payable_fen, decided.worker_at_fault) == (
        cover_pb2.CLAIM_DECISION_PARTLY_APPROVED,
        200_000_00,
        True,
    )
    assert decided.reasons[-1].startswith("capped at the remaining limit ¥200000.00")
    assert (paid.state, paid.HasField("pay_time")) == (pb.CLAIM_STATE_PAID, True)
    with acting_as(OPERATOR):
        listed = await servicer.ListClaims(pb.ListClaimsRequest(state=pb.CLAIM_STATE_PAID), NO_CONTEXT)
    assert [c.name for c in listed.claims] == [filed.name]


async def test_an_incident_outside_the_window_names_incident_time() -> None:
    servicer, _ = await servicer_with_order()
    with acting_as(COMPANY), pytest.raises(InvalidArgument) as error:
        await servicer.FileClaim(file_request(hours_after_check_in=-1), NO_CONTEXT)
    assert error.value.field == "incident_time"


async def test_no_check_in_is_a_failed_precondition() -> None:
    servicer, uow = await servicer_with_order()
    async with uow:
        await coverage.update_order(uow, ORDER, check_in=None)
        await uow.commit()
    with acting_as(COMPANY), pytest.raises(FailedPrecondition, match="no check-in"):
        await servicer.FileClaim(file_request(), NO_CONTEXT)


async def test_a_denial_is_contested_by_the_company() -> None:
    servicer, _ = await servicer_with_order()
    with acting_as(COMPANY):
        filed = (await servicer.FileClaim(file_request(), NO_CONTEXT)).claim
    exclusion = pb.AdjudicateClaimRequest(
        name=filed.name,
        request_id=str(uuid.uuid4()),
        assessed_fen=1_000_00,
        exclusions=[cover_pb2.EXCLUSION_UNDECLARED_VALUABLES],
    )
    with acting_as(INSURER):
        denied = (await servicer.AdjudicateClaim(exclusion, NO_CONTEXT)).claim
    assert (denied.state, list(denied.reasons)) == (pb.CLAIM_STATE_DENIED, ["excluded: undeclared_valuables"])
    contest = pb.ContestClaimDenialRequest(name=filed.name, request_id=str(uuid.uuid4()), reason="declared")
    with acting_as(COMPANY):
        contested = (await servicer.ContestClaimDenial(contest, NO_CONTEXT)).claim
    assert (contested.state, contested.contest_reason) == (pb.CLAIM_STATE_CONTESTED, "declared")


async def test_order_coverage_and_uncovered_orders() -> None:
    servicer, _ = await servicer_with_order()
    with acting_as(INSURER):
        found = (
            await servicer.GetOrderCoverage(pb.GetOrderCoverageRequest(name=f"orders/{ORDER}"), NO_CONTEXT)
        ).coverage
    assert (found.covered, found.insurer, found.service_date) == (True, "demo-insurer", "2026-12-01")
    uncovered_servicer, _ = await servicer_with_order("w-9")
    with acting_as(COMPANY):
        listed = await uncovered_servicer.ListUncoveredOrders(pb.ListUncoveredOrdersRequest(), NO_CONTEXT)
    assert [(o.order, o.covered, o.reason) for o in listed.orders] == [
        (f"orders/{ORDER}", False, "no policy lists the worker")
    ]
    with acting_as(Principal("x", Role.COMPANY, "co-2")), pytest.raises(NotFound):
        await uncovered_servicer.GetOrderCoverage(
            pb.GetOrderCoverageRequest(name=f"orders/{ORDER}"), NO_CONTEXT
        )
