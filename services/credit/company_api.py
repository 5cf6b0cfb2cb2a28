"""gRPC CompanyCreditService: protobuf ↔ companies' credit use cases. Records are public; operators
record decisions."""

from __future__ import annotations

from collections.abc import Callable

from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from libs.common.auth import Role
from libs.common.errors import InvalidArgument
from libs.common.protoutil import calendar_date, request_uuid
from services.credit import companies
from services.credit.api import Context
from services.credit.companies import CompaniesUnitOfWork, CompanyCredit, Decision, DecisionKind

SERVICE = credit_pb2.DESCRIPTOR.services_by_name["CompanyCreditService"]
POLICY = {
    f"/{SERVICE.full_name}/GetCompanyCredit": frozenset(Role),
    f"/{SERVICE.full_name}/RecordCompanyDecision": frozenset({Role.OPERATOR}),
}
KIND_FROM: dict[int, DecisionKind] = {
    credit_pb2.DecisionKind.Value(f"DECISION_KIND_{kind.name}"): kind for kind in DecisionKind
}
KIND_TO = {kind: value for value, kind in KIND_FROM.items()}


def company_id(name: str, field: str = "name") -> str:
    """The id of ``companies/{company_id}``."""
    collection, _, plain = name.partition("/")
    if collection != "companies" or not plain or "/" in plain:
        raise InvalidArgument(field, "must be companies/{company_id}")
    return plain


def decision_from_proto(decision: credit_pb2.CompanyDecision) -> Decision:
    kind = KIND_FROM.get(decision.kind)
    if kind is None:
        raise InvalidArgument("decision.kind", "must be a decision kind")
    return Decision(kind, decision.reason, calendar_date(decision.decision_date, "decision.decision_date"))


def credit_to_proto(credit: CompanyCredit) -> credit_pb2.CompanyCredit:
    return credit_pb2.CompanyCredit(
        company=f"companies/{credit.company_id}",
        grade=credit.grade.grade.value,
        red_listed=credit.record.red_listed,
        black_listed=credit.record.black_listed,
        decisions=[
            credit_pb2.CompanyDecision(
                kind=KIND_TO[d.decision.kind],  # type: ignore[arg-type]
                reason=d.decision.reason,
                decision_date=d.decision.decided_on.isoformat(),
            )
            for d in credit.decisions
        ],
        workers_mean_score=credit.workers_mean_score,
    )


class CompanyCreditServicer(credit_pb2_grpc.CompanyCreditServiceServicer):
    def __init__(self, uow_factory: Callable[[], CompaniesUnitOfWork]) -> None:
        self._uow = uow_factory

    async def GetCompanyCredit(
        self, request: credit_pb2.GetCompanyCreditRequest, context: Context
    ) -> credit_pb2.GetCompanyCreditResponse:
        credit = await companies.company_credit(self._uow(), company_id(request.name))
        return credit_pb2.GetCompanyCreditResponse(credit=credit_to_proto(credit))

    async def RecordCompanyDecision(
        self, request: credit_pb2.RecordCompanyDecisionRequest, context: Context
    ) -> credit_pb2.RecordCompanyDecisionResponse:
        credit = await companies.record_decision(
            self._uow(),
            company_id(request.name),
            request_uuid(request.request_id),
            decision_from_proto(request.decision),
        )
        return credit_pb2.RecordCompanyDecisionResponse(credit=credit_to_proto(credit))
