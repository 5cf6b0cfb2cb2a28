"""Domain values ↔ protobuf enums and messages, shared by the API and the published events."""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from jiazheng.complaints.v1 import complaints_pb2 as pb
from services.complaints import domain

E = TypeVar("E", bound=Enum)


def _table(values: type[E], proto_enum: Any, prefix: str) -> dict[E, int]:
    return {v: proto_enum.Value(f"{prefix}_{v.name}") for v in values}


KIND = _table(domain.CaseKind, pb.CaseKind, "CASE_KIND")
CATEGORY = _table(domain.Category, pb.Category, "CATEGORY")
CATEGORY_FROM = {v: k for k, v in CATEGORY.items()}
SEVERITY = _table(domain.Severity, pb.Severity, "SEVERITY")
SEVERITY_FROM = {v: k for k, v in SEVERITY.items()}
PARTY = _table(domain.PartyKind, pb.PartyKind, "PARTY_KIND")
PARTY_FROM = {v: k for k, v in PARTY.items()}
STATE = _table(domain.CaseState, pb.CaseState, "CASE_STATE")
BODY = _table(domain.MediationBody, pb.MediationBody, "MEDIATION_BODY")
BODY_FROM = {v: k for k, v in BODY.items()}
ROUTE = {r: pb.EscalationRoute.Value(f"ESCALATION_ROUTE_{r.value.upper()}") for r in domain.EscalationRoute}
ROUTE_FROM = {v: k for k, v in ROUTE.items()}
RESULT = _table(domain.OutcomeResult, pb.OutcomeResult, "OUTCOME_RESULT")
RESULT_FROM = {v: k for k, v in RESULT.items()}


def outcome_to_proto(outcome: domain.Outcome) -> pb.Outcome:
    return pb.Outcome(
        result=RESULT[outcome.result],  # type: ignore[arg-type]
        at_fault=PARTY[outcome.at_fault] if outcome.at_fault else pb.PARTY_KIND_UNSPECIFIED,  # type: ignore[arg-type]
        compensation_fen=outcome.compensation_fen,
    )


def outcome_from_proto(outcome: pb.Outcome) -> domain.Outcome:
    return domain.Outcome(
        result=RESULT_FROM[outcome.result],
        at_fault=PARTY_FROM.get(outcome.at_fault),
        compensation_fen=outcome.compensation_fen,
    )
