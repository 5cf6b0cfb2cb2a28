"""The events workers publishes (its contract, protos/jiazheng/workers/events/v1/events.proto).

Every event of a worker has subject ``workers/{worker_id}`` (the record key), so one worker's
events stay in order. No personal data: the worker id is pseudonymous.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message

from jiazheng.workers.events.v1 import events_pb2 as ev
from jiazheng.workers.v1 import workers_pb2 as pb
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.workers import domain as d
from services.workers.mapping import (
    CARD_COLOUR,
    EMPLOYMENT_MODEL,
    HEALTH_TIER,
    SKILL_LEVEL,
    SPECIAL_ABILITY,
    TRADE,
)

SOURCE = "/jiazheng/workers"
TOPIC = events_topic("workers")


def _worker_event(message: Message, worker_id: object, at: datetime) -> EventEnvelope:
    return new_event(message, source=SOURCE, subject=f"workers/{worker_id}", time=at)


def company_registered(company: d.Company) -> EventEnvelope:
    message = ev.CompanyRegistered(
        company_id=str(company.company_id),
        social_credit_code=company.social_credit_code,
        display_name=company.name,
        employment_model=EMPLOYMENT_MODEL[company.employment_model],
        outlet_districts=sorted({o.district_code for o in company.outlets}),
        create_time=timestamp(company.registered_at),
    )
    return new_event(
        message, source=SOURCE, subject=f"companies/{company.company_id}", time=company.registered_at
    )


def worker_registered(worker: d.Worker) -> EventEnvelope:
    message = ev.WorkerRegistered(
        worker_id=str(worker.worker_id),
        company_id=str(worker.company_id),
        service_districts=list(worker.service_districts),
        trades=[TRADE[t] for t in worker.trades],
        origin_province=worker.origin_province or "",
        create_time=timestamp(worker.registered_at),
    )
    return _worker_event(message, worker.worker_id, worker.registered_at)


def worker_transferred(
    worker_id: object, from_company: object, to_company: object, at: datetime
) -> EventEnvelope:
    message = ev.WorkerTransferred(
        worker_id=str(worker_id),
        from_company_id=str(from_company),
        to_company_id=str(to_company),
        transfer_time=timestamp(at),
    )
    return _worker_event(message, worker_id, at)


def background_check_recorded(worker_id: object, check: d.BackgroundCheck, at: datetime) -> EventEnvelope:
    message = ev.BackgroundCheckRecorded(
        worker_id=str(worker_id),
        passed=check.passed,
        flags=list(check.flags),
        check_date=check.checked_on.isoformat(),
    )
    return _worker_event(message, worker_id, at)


def health_check_recorded(worker_id: object, check: d.HealthCheck, at: datetime) -> EventEnvelope:
    message = ev.HealthCheckRecorded(
        worker_id=str(worker_id), tier=HEALTH_TIER[check.tier], valid_until=check.valid_until.isoformat()
    )
    return _worker_event(message, worker_id, at)


def training_recorded(worker_id: object, training: d.Training, at: datetime) -> EventEnvelope:
    message = ev.TrainingRecorded(
        worker_id=str(worker_id),
        hours=training.hours,
        exam_passed=training.exam_passed,
        completion_date=training.completed_on.isoformat(),
    )
    return _worker_event(message, worker_id, at)


def certificate_recorded(
    worker_id: object, certificate: d.SkillCertificate, highest: d.SkillLevel, at: datetime
) -> EventEnvelope:
    message = ev.SkillCertificateRecorded(
        worker_id=str(worker_id),
        trade=TRADE[certificate.trade],
        level=SKILL_LEVEL[certificate.level],
        special_abilities=[SPECIAL_ABILITY[a] for a in certificate.special_abilities],
        highest_level=SKILL_LEVEL[highest],
    )
    return _worker_event(message, worker_id, at)


def card_status_changed(
    worker_id: object,
    colour: d.CardColour,
    previous: d.CardColour | None,
    reasons: tuple[d.Reason, ...],
    at: datetime,
) -> EventEnvelope:
    message = ev.CardStatusChanged(
        worker_id=str(worker_id),
        colour=CARD_COLOUR[colour],
        previous_colour=CARD_COLOUR[previous] if previous else pb.CARD_COLOUR_UNSPECIFIED,
        reasons=list(reasons),
        change_time=timestamp(at),
    )
    return _worker_event(message, worker_id, at)


def availability_changed(worker_id: object, availability: d.Availability, at: datetime) -> EventEnvelope:
    message = ev.AvailabilityChanged(
        worker_id=str(worker_id),
        weekly_slots=[
            pb.WeeklySlot(day_of_week=s.day_of_week, start_minute=s.start_minute, end_minute=s.end_minute)
            for s in availability.weekly_slots
        ],
        leaves=[
            pb.Leave(start_time=timestamp(v.start), end_time=timestamp(v.end)) for v in availability.leaves
        ],
    )
    return _worker_event(message, worker_id, at)


def consent_granted(grant: d.ConsentGrant) -> EventEnvelope:
    message = ev.ConsentGranted(
        worker_id=str(grant.worker_id),
        grant_id=str(grant.grant_id),
        platform_id=grant.platform_id,
        consumer_ref=grant.consumer_ref,
        expire_time=timestamp(grant.expires_at),
    )
    return _worker_event(message, grant.worker_id, grant.granted_at)


def consent_revoked(grant: d.ConsentGrant) -> EventEnvelope:
    message = ev.ConsentRevoked(worker_id=str(grant.worker_id), grant_id=str(grant.grant_id))
    return _worker_event(message, grant.worker_id, grant.revoked_at or grant.granted_at)


def card_issued(worker_id: object, card_id: object, expires_at: datetime, at: datetime) -> EventEnvelope:
    message = ev.CardIssued(worker_id=str(worker_id), card_id=str(card_id), expire_time=timestamp(expires_at))
    return _worker_event(message, worker_id, at)


def card_revoked(worker_id: object, card_id: object, reason: str, at: datetime) -> EventEnvelope:
    """``reason``: "reissued" or "withdrawn"."""
    message = ev.CardRevoked(worker_id=str(worker_id), card_id=str(card_id), reason=reason)
    return _worker_event(message, worker_id, at)
