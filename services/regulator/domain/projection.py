"""The projection of a source event onto a regulator topic (docs/regulators.md): every field of
every event type a regulator sees is classified as kept, pseudonymised (with its kind) or
dropped; a type nobody classified is not projected, a field nobody classified is dropped.

The projected record, on ``jiazheng.regulator.<service>.v1``:

- key: the source's subject with its id pseudonymised (``workers/w-…``, ``orders/o-…``,
  ``cases/k-…``, ``claims/c-…``); ``companies/…``, ``policies/…`` and ``catalogue`` unchanged;
- headers (CloudEvents Kafka binary binding): ``ce_specversion`` 1.0, ``ce_id`` (UUID v5 of the
  source event's id in ``REGULATOR_NAMESPACE``), ``ce_type`` (the source's, e.g.
  ``jiazheng.complaints.events.v1.CaseResolved``), ``ce_source`` ``/jiazheng/regulator``,
  ``ce_subject`` (= the key), ``ce_time`` (the source's), ``content-type`` application/json; no
  ``traceparent``;
- value: UTF-8 JSON, protobuf's JSON mapping (lowerCamelCase names, fields at their default
  value omitted, enums by name, Timestamps in RFC 3339) of the source message with the dropped
  fields cleared and the pseudonymised ones replaced.

Not projected (``NOT_PROJECTED``): the consent events (a consumer's view of a worker's record:
about one consumer and one worker, nothing a regulator supervises) and a worker's availability
(a private schedule).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import Message

from jiazheng.complaints.events.v1 import events_pb2 as complaints_events
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from jiazheng.orders.events.v1 import events_pb2 as orders_events
from jiazheng.workers.events.v1 import events_pb2 as workers_events
from libs.common.events import SPEC_VERSION, EventEnvelope
from libs.common.kafka import OutgoingRecord
from services.regulator.domain.pseudonym import IdKind, pseudonym
from services.regulator.topics import SOURCE_SERVICES, regulator_topic

# The five events packages regulators see.
SOURCE_FILES: tuple[FileDescriptor, ...] = (
    orders_events.DESCRIPTOR,
    workers_events.DESCRIPTOR,
    complaints_events.DESCRIPTOR,
    credit_events.DESCRIPTOR,
    insurance_events.DESCRIPTOR,
)
REGULATOR_NAMESPACE: Final = uuid.UUID("5b0c6f2e-8d1a-5c3e-9f47-2a6b1e0d7c91")
REGULATOR_SOURCE: Final = "/jiazheng/regulator"
JSON_CONTENT_TYPE: Final = "application/json"


class Treatment(StrEnum):
    KEEP = "keep"
    DROP = "drop"


# What becomes of a field: kept, dropped, or pseudonymised as an id of its kind.
Field = Treatment | IdKind
K, D = Treatment.KEEP, Treatment.DROP
WORKER, ORDER, CASE, CLAIM, CARD, OFFER = IdKind

_ORDERS: dict[str, dict[str, Field]] = {
    "OrderCreated": {
        "order_id": ORDER,
        "platform_id": K,
        "service_type": K,
        "district_code": K,
        "worker_id": WORKER,
        "scheduled_start_time": K,
        "duration_hours": K,
        "create_time": K,
        "price_fen": K,
        "special_needs": K,
        "catalogue_version": K,
    },
    # The public catalogue of service types and prices.
    "CatalogueChanged": {"version": K, "entry": K, "change_time": K},
    "OfferMade": {
        "order_id": ORDER,
        "offer_id": OFFER,
        "worker_id": WORKER,
        "expire_time": K,
        "rank": K,
        "score": K,
    },
    "OfferEnded": {"order_id": ORDER, "offer_id": OFFER, "worker_id": WORKER, "state": K, "end_time": K},
    "OrderUnmatched": {"order_id": ORDER, "time": K},
    # The contract is between a household and a worker: its ids and hash link to personal data.
    "OrderAssigned": {
        "order_id": ORDER,
        "offer_id": OFFER,
        "worker_id": WORKER,
        "company_id": K,
        "contract_id": D,
        "contract_sha256": D,
        "replaces_contract_id": D,
        "service_type": K,
        "district_code": K,
        "scheduled_start_time": K,
        "scheduled_end_time": K,
        "price_fen": K,
        "trial_end_time": K,
        "platform_id": K,
    },
    "WorkerReplaced": {
        "order_id": ORDER,
        "worker_id": WORKER,
        "contract_id": D,
        "replace_by_time": K,
        "time": K,
    },
    "OrderCheckedIn": {
        "order_id": ORDER,
        "worker_id": WORKER,
        "card_id": CARD,
        "check_in_time": K,
        "district_code": K,
        "service_type": K,
    },
    "OrderCompleted": {
        "order_id": ORDER,
        "worker_id": WORKER,
        "company_id": K,
        "check_in_time": K,
        "check_out_time": K,
        "service_type": K,
        "district_code": K,
        "price_fen": K,
        "platform_id": K,
    },
    # The reason is typed by a person.
    "OrderCancelled": {
        "order_id": ORDER,
        "cancelled_by": K,
        "fee_fen": K,
        "worker_id": WORKER,
        "hours_before_start": K,
        "time": K,
        "reason": D,
    },
    "NoShowReported": {
        "order_id": ORDER,
        "at_fault": K,
        "worker_id": WORKER,
        "company_id": K,
        "worker_no_shows_28d": K,
        "serious_breach": K,
        "time": K,
    },
    "RatingPosted": {"order_id": ORDER, "rater": K, "stars": K, "worker_id": WORKER, "time": K},
    "ChargeDisputed": {
        "order_id": ORDER,
        "platform_id": K,
        "charge": K,
        "disputed_by": K,
        "amount_fen": K,
        "worker_id": WORKER,
        "company_id": K,
        "district_code": K,
        "reason": D,
        "time": K,
    },
}
_WORKERS: dict[str, dict[str, Field]] = {
    # A company is a legal entity (its GB 32100 code is public); its display name may be a person's
    # (个体工商户), so it is dropped with the other names.
    "CompanyRegistered": {
        "company_id": K,
        "social_credit_code": K,
        "display_name": D,
        "employment_model": K,
        "outlet_districts": K,
        "create_time": K,
    },
    "WorkerRegistered": {
        "worker_id": WORKER,
        "company_id": K,
        "service_districts": K,
        "trades": K,
        "origin_province": K,
        "create_time": K,
    },
    "WorkerTransferred": {"worker_id": WORKER, "from_company_id": K, "to_company_id": K, "transfer_time": K},
    # The flags name what a check found about a person (records of crimes): the outcome is enough.
    "BackgroundCheckRecorded": {"worker_id": WORKER, "passed": K, "flags": D, "check_date": K},
    "HealthCheckRecorded": {"worker_id": WORKER, "tier": K, "valid_until": K},
    "TrainingRecorded": {"worker_id": WORKER, "hours": K, "exam_passed": K, "completion_date": K},
    "SkillCertificateRecorded": {
        "worker_id": WORKER,
        "trade": K,
        "level": K,
        "special_abilities": K,
        "highest_level": K,
    },
    "CardIssued": {"worker_id": WORKER, "card_id": CARD, "expire_time": K},
    "CardRevoked": {"worker_id": WORKER, "card_id": CARD, "reason": K},
    "CardStatusChanged": {
        "worker_id": WORKER,
        "colour": K,
        "previous_colour": K,
        "reasons": K,
        "change_time": K,
    },
}
_COMPLAINTS: dict[str, dict[str, Field]] = {
    "CaseFiled": {
        "case_id": CASE,
        "kind": K,
        "category": K,
        "severity": K,
        "complainant": K,
        "respondent": K,
        "order_id": ORDER,
        "worker_id": WORKER,
        "company_id": K,
        "platform_id": K,
        "district_code": K,
        "file_time": K,
        "first_response_deadline": K,
    },
    "CaseAnswered": {"case_id": CASE, "state": K, "time": K, "response_seconds": K},
    "SlaBreached": {"case_id": CASE, "deadline_kind": K, "deadline": K, "company_id": K},
    # The reason is a code ("rejected", "first_response_breached", ...).
    "CaseEscalatedToMediation": {
        "case_id": CASE,
        "body": K,
        "reason": K,
        "mediation_deadline": K,
        "time": K,
    },
    # Mediators are people.
    "MediationAssigned": {
        "case_id": CASE,
        "mediator": D,
        "lease_expire_time": K,
        "previous_mediator": D,
        "time": K,
    },
    "AgreementReached": {"case_id": CASE, "last_due_date": K, "outcome": K, "time": K},
    "AgreementFollowedUp": {
        "case_id": CASE,
        "performed": K,
        "breached_by": K,
        "worker_id": WORKER,
        "company_id": K,
        "time": K,
    },
    # resolved_by is a role (company, mediator, operator), not a person.
    "CaseResolved": {
        "case_id": CASE,
        "kind": K,
        "category": K,
        "severity": K,
        "outcome": K,
        "order_id": ORDER,
        "worker_id": WORKER,
        "company_id": K,
        "resolved_by": K,
        "file_time": K,
        "time": K,
    },
    "WorkerSuspensionRequested": {"worker_id": WORKER, "case_id": CASE, "category": K, "time": K},
    "CaseEscalatedExternally": {"case_id": CASE, "route": K, "reason": K, "time": K},
    "LegalAidReferral": {
        "case_id": CASE,
        "worker_id": WORKER,
        "labour_dispute": K,
        "accepted": K,
        "deadline": K,
        "time": K,
    },
    "CaseWithdrawn": {"case_id": CASE, "time": K},
    "CompensationSettled": {"case_id": CASE, "claim": CLAIM, "paid_fen": K, "time": K},
}
_CREDIT: dict[str, dict[str, Field]] = {
    "CreditLevelChanged": {
        "worker_id": WORKER,
        "level": K,
        "previous_level": K,
        "score": K,
        "model_version": K,
        "change_time": K,
    },
    # The reason is a code (e.g. complaint_upheld_severe).
    "WorkerSuspensionChanged": {"worker_id": WORKER, "suspended": K, "reason": K, "change_time": K},
    # A company decision's reason is written by a person and may name one.
    "CompanyDecisionRecorded": {
        "company_id": K,
        "kind": K,
        "reason": D,
        "decision_date": K,
        "grade": K,
        "time": K,
    },
}
_INSURANCE: dict[str, dict[str, Field]] = {
    "WorkerCoverageChanged": {
        "worker_id": WORKER,
        "covered": K,
        "valid_until": K,
        "policy": K,
        "change_time": K,
    },
    # The denial reason is the insurer's words about an incident.
    "ClaimDenialContested": {
        "claim_id": CLAIM,
        "order_id": ORDER,
        "worker_id": WORKER,
        "company_id": K,
        "case_id": CASE,
        "denial_reason": D,
        "claimed_fen": K,
        "time": K,
    },
    "ClaimPaid": {
        "claim_id": CLAIM,
        "order_id": ORDER,
        "case_id": CASE,
        "paid_fen": K,
        "worker_at_fault": K,
        "worker_id": WORKER,
        "time": K,
    },
    "PolicyIssued": {
        "policy_id": K,
        "company_id": K,
        "product_id": K,
        "insurer": K,
        "start_date": K,
        "end_date": K,
        "insured_count": K,
        "premium_fen": K,
        "time": K,
    },
    "PolicyEndorsed": {
        "policy_id": K,
        "endorsement_id": K,
        "kind": K,
        "added_worker_ids": WORKER,
        "removed_worker_ids": WORKER,
        "effective_date": K,
        "premium_delta_fen": K,
        "time": K,
    },
    "PolicyExpired": {"policy_id": K, "company_id": K, "end_date": K, "time": K},
    "OrderCoverageRecorded": {
        "order_id": ORDER,
        "worker_id": WORKER,
        "company_id": K,
        "policy_id": K,
        "product_id": K,
        "service_type": K,
        "time": K,
    },
    # The reason is the rule that found no cover, written by the service.
    "OrderUncovered": {
        "order_id": ORDER,
        "worker_id": WORKER,
        "company_id": K,
        "platform_id": K,
        "district_code": K,
        "service_type": K,
        "reason": K,
        "time": K,
    },
    "ClaimFiled": {
        "claim_id": CLAIM,
        "order_id": ORDER,
        "policy_id": K,
        "worker_id": WORKER,
        "company_id": K,
        "case_id": CASE,
        "kind": K,
        "claimed_fen": K,
        "incident_time": K,
        "report_time": K,
        "late_report": K,
        "time": K,
    },
    # The reasons are the adjuster's words.
    "ClaimAdjudicated": {
        "claim_id": CLAIM,
        "decision": K,
        "payable_fen": K,
        "reasons": D,
        "worker_at_fault": K,
        "company_id": K,
        "time": K,
    },
}


def _qualified(package: FileDescriptor, types: dict[str, dict[str, Field]]) -> dict[str, dict[str, Field]]:
    return {f"{package.package}.{name}": fields for name, fields in types.items()}


# Event type -> field -> treatment, for every type that is projected.
CLASSIFICATION: Mapping[str, Mapping[str, Field]] = {
    **_qualified(orders_events.DESCRIPTOR, _ORDERS),
    **_qualified(workers_events.DESCRIPTOR, _WORKERS),
    **_qualified(complaints_events.DESCRIPTOR, _COMPLAINTS),
    **_qualified(credit_events.DESCRIPTOR, _CREDIT),
    **_qualified(insurance_events.DESCRIPTOR, _INSURANCE),
}
# Event type -> why regulators do not see it.
NOT_PROJECTED: Mapping[str, str] = {
    "jiazheng.workers.events.v1.ConsentGranted": "a worker's grant to one consumer, with the consumer's ref",
    "jiazheng.workers.events.v1.ConsentRevoked": "the end of a grant to one consumer",
    "jiazheng.workers.events.v1.AvailabilityChanged": "a worker's private schedule and leave",
}
# Subject collections whose ids are pseudonymised; the others (companies, policies) are kept.
SUBJECT_KINDS: Mapping[str, IdKind] = {
    "workers": IdKind.WORKER,
    "orders": IdKind.ORDER,
    "cases": IdKind.CASE,
    "claims": IdKind.CLAIM,
}
KEPT_SUBJECTS = frozenset({"companies", "policies", "catalogue"})


@dataclass(frozen=True)
class Unprojectable(Exception):
    """A source event of a classified type that cannot be projected (its subject is unknown)."""

    event_id: str
    why: str


def regulator_event_id(source_id: str) -> str:
    """The regulator record's ce_id: the same source event always projects to the same id."""
    return str(uuid.uuid5(REGULATOR_NAMESPACE, source_id))


def source_service(event_type: str) -> str | None:
    """The producing service of ``jiazheng.<service>.events.v1.<Name>``, if it is a source."""
    parts = event_type.split(".")
    if len(parts) == 5 and parts[0] == "jiazheng" and parts[2:4] == ["events", "v1"]:
        return parts[1] if parts[1] in SOURCE_SERVICES else None
    return None


def project(envelope: EventEnvelope, key: bytes) -> OutgoingRecord | None:
    """The regulator record of a source event, or None for a type regulators do not see.

    Raises ``Unprojectable`` for a subject outside the known collections, and
    ``PermanentEventError`` for an undecodable payload.
    """
    fields = CLASSIFICATION.get(envelope.type)
    service = source_service(envelope.type)
    if fields is None or service is None:
        return None
    subject = pseudonymous_subject(key, envelope)
    message = sanitised(envelope.parse(_message_class(envelope.type)), fields, key)
    return OutgoingRecord(
        topic=regulator_topic(service),
        key=subject.encode(),
        value=json.dumps(json_format.MessageToDict(message), ensure_ascii=False).encode(),
        headers=[(k, v.encode()) for k, v in _headers(envelope, subject).items()],
    )


def _message_class(event_type: str) -> type[Message]:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(event_type)
    return message_factory.GetMessageClass(descriptor)


def pseudonymous_subject(key: bytes, envelope: EventEnvelope) -> str:
    collection = envelope.subject.partition("/")[0]
    if collection in KEPT_SUBJECTS:
        return envelope.subject
    if collection not in SUBJECT_KINDS:
        raise Unprojectable(envelope.id, f"subject {collection!r} is not a known collection")
    return pseudonym(key, SUBJECT_KINDS[collection], envelope.subject)


def sanitised(message: Message, fields: Mapping[str, Field], key: bytes) -> Message:
    """A copy of ``message`` with every field not kept cleared or pseudonymised."""
    out = type(message)()
    out.CopyFrom(message)
    for field in out.DESCRIPTOR.fields:
        treatment = fields.get(field.name, Treatment.DROP)
        if treatment is Treatment.DROP:
            out.ClearField(field.name)
        elif isinstance(treatment, IdKind):
            _pseudonymise(out, field.name, treatment, key)
    return out


def _pseudonymise(message: Message, name: str, kind: IdKind, key: bytes) -> None:
    value = getattr(message, name)
    if isinstance(value, str):
        setattr(message, name, pseudonym(key, kind, value))
        return
    replaced = [pseudonym(key, kind, v) for v in value]
    del value[:]
    value.extend(replaced)


def _headers(envelope: EventEnvelope, subject: str) -> dict[str, str]:
    return {
        "ce_specversion": SPEC_VERSION,
        "ce_id": regulator_event_id(envelope.id),
        "ce_type": envelope.type,
        "ce_source": REGULATOR_SOURCE,
        "ce_subject": subject,
        "ce_time": envelope.time.isoformat().replace("+00:00", "Z"),
        "content-type": JSON_CONTENT_TYPE,
    }
