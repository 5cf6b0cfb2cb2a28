"""Protobuf ↔ policy domain: resource names, Beijing dates as YYYY-MM-DD, products and policies
as the API shows them. A malformed value is INVALID_ARGUMENT naming its field."""

from __future__ import annotations

import uuid
from datetime import date

from jiazheng.insurance.v1 import cover_pb2
from jiazheng.insurance.v1 import policies_pb2 as pb
from jiazheng.type.v1 import service_type_pb2
from libs.common.errors import InvalidArgument
from libs.common.protoutil import calendar_date, request_uuid, timestamp
from services.insurance.domain.policies import Applicant, Endorsement, Enrolment, GroupPolicy
from services.insurance.domain.products import Product
from services.insurance.domain.vocabulary import ServiceType

STATE = {"active": pb.POLICY_STATE_ACTIVE, "expired": pb.POLICY_STATE_EXPIRED}


def resource_id(name: str, collection: str, field: str) -> str:
    """The id of ``{collection}/{id}``."""
    prefix, _, text = name.partition("/")
    if prefix != collection or not text:
        raise InvalidArgument(field, f"must be {collection}/{{id}}")
    return text


def policy_id(name: str, field: str = "name") -> uuid.UUID:
    return request_uuid(resource_id(name, "policies", field), field)


def optional_day(text: str, field: str) -> date | None:
    return calendar_date(text, field) if text else None


def applicant(worker: pb.InsuredWorkerInput, where: str) -> Applicant:
    return Applicant(
        worker_id=str(request_uuid(worker.worker_id, f"{where}.worker_id")),
        birth_date=calendar_date(worker.birth_date, f"{where}.birth_date"),
        service_types=frozenset(ServiceType(s) for s in worker.service_types),
        job_class=worker.job_class,
    )


def product_to_proto(product: Product) -> pb.Product:
    return pb.Product(
        name=f"products/{product.id}",
        display_name=product.name,
        insurer=product.insurer,
        terms=[
            pb.CoverTerms(
                kind=cover_pb2.CoverKind.ValueType(t.kind),
                limit_fen=t.limit_fen,
                deductible_fen=t.deductible_fen,
            )
            for t in product.terms.values()
        ],
        exclusions=[cover_pb2.Exclusion.ValueType(e) for e in sorted(product.exclusions)],
        premiums=[
            pb.PremiumRow(
                job_class=c, age_16_to_50_fen=row[0], age_51_to_60_fen=row[1], age_61_to_70_fen=row[2]
            )
            for c, row in product.premiums_fen.items()
        ],
    )


def _insured(enrolment: Enrolment) -> pb.InsuredWorker:
    w = enrolment.insured
    return pb.InsuredWorker(
        worker_id=w.worker_id,
        birth_date=enrolment.birth_date.isoformat(),
        service_types=[service_type_pb2.ServiceType.ValueType(s) for s in sorted(w.service_types)],
        job_class=w.job_class,
        start_date=w.start.isoformat(),
        end_date=w.end.isoformat(),
        annual_premium_fen=enrolment.annual_premium_fen,
    )


def endorsement_to_proto(e: Endorsement) -> pb.Endorsement:
    return pb.Endorsement(
        endorsement_id=str(e.endorsement_id),
        kind=cover_pb2.EndorsementKind.ValueType(e.kind),
        effective_date=e.effective_date.isoformat(),
        added_worker_ids=e.added,
        removed_worker_ids=e.removed,
        premium_delta_fen=e.premium_delta_fen,
        create_time=timestamp(e.created_at),
    )


def policy_to_proto(policy: GroupPolicy) -> pb.Policy:
    return pb.Policy(
        name=f"policies/{policy.policy_id}",
        company=f"companies/{policy.company_id}",
        product=f"products/{policy.product_id}",
        insurer=policy.insurer,
        start_date=policy.start.isoformat(),
        end_date=policy.end.isoformat(),
        state=STATE[policy.state],
        premium_fen=policy.premium_fen,
        insured_workers=[_insured(e) for e in policy.enrolments],
        endorsements=[endorsement_to_proto(e) for e in policy.endorsements],
        create_time=timestamp(policy.issued_at),
    )
