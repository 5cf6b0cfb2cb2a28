"""Domain values ↔ protobuf enums and messages, shared by the API and the published events."""

from __future__ import annotations

from jiazheng.complaints.v1 import complaints_pb2 as pb
from services.complaints import domain

KIND: dict[domain.CaseKind, pb.CaseKind.ValueType] = {
    v: pb.CaseKind.Value(f"CASE_KIND_{v.name}") for v in domain.CaseKind
}
CATEGORY: dict[domain.Category, pb.Category.ValueType] = {
    v: pb.Category.Value(f"CATEGORY_{v.name}") for v in domain.Category
}
CATEGORY_FROM = {v: k for k, v in CATEGORY.items()}
SEVERITY: dict[domain.Severity, pb.Severity.ValueType] = {
    v: pb.Severity.Value(f"SEVERITY_{v.name}") for v in domain.Severity
}
SEVERITY_FROM = {v: k for k, v in SEVERITY.items()}
PARTY: dict[domain.PartyKind, pb.PartyKind.ValueType] = {
    v: pb.PartyKind.Value(f"PARTY_KIND_{v.name}") for v in domain.PartyKind
}
PARTY_FROM = {v: k for k, v in PARTY.items()}
STATE: dict[domain.CaseState, pb.CaseState.ValueType] = {
    v: pb.CaseState.Value(f"CASE_STATE_{v.name}") for v in domain.CaseState
}
BODY: dict[domain.MediationBody, pb.MediationBody.ValueType] = {
    v: pb.MediationBody.Value(f"MEDIATION_BODY_{v.name}") for v in domain.MediationBody
}
BODY_FROM = {v: k for k, v in BODY.items()}
ROUTE: dict[domain.EscalationRoute, pb.EscalationRoute.ValueType] = {
    r: pb.EscalationRoute.Value(f"ESCALATION_ROUTE_{r.value.upper()}") for r in domain.EscalationRoute
}
ROUTE_FROM = {v: k for k, v in ROUTE.items()}
RESULT: dict[domain.OutcomeResult, pb.OutcomeResult.ValueType] = {
    v: pb.OutcomeResult.Value(f"OUTCOME_RESULT_{v.name}") for v in domain.OutcomeResult
}
RESULT_FROM = {v: k for k, v in RESULT.items()}


def outcome_to_proto(outcome: domain.Outcome) -> pb.Outcome:
    return pb.Outcome(
        result=RESULT[outcome.result],
        at_fault=PARTY[outcome.at_fault] if outcome.at_fault else pb.PARTY_KIND_UNSPECIFIED,
        compensation_fen=outcome.compensation_fen,
    )


def outcome_from_proto(outcome: pb.Outcome) -> domain.Outcome:
    return domain.Outcome(
        result=RESULT_FROM[outcome.result],
        at_fault=PARTY_FROM.get(outcome.at_fault),
        compensation_fen=outcome.compensation_fen,
    )
