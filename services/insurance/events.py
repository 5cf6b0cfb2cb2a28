"""The policy events insurance publishes (its contract, protos/jiazheng/insurance/events/v1):
policies issued, endorsed and expired, keyed policies/{policy_id}, and workers' coverage, keyed
workers/{worker_id}. None carries personal data: never a birth date. The claim and order-coverage
events are built in claim_events.py."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message

from jiazheng.insurance.events.v1 import events_pb2 as ev
from jiazheng.insurance.v1 import cover_pb2
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.insurance.domain.cover import Cover
from services.insurance.domain.policies import Endorsement, GroupPolicy

SOURCE = "/jiazheng/insurance"
TOPIC = events_topic("insurance")


def policy_name(policy_id: object) -> str:
    return f"policies/{policy_id}"


def _about(subject: str, message: Message, at: datetime) -> EventEnvelope:
    return new_event(message, source=SOURCE, subject=subject, time=at)


def policy_issued(policy: GroupPolicy) -> EventEnvelope:
    message = ev.PolicyIssued(
        policy_id=str(policy.policy_id),
        company_id=policy.company_id,
        product_id=policy.product_id,
        insurer=policy.insurer,
        start_date=policy.start.isoformat(),
        end_date=policy.end.isoformat(),
        insured_count=len(policy.enrolments),
        premium_fen=policy.premium_fen,
        time=timestamp(policy.issued_at),
    )
    return _about(policy_name(policy.policy_id), message, policy.issued_at)


def policy_endorsed(policy: GroupPolicy, endorsement: Endorsement) -> EventEnvelope:
    message = ev.PolicyEndorsed(
        policy_id=str(policy.policy_id),
        endorsement_id=str(endorsement.endorsement_id),
        kind=cover_pb2.EndorsementKind.ValueType(endorsement.kind),
        added_worker_ids=endorsement.added,
        removed_worker_ids=endorsement.removed,
        effective_date=endorsement.effective_date.isoformat(),
        premium_delta_fen=endorsement.premium_delta_fen,
        time=timestamp(endorsement.created_at),
    )
    return _about(policy_name(policy.policy_id), message, endorsement.created_at)


def policy_expired(policy: GroupPolicy, at: datetime) -> EventEnvelope:
    message = ev.PolicyExpired(
        policy_id=str(policy.policy_id),
        company_id=policy.company_id,
        end_date=policy.end.isoformat(),
        time=timestamp(at),
    )
    return _about(policy_name(policy.policy_id), message, at)


def coverage_changed(worker_id: str, cover: Cover | None, at: datetime) -> EventEnvelope:
    """The worker's cover now: ``cover`` is the one that holds today and lasts longest, or None
    when nothing covers the worker today."""
    message = ev.WorkerCoverageChanged(
        worker_id=worker_id, covered=cover is not None, change_time=timestamp(at)
    )
    if cover is not None:
        message.valid_until = cover.insured.end.isoformat()
        message.policy = policy_name(cover.insured.policy_id)
    return _about(f"workers/{worker_id}", message, at)
