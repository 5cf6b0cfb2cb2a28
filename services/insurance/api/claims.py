"""gRPC ClaimService: claims from filing to payment and orders' coverage, protobuf ↔ use cases,
with the roles allowed per method (docs/insurance.md, "Who may do what")."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Any

import grpc

from jiazheng.insurance.v1 import claims_pb2 as pb
from jiazheng.insurance.v1 import claims_pb2_grpc, cover_pb2
from jiazheng.type.v1 import service_type_pb2
from libs.common.auth import Role, current_principal
from libs.common.errors import InvalidArgument
from libs.common.protoutil import request_uuid, timestamp
from services.insurance.api.convert import resource_id
from services.insurance.domain import claims as domain
from services.insurance.domain.cover import CoverKind, Exclusion
from services.insurance.domain.orders import Order
from services.insurance.service_layer import claims as service_layer
from services.insurance.service_layer import coverage
from services.insurance.service_layer.claim_ports import ClaimRules, InsuranceUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["ClaimService"]
_FILERS = frozenset({Role.COMPANY, Role.INSURER})
_READERS = frozenset({Role.COMPANY, Role.INSURER, Role.OPERATOR})
POLICY = {
    f"/{SERVICE.full_name}/{method}": roles
    for method, roles in {
        "FileClaim": _FILERS,
        "GetClaim": _READERS,
        "ListClaims": _READERS,
        "AdjudicateClaim": frozenset({Role.INSURER}),
        "PayClaim": frozenset({Role.INSURER}),
        "ContestClaimDenial": frozenset({Role.COMPANY}),
        "GetOrderCoverage": _READERS,
        "ListUncoveredOrders": frozenset({Role.COMPANY, Role.OPERATOR}),
    }.items()
}
STATE = {state: pb.ClaimState.Value(f"CLAIM_STATE_{state.name}") for state in domain.ClaimState}
STATE_OF = {number: state for state, number in STATE.items()}

Context = grpc.aio.ServicerContext[Any, Any]


def claim_id(name: str) -> uuid.UUID:
    return request_uuid(resource_id(name, "claims", "name"), "name")


def _exclusions(values: Any) -> list[cover_pb2.Exclusion.ValueType]:
    return [cover_pb2.Exclusion.ValueType(e) for e in sorted(values)]


def _adjudication(claim: domain.Claim) -> dict[str, Any]:
    a = claim.adjudication
    if a is None:
        return {}
    return {
        "decision": cover_pb2.ClaimDecision.ValueType(a.decision),
        "assessed_fen": a.assessed_fen,
        "exclusions": _exclusions(a.exclusions),
        "payable_fen": a.payable_fen,
        "reasons": a.reasons,
        "adjudicate_time": timestamp(a.at),
    }


def claim_to_proto(claim: domain.Claim) -> pb.Claim:
    f = claim.filing
    return pb.Claim(
        name=claim.name,
        order=f"orders/{f.order_id}",
        kind=cover_pb2.CoverKind.ValueType(f.kind),
        state=STATE[claim.state],
        policy=f"policies/{claim.policy_id}" if claim.policy_id else "",
        product_id=claim.product_id,
        insurer=claim.insurer,
        worker=f"workers/{claim.worker_id}" if claim.worker_id else "",
        company=f"companies/{claim.company_id}" if claim.company_id else "",
        complaint_case=f"cases/{claim.case_id}" if claim.case_id else "",
        incident_time=timestamp(f.incident_time) if f.incident_time else None,
        report_time=timestamp(claim.report_time),
        late_report=claim.late_report,
        claimed_fen=f.claimed_fen,
        description=f.description,
        circumstances=_exclusions(f.circumstances),
        worker_at_fault=claim.worker_at_fault,
        pay_time=timestamp(claim.paid_at) if claim.paid_at else None,
        contest_reason=claim.contest.reason if claim.contest else "",
        create_time=timestamp(claim.filed_at),
        **_adjudication(claim),
    )


def coverage_to_proto(order: Order) -> pb.OrderCoverage:
    c = order.coverage
    return pb.OrderCoverage(
        order=order.name,
        worker=f"workers/{c.worker_id if c else order.worker_id}",
        company=f"companies/{order.company_id}",
        service_type=service_type_pb2.ServiceType.ValueType(order.service_type),
        service_date=order.service_day.isoformat(),
        covered=bool(c and c.covered),
        policy=f"policies/{c.policy_id}" if c and c.policy_id else "",
        product_id=c.product_id if c else "",
        insurer=c.insurer if c else "",
        reason=c.reason if c else "",
        check_time=timestamp(c.found_at) if c else None,
    )


def filing_of(request: pb.FileClaimRequest) -> domain.ClaimFiling:
    if not request.HasField("incident_time"):
        raise InvalidArgument("incident_time", "is required")
    return domain.ClaimFiling(
        order_id=resource_id(request.order, "orders", "order"),
        kind=CoverKind(request.kind),
        incident_time=request.incident_time.ToDatetime(tzinfo=UTC),
        claimed_fen=request.claimed_fen,
        description=request.description,
        circumstances=frozenset(Exclusion(e) for e in request.circumstances),
    )


class ClaimServicer(claims_pb2_grpc.ClaimServiceServicer):
    def __init__(self, uow_factory: Callable[[], InsuranceUnitOfWork], rules: ClaimRules) -> None:
        self._uow = uow_factory
        self._rules = rules

    async def FileClaim(self, request: pb.FileClaimRequest, context: Context) -> pb.FileClaimResponse:
        claim = await service_layer.file_claim(
            self._uow(),
            self._rules,
            current_principal(),
            request_uuid(request.request_id),
            filing_of(request),
        )
        return pb.FileClaimResponse(claim=claim_to_proto(claim))

    async def GetClaim(self, request: pb.GetClaimRequest, context: Context) -> pb.GetClaimResponse:
        claim = await service_layer.get_claim(self._uow(), current_principal(), claim_id(request.name))
        return pb.GetClaimResponse(claim=claim_to_proto(claim))

    async def ListClaims(self, request: pb.ListClaimsRequest, context: Context) -> pb.ListClaimsResponse:
        state = STATE_OF.get(request.state)
        found, token = await service_layer.list_claims(
            self._uow(), current_principal(), state, request.page_token, request.page_size
        )
        return pb.ListClaimsResponse(claims=[claim_to_proto(c) for c in found], next_page_token=token)

    async def AdjudicateClaim(
        self, request: pb.AdjudicateClaimRequest, context: Context
    ) -> pb.AdjudicateClaimResponse:
        at_fault = request.worker_at_fault if request.HasField("worker_at_fault") else None
        assessment = domain.Assessment(
            request.assessed_fen, frozenset(Exclusion(e) for e in request.exclusions), at_fault
        )
        claim = await service_layer.adjudicate_claim(
            self._uow(),
            self._rules,
            current_principal(),
            claim_id(request.name),
            request_uuid(request.request_id),
            assessment,
        )
        return pb.AdjudicateClaimResponse(claim=claim_to_proto(claim))

    async def PayClaim(self, request: pb.PayClaimRequest, context: Context) -> pb.PayClaimResponse:
        claim = await service_layer.pay_claim(
            self._uow(), current_principal(), claim_id(request.name), request_uuid(request.request_id)
        )
        return pb.PayClaimResponse(claim=claim_to_proto(claim))

    async def ContestClaimDenial(
        self, request: pb.ContestClaimDenialRequest, context: Context
    ) -> pb.ContestClaimDenialResponse:
        claim = await service_layer.contest_denial(
            self._uow(),
            current_principal(),
            claim_id(request.name),
            request_uuid(request.request_id),
            request.reason,
        )
        return pb.ContestClaimDenialResponse(claim=claim_to_proto(claim))

    async def GetOrderCoverage(
        self, request: pb.GetOrderCoverageRequest, context: Context
    ) -> pb.GetOrderCoverageResponse:
        order_id = resource_id(request.name, "orders", "name")
        order = await coverage.get_order(self._uow(), current_principal(), order_id)
        return pb.GetOrderCoverageResponse(coverage=coverage_to_proto(order))

    async def ListUncoveredOrders(
        self, request: pb.ListUncoveredOrdersRequest, context: Context
    ) -> pb.ListUncoveredOrdersResponse:
        found, token = await coverage.uncovered_orders(
            self._uow(), current_principal(), request.page_token, request.page_size
        )
        return pb.ListUncoveredOrdersResponse(
            orders=[coverage_to_proto(o) for o in found], next_page_token=token
        )
