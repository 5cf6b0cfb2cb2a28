"""gRPC MediationService: the mediation bodies' queues (调解), agreements and the legal-aid referral
queue, protobuf ↔ use cases."""

from __future__ import annotations

from collections.abc import Callable

from jiazheng.complaints.v1 import complaints_pb2 as pb
from jiazheng.complaints.v1 import complaints_pb2_grpc
from libs.common.auth import Principal, Role, current_principal
from services.complaints import domain, service_layer
from services.complaints.api.cases import Context
from services.complaints.api.convert import (
    agreement_from_proto,
    case_id,
    case_to_proto,
    from_proto,
    outcome_from,
    referral_to_proto,
    workload_to_proto,
)
from services.complaints.mapping import BODY_FROM, PARTY_FROM, ROUTE_FROM
from services.complaints.service_layer import ComplaintsUnitOfWork, Rules

SERVICE = pb.DESCRIPTOR.services_by_name["MediationService"]
_MEDIATOR = frozenset({Role.MEDIATOR})
_OPERATOR = frozenset({Role.OPERATOR})
_MEDIATOR_OR_OPERATOR = frozenset({Role.MEDIATOR, Role.OPERATOR})
POLICY = {
    f"/{SERVICE.full_name}/{method}": roles
    for method, roles in {
        "ListQueue": _MEDIATOR_OR_OPERATOR,
        "ListWorkload": _MEDIATOR_OR_OPERATOR,
        "ClaimNextCase": _MEDIATOR,
        "ReleaseCase": _MEDIATOR,
        "RecordAgreement": _MEDIATOR,
        "EndMediation": _MEDIATOR,
        "RecordPerformance": _MEDIATOR_OR_OPERATOR,
        "ReassignCase": _OPERATOR,
        "ListReferrals": _OPERATOR,
        "AcceptReferral": _OPERATOR,
    }.items()
}
DEFAULT_PAGE_SIZE = 50


def _body(principal: Principal, asked: pb.MediationBody.ValueType) -> domain.MediationBody:
    """The body a listing is about: the mediator's own, or the one an operator names."""
    return service_layer.body_for(principal, BODY_FROM.get(asked))


class MediationServicer(complaints_pb2_grpc.MediationServiceServicer):
    def __init__(self, uow_factory: Callable[[], ComplaintsUnitOfWork], rules: Rules) -> None:
        self._uow = uow_factory
        self._rules = rules

    async def ListQueue(self, request: pb.ListQueueRequest, context: Context) -> pb.ListQueueResponse:
        principal = current_principal()
        body = _body(principal, request.body)
        cases = await service_layer.queue(self._uow(), body, request.page_size or DEFAULT_PAGE_SIZE)
        return pb.ListQueueResponse(cases=[case_to_proto(case, principal) for case in cases])

    async def ClaimNextCase(
        self, request: pb.ClaimNextCaseRequest, context: Context
    ) -> pb.ClaimNextCaseResponse:
        principal = current_principal()
        case = await service_layer.claim_next(self._uow(), self._rules, principal)
        return pb.ClaimNextCaseResponse(complaint_case=case_to_proto(case, principal))

    async def ReleaseCase(self, request: pb.ReleaseCaseRequest, context: Context) -> pb.ReleaseCaseResponse:
        principal = current_principal()
        case = await service_layer.release(self._uow(), principal, case_id(request.name))
        return pb.ReleaseCaseResponse(complaint_case=case_to_proto(case, principal))

    async def ReassignCase(
        self, request: pb.ReassignCaseRequest, context: Context
    ) -> pb.ReassignCaseResponse:
        principal = current_principal()
        case = await service_layer.reassign(
            self._uow(), self._rules, principal, case_id(request.name), request.mediator
        )
        return pb.ReassignCaseResponse(complaint_case=case_to_proto(case, principal))

    async def ListWorkload(
        self, request: pb.ListWorkloadRequest, context: Context
    ) -> pb.ListWorkloadResponse:
        body = _body(current_principal(), request.body)
        workloads = await service_layer.workload(self._uow(), body)
        return pb.ListWorkloadResponse(workloads=[workload_to_proto(w) for w in workloads])

    async def RecordAgreement(
        self, request: pb.RecordAgreementRequest, context: Context
    ) -> pb.RecordAgreementResponse:
        principal = current_principal()
        agreement = agreement_from_proto(request.agreement)
        outcome = outcome_from(request.outcome)
        case = await service_layer.record_agreement(
            self._uow(), principal, case_id(request.name), agreement, outcome
        )
        return pb.RecordAgreementResponse(complaint_case=case_to_proto(case, principal))

    async def RecordPerformance(
        self, request: pb.RecordPerformanceRequest, context: Context
    ) -> pb.RecordPerformanceResponse:
        principal = current_principal()
        breached_by = PARTY_FROM.get(request.breached_by)
        case = await service_layer.record_performance(
            self._uow(), self._rules, principal, case_id(request.name), request.performed, breached_by
        )
        return pb.RecordPerformanceResponse(complaint_case=case_to_proto(case, principal))

    async def EndMediation(
        self, request: pb.EndMediationRequest, context: Context
    ) -> pb.EndMediationResponse:
        principal = current_principal()
        route = from_proto(ROUTE_FROM, request.route, "route")
        case = await service_layer.end_mediation(
            self._uow(), self._rules, principal, case_id(request.name), route
        )
        return pb.EndMediationResponse(complaint_case=case_to_proto(case, principal))

    async def ListReferrals(
        self, request: pb.ListReferralsRequest, context: Context
    ) -> pb.ListReferralsResponse:
        referrals = await service_layer.referrals(self._uow(), request.page_size or DEFAULT_PAGE_SIZE)
        return pb.ListReferralsResponse(referrals=[referral_to_proto(r) for r in referrals])

    async def AcceptReferral(
        self, request: pb.AcceptReferralRequest, context: Context
    ) -> pb.AcceptReferralResponse:
        referral = await service_layer.accept_referral(self._uow(), case_id(request.name))
        return pb.AcceptReferralResponse(referral=referral_to_proto(referral))
