"""Protobuf ↔ domain for the complaints APIs: resource names, cases, agreements, referrals, filings."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from jiazheng.complaints.v1 import complaints_pb2 as pb
from libs.common.auth import Principal, Role
from libs.common.errors import InvalidArgument
from libs.common.protoutil import calendar_date, timestamp
from services.complaints import domain, service_layer
from services.complaints.mapping import (
    BODY,
    CATEGORY,
    CATEGORY_FROM,
    KIND,
    PARTY,
    PARTY_FROM,
    RESULT_FROM,
    ROUTE,
    SEVERITY,
    SEVERITY_FROM,
    STATE,
    outcome_from_proto,
    outcome_to_proto,
)

K = TypeVar("K", bound=int)
T = TypeVar("T")


def case_id(name: str, field: str = "name") -> uuid.UUID:
    """The id of ``cases/{case_id}``."""
    collection, _, text = name.partition("/")
    if collection == "cases":
        try:
            return uuid.UUID(text)
        except ValueError:
            pass
    raise InvalidArgument(field, "must be cases/{uuid}")


def plain_id(name: str, collection: str, field: str) -> str:
    """The id of ``{collection}/{id}`` (``orders/…``, ``workers/…``, ``companies/…``); empty when
    ``name`` is."""
    if not name:
        return ""
    prefix, _, rest = name.partition("/")
    if prefix != collection or not rest or "/" in rest:
        raise InvalidArgument(field, f"must be {collection}/{{id}}")
    return rest


def _name(collection: str, plain: str) -> str:
    return f"{collection}/{plain}" if plain else ""


def from_proto(table: Mapping[K, T], value: K, field: str) -> T:
    """The domain value of a protobuf enum value; unspecified or unknown ones name ``field``."""
    try:
        return table[value]
    except KeyError:
        raise InvalidArgument(field, "must be one of the values this call takes") from None


def outcome_from(outcome: pb.Outcome, field: str = "outcome") -> domain.Outcome:
    """The outcome; an unspecified result names ``{field}.result``."""
    from_proto(RESULT_FROM, outcome.result, f"{field}.result")
    return outcome_from_proto(outcome)


def _time(moment: datetime | None) -> Timestamp | None:
    return timestamp(moment) if moment is not None else None


def case_to_proto(case: domain.Case, principal: Principal) -> pb.Case:
    """Every field of the case; the description only to whom may see it (the case's parties,
    its mediators, operators)."""
    f, deadline = case.filing, case.deadline
    return pb.Case(
        name=case.name,
        kind=pb.CaseKind.ValueType(KIND[f.kind]),
        state=pb.CaseState.ValueType(STATE[case.state]),
        platform_id=f.platform_id,
        order=_name("orders", f.order_id),
        complainant=pb.PartyKind.ValueType(PARTY[f.complainant]),
        respondent=pb.PartyKind.ValueType(PARTY[f.respondent]),
        worker=_name("workers", f.worker_id),
        company=_name("companies", f.company_id),
        category=pb.Category.ValueType(CATEGORY[f.category]),
        severity=pb.Severity.ValueType(SEVERITY[f.severity]),
        description=f.description if service_layer.may_see(case, principal) else "",
        evidence_refs=f.evidence_refs,
        deadline=timestamp(deadline.due_at) if deadline else None,
        deadline_kind=deadline.kind.value if deadline else "",
        mediation_body=pb.MediationBody.ValueType(BODY[case.body] if case.body else 0),
        mediator=case.mediator or "",
        lease_expire_time=_time(case.lease_until),
        outcome=outcome_to_proto(case.outcome) if case.outcome else None,
        escalation_route=pb.EscalationRoute.ValueType(ROUTE[case.route] if case.route else 0),
        agreement=agreement_to_proto(case.agreement) if case.agreement else None,
        create_time=timestamp(case.filed_at),
    )


def agreement_to_proto(agreement: domain.Agreement) -> pb.Agreement:
    return pb.Agreement(
        facts=agreement.facts,
        responsibility=agreement.responsibility,
        undertakings=[
            pb.Undertaking(
                party=pb.PartyKind.ValueType(PARTY[u.party]), action=u.action, due_date=u.due.isoformat()
            )
            for u in agreement.undertakings
        ],
    )


def agreement_from_proto(agreement: pb.Agreement, field: str = "agreement") -> domain.Agreement:
    undertakings = tuple(
        domain.Undertaking(
            party=from_proto(PARTY_FROM, u.party, f"{field}.undertakings[{i}].party"),
            action=u.action,
            due=calendar_date(u.due_date, f"{field}.undertakings[{i}].due_date"),
        )
        for i, u in enumerate(agreement.undertakings)
    )
    return domain.Agreement(agreement.facts, agreement.responsibility, undertakings)


def referral_to_proto(referral: domain.Referral) -> pb.Referral:
    return pb.Referral(
        case_name=f"cases/{referral.case_id}",
        labour_dispute=referral.labour_dispute,
        deadline=timestamp(referral.deadline),
        accepted=referral.accepted_at is not None,
        overdue=referral.overdue,
        create_time=timestamp(referral.created_at),
    )


def workload_to_proto(workload: service_layer.Workload) -> pb.MediatorWorkload:
    return pb.MediatorWorkload(mediator=workload.mediator, held=workload.held, closed=workload.closed)


FilingRequest = pb.FileComplaintRequest | pb.FileWorkerDisputeRequest


def complaint_filing(request: pb.FileComplaintRequest, platform_id: str) -> domain.Filing:
    """A consumer's complaint as ``platform_id`` files it."""
    return _filing(
        request, domain.CaseKind.COMPLAINT, domain.PartyKind.CONSUMER, platform_id, filed_by=platform_id
    )


def dispute_filing(request: pb.FileWorkerDisputeRequest, principal: Principal) -> domain.Filing:
    """A worker's dispute as ``principal`` (a platform, a company, a union) files it; the case
    comes through a platform only when a platform files it."""
    platform_id = principal.tenant if principal.role is Role.PLATFORM else ""
    return _filing(
        request,
        domain.CaseKind.WORKER_DISPUTE,
        domain.PartyKind.WORKER,
        platform_id,
        filed_by=principal.tenant,
        employee_model=request.employee_model,
    )


def _filing(
    request: FilingRequest,
    kind: domain.CaseKind,
    complainant: domain.PartyKind,
    platform_id: str,
    filed_by: str,
    employee_model: bool | None = None,
) -> domain.Filing:
    return domain.Filing(
        kind=kind,
        category=from_proto(CATEGORY_FROM, request.category, "category"),
        severity=from_proto(SEVERITY_FROM, request.severity, "severity"),
        complainant=complainant,
        respondent=from_proto(PARTY_FROM, request.respondent, "respondent"),
        description=request.description,
        platform_id=platform_id,
        order_id=plain_id(request.order, "orders", "order"),
        worker_id=plain_id(request.worker, "workers", "worker"),
        company_id=plain_id(request.company, "companies", "company"),
        evidence_refs=tuple(request.evidence_refs),
        employee_model=employee_model,
        filed_by=filed_by,
    )
