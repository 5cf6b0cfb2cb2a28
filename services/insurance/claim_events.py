"""The claim and order-coverage events insurance publishes (its contract,
protos/jiazheng/insurance/events/v1): keyed claims/{claim_id} and orders/{order_id}, so each
claim's and each order's events stay in order. None carries personal data: never a claim's
description."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message

from jiazheng.insurance.events.v1 import events_pb2 as ev
from jiazheng.insurance.v1 import cover_pb2
from jiazheng.type.v1.service_type_pb2 import ServiceType
from libs.common.events import EventEnvelope, new_event
from libs.common.protoutil import timestamp
from services.insurance.domain.claims import Claim
from services.insurance.domain.orders import Order
from services.insurance.events import SOURCE, TOPIC

__all__ = [
    "TOPIC",
    "claim_adjudicated",
    "claim_denial_contested",
    "claim_filed",
    "claim_paid",
    "order_covered",
    "order_uncovered",
]


def _about(subject: str, message: Message, at: datetime) -> EventEnvelope:
    return new_event(message, source=SOURCE, subject=subject, time=at)


def order_covered(order: Order, at: datetime) -> EventEnvelope:
    coverage = order.coverage
    assert coverage is not None, "an order is published covered once its cover is found"
    message = ev.OrderCoverageRecorded(
        order_id=order.order_id,
        worker_id=order.worker_id,
        company_id=order.company_id,
        policy_id=str(coverage.policy_id),
        product_id=coverage.product_id,
        service_type=ServiceType.ValueType(order.service_type),
        time=timestamp(at),
    )
    return _about(order.name, message, at)


def order_uncovered(order: Order, at: datetime) -> EventEnvelope:
    message = ev.OrderUncovered(
        order_id=order.order_id,
        worker_id=order.worker_id,
        company_id=order.company_id,
        platform_id=order.platform_id,
        district_code=order.district_code,
        service_type=ServiceType.ValueType(order.service_type),
        reason=order.coverage.reason if order.coverage else "",
        time=timestamp(at),
    )
    return _about(order.name, message, at)


def claim_filed(claim: Claim) -> EventEnvelope:
    incident = claim.filing.incident_time
    message = ev.ClaimFiled(
        claim_id=str(claim.claim_id),
        order_id=claim.filing.order_id,
        policy_id=str(claim.policy_id or ""),
        worker_id=claim.worker_id,
        company_id=claim.company_id,
        case_id=claim.case_id,
        kind=cover_pb2.CoverKind.ValueType(claim.filing.kind),
        claimed_fen=claim.filing.claimed_fen,
        incident_time=timestamp(incident) if incident else None,
        report_time=timestamp(claim.report_time),
        late_report=claim.late_report,
        time=timestamp(claim.filed_at),
    )
    return _about(claim.name, message, claim.filed_at)


def claim_adjudicated(claim: Claim) -> EventEnvelope:
    adjudication = claim.adjudication
    assert adjudication is not None, "published once adjudicated"
    message = ev.ClaimAdjudicated(
        claim_id=str(claim.claim_id),
        decision=cover_pb2.ClaimDecision.ValueType(adjudication.decision),
        payable_fen=adjudication.payable_fen,
        reasons=adjudication.reasons,
        worker_at_fault=claim.worker_at_fault,
        company_id=claim.company_id,
        time=timestamp(adjudication.at),
    )
    return _about(claim.name, message, adjudication.at)


def claim_paid(claim: Claim) -> EventEnvelope:
    assert claim.paid_at is not None, "published once paid"
    message = ev.ClaimPaid(
        claim_id=str(claim.claim_id),
        order_id=claim.filing.order_id,
        case_id=claim.case_id,
        paid_fen=claim.payable_fen,
        worker_at_fault=claim.worker_at_fault,
        worker_id=claim.worker_id,
        time=timestamp(claim.paid_at),
    )
    return _about(claim.name, message, claim.paid_at)


def claim_denial_contested(claim: Claim) -> EventEnvelope:
    contest, adjudication = claim.contest, claim.adjudication
    assert contest is not None, "published once contested"
    message = ev.ClaimDenialContested(
        claim_id=str(claim.claim_id),
        order_id=claim.filing.order_id,
        worker_id=claim.worker_id,
        company_id=claim.company_id,
        case_id=claim.case_id,
        denial_reason="; ".join(adjudication.reasons) if adjudication else "",
        claimed_fen=claim.filing.claimed_fen,
        time=timestamp(contest.at),
    )
    return _about(claim.name, message, contest.at)
