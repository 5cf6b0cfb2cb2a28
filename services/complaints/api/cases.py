"""gRPC ComplaintService: consumers' complaints and workers' disputes, protobuf ↔ use cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from jiazheng.complaints.v1 import complaints_pb2 as pb
from jiazheng.complaints.v1 import complaints_pb2_grpc
from libs.common.auth import Role, current_principal
from libs.common.protoutil import request_uuid
from services.complaints import service_layer
from services.complaints.api.convert import (
    case_id,
    case_to_proto,
    complaint_filing,
    dispute_filing,
    outcome_from,
)
from services.complaints.service_layer import ComplaintsUnitOfWork, Rules

SERVICE = pb.DESCRIPTOR.services_by_name["ComplaintService"]
_ANSWERING = frozenset({Role.PLATFORM, Role.COMPANY, Role.INSURER, Role.OPERATOR})
POLICY = {
    f"/{SERVICE.full_name}/{method}": roles
    for method, roles in {
        "FileComplaint": frozenset({Role.PLATFORM}),
        "FileWorkerDispute": frozenset({Role.PLATFORM, Role.COMPANY, Role.UNION}),
        "GetCase": frozenset(
            {Role.PLATFORM, Role.COMPANY, Role.MEDIATOR, Role.INSURER, Role.UNION, Role.OPERATOR}
        ),
        "RespondToCase": _ANSWERING,
        "DecideCase": _ANSWERING,
        # who of them may resolve depends on the case's state: the use case decides
        "ResolveCase": frozenset({Role.COMPANY, Role.MEDIATOR, Role.OPERATOR, Role.PLATFORM}),
        "WithdrawCase": frozenset({Role.PLATFORM, Role.COMPANY, Role.UNION, Role.OPERATOR}),
    }.items()
}

Context = grpc.aio.ServicerContext[Any, Any]


class ComplaintServicer(complaints_pb2_grpc.ComplaintServiceServicer):
    def __init__(self, uow_factory: Callable[[], ComplaintsUnitOfWork], rules: Rules) -> None:
        self._uow = uow_factory
        self._rules = rules

    async def FileComplaint(
        self, request: pb.FileComplaintRequest, context: Context
    ) -> pb.FileComplaintResponse:
        principal = current_principal()
        filing = complaint_filing(request, principal.tenant)
        case = await service_layer.file_complaint(
            self._uow(), principal.tenant, request_uuid(request.request_id), filing
        )
        return pb.FileComplaintResponse(complaint_case=case_to_proto(case, principal))

    async def FileWorkerDispute(
        self, request: pb.FileWorkerDisputeRequest, context: Context
    ) -> pb.FileWorkerDisputeResponse:
        principal = current_principal()
        filing = dispute_filing(request, principal)
        case = await service_layer.file_worker_dispute(
            self._uow(), principal, request_uuid(request.request_id), filing
        )
        return pb.FileWorkerDisputeResponse(complaint_case=case_to_proto(case, principal))

    async def GetCase(self, request: pb.GetCaseRequest, context: Context) -> pb.GetCaseResponse:
        principal = current_principal()
        case = await service_layer.get_case(self._uow(), principal, case_id(request.name))
        return pb.GetCaseResponse(complaint_case=case_to_proto(case, principal))

    async def RespondToCase(
        self, request: pb.RespondToCaseRequest, context: Context
    ) -> pb.RespondToCaseResponse:
        principal = current_principal()
        case = await service_layer.respond(self._uow(), self._rules, principal, case_id(request.name))
        return pb.RespondToCaseResponse(complaint_case=case_to_proto(case, principal))

    async def DecideCase(self, request: pb.DecideCaseRequest, context: Context) -> pb.DecideCaseResponse:
        principal = current_principal()
        case = await service_layer.decide(
            self._uow(), self._rules, principal, case_id(request.name), request.accept
        )
        return pb.DecideCaseResponse(complaint_case=case_to_proto(case, principal))

    async def ResolveCase(self, request: pb.ResolveCaseRequest, context: Context) -> pb.ResolveCaseResponse:
        principal = current_principal()
        case = await service_layer.resolve(
            self._uow(), principal, case_id(request.name), outcome_from(request.outcome)
        )
        return pb.ResolveCaseResponse(complaint_case=case_to_proto(case, principal))

    async def WithdrawCase(
        self, request: pb.WithdrawCaseRequest, context: Context
    ) -> pb.WithdrawCaseResponse:
        principal = current_principal()
        case = await service_layer.withdraw(self._uow(), principal, case_id(request.name))
        return pb.WithdrawCaseResponse(complaint_case=case_to_proto(case, principal))
