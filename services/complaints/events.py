"""The events complaints publishes (its contract, protos/jiazheng/complaints/events/v1/events.proto).

Keyed by the case's resource name (a suspension request by the worker's), so one case's events
stay in order. None carries personal data: no description, agreement text, name or consumer ref.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message

from jiazheng.complaints.events.v1 import events_pb2 as ev
from jiazheng.complaints.v1 import complaints_pb2 as pb
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.complaints import domain
from services.complaints.mapping import BODY, CATEGORY, KIND, PARTY, ROUTE, SEVERITY, STATE, outcome_to_proto

SOURCE = "/jiazheng/complaints"
TOPIC = events_topic("complaints")


def _about(case: domain.Case, message: Message, at: datetime) -> EventEnvelope:
    return new_event(message, source=SOURCE, subject=case.name, time=at)


def case_filed(case: domain.Case) -> EventEnvelope:
    f = case.filing
    message = ev.CaseFiled(
        case_id=str(case.case_id),
        kind=KIND[f.kind],
        category=CATEGORY[f.category],
        severity=SEVERITY[f.severity],
        complainant=PARTY[f.complainant],
        respondent=PARTY[f.respondent],
        order_id=f.order_id,
        worker_id=f.worker_id,
        company_id=f.company_id,
        platform_id=f.platform_id,
        district_code=f.district_code,
        file_time=timestamp(case.filed_at),
        first_response_deadline=timestamp(case.deadline.due_at) if case.deadline else None,
    )
    return _about(case, message, case.filed_at)


def case_answered(case: domain.Case, at: datetime) -> EventEnvelope:
    seconds = int((case.responded_at - case.filed_at).total_seconds()) if case.responded_at else 0
    message = ev.CaseAnswered(
        case_id=str(case.case_id),
        state=STATE[case.state],
        time=timestamp(at),
        response_seconds=seconds,
    )
    return _about(case, message, at)


def sla_breached(case: domain.Case, kind: str, deadline: datetime, at: datetime) -> EventEnvelope:
    message = ev.SlaBreached(
        case_id=str(case.case_id),
        deadline_kind=kind,
        deadline=timestamp(deadline),
        company_id=case.filing.company_id,
    )
    return _about(case, message, at)


def to_mediation(case: domain.Case, reason: str, at: datetime) -> EventEnvelope:
    message = ev.CaseEscalatedToMediation(
        case_id=str(case.case_id),
        body=BODY[case.body] if case.body else pb.MEDIATION_BODY_UNSPECIFIED,
        reason=reason,
        mediation_deadline=timestamp(case.deadline.due_at) if case.deadline else None,
        time=timestamp(at),
    )
    return _about(case, message, at)


def mediation_assigned(case: domain.Case, previous: str | None, at: datetime) -> EventEnvelope:
    message = ev.MediationAssigned(
        case_id=str(case.case_id),
        mediator=case.mediator or "",
        lease_expire_time=timestamp(case.lease_until) if case.lease_until else None,
        previous_mediator=previous or "",
        time=timestamp(at),
    )
    return _about(case, message, at)


def agreement_reached(case: domain.Case, at: datetime) -> EventEnvelope:
    agreement = case.agreement
    last_due = max(u.due for u in agreement.undertakings).isoformat() if agreement else ""
    message = ev.AgreementReached(
        case_id=str(case.case_id),
        last_due_date=last_due,
        outcome=outcome_to_proto(case.outcome) if case.outcome else None,
        time=timestamp(at),
    )
    return _about(case, message, at)


def agreement_followed_up(
    case: domain.Case, performed: bool, breached_by: domain.PartyKind | None, at: datetime
) -> EventEnvelope:
    message = ev.AgreementFollowedUp(
        case_id=str(case.case_id),
        performed=performed,
        breached_by=PARTY[breached_by] if breached_by else pb.PARTY_KIND_UNSPECIFIED,
        worker_id=case.filing.worker_id,
        company_id=case.filing.company_id,
        time=timestamp(at),
    )
    return _about(case, message, at)


def case_resolved(case: domain.Case, at: datetime) -> EventEnvelope:
    f = case.filing
    message = ev.CaseResolved(
        case_id=str(case.case_id),
        kind=KIND[f.kind],
        category=CATEGORY[f.category],
        severity=SEVERITY[f.severity],
        outcome=outcome_to_proto(case.outcome) if case.outcome else None,
        order_id=f.order_id,
        worker_id=f.worker_id,
        company_id=f.company_id,
        resolved_by=case.resolved_by or "",
        file_time=timestamp(case.filed_at),
        time=timestamp(at),
    )
    return _about(case, message, at)


def suspension_requested(case: domain.Case, at: datetime) -> EventEnvelope:
    message = ev.WorkerSuspensionRequested(
        worker_id=case.filing.worker_id,
        case_id=str(case.case_id),
        category=CATEGORY[case.filing.category],
        time=timestamp(at),
    )
    return new_event(message, source=SOURCE, subject=f"workers/{case.filing.worker_id}", time=at)


def escalated_externally(case: domain.Case, reason: str, at: datetime) -> EventEnvelope:
    message = ev.CaseEscalatedExternally(
        case_id=str(case.case_id),
        route=ROUTE[case.route] if case.route else pb.ESCALATION_ROUTE_UNSPECIFIED,
        reason=reason,
        time=timestamp(at),
    )
    return _about(case, message, at)


def legal_aid_referral(case: domain.Case, referral: domain.Referral, at: datetime) -> EventEnvelope:
    message = ev.LegalAidReferral(
        case_id=str(case.case_id),
        worker_id=case.filing.worker_id,
        labour_dispute=referral.labour_dispute,
        accepted=referral.accepted_at is not None,
        deadline=timestamp(referral.deadline),
        time=timestamp(at),
    )
    return _about(case, message, at)


def case_withdrawn(case: domain.Case, at: datetime) -> EventEnvelope:
    return _about(case, ev.CaseWithdrawn(case_id=str(case.case_id), time=timestamp(at)), at)


def compensation_settled(case: domain.Case, claim: str, paid_fen: int, at: datetime) -> EventEnvelope:
    message = ev.CompensationSettled(
        case_id=str(case.case_id), claim=claim, paid_fen=paid_fen, time=timestamp(at)
    )
    return _about(case, message, at)
