"""gRPC WorkerService: protobuf ↔ domain, nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, timedelta
from typing import Any

import grpc

from jiazheng.workers.v1 import workers_pb2 as pb
from jiazheng.workers.v1 import workers_pb2_grpc
from libs.common.auth import Role, current_principal
from libs.common.errors import InvalidArgument
from libs.common.paging import page_size
from libs.common.protoutil import calendar_date, timestamp
from services.workers import domain as d
from services.workers import queries, service_layer
from services.workers.mapping import (
    CARD_COLOUR,
    CARD_COLOUR_FROM_PROTO,
    EMPLOYMENT_MODEL,
    EMPLOYMENT_MODEL_FROM_PROTO,
    HEALTH_TIER_FROM_PROTO,
    SKILL_LEVEL,
    SPECIAL_ABILITY_FROM_PROTO,
    TRADE,
    TRADE_FROM_PROTO,
)
from services.workers.queries import WorkerFilter, WorkerReads, WorkerView
from services.workers.service_layer import HealthCheckForm, ServiceUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["WorkerService"]
_MANAGERS = frozenset({Role.COMPANY, Role.OPERATOR})
_OPERATORS = frozenset({Role.OPERATOR})
POLICY = {
    f"/{SERVICE.full_name}/{method}": roles
    for method, roles in {
        "CreateCompany": _OPERATORS,
        "GetCompany": _MANAGERS,
        "CreateWorker": _MANAGERS,
        "GetWorker": _MANAGERS,
        "ListWorkers": _MANAGERS,
        "TransferWorker": _MANAGERS,
        "RecordBackgroundCheck": _OPERATORS,
        "RecordHealthCheck": _MANAGERS,
        "RecordTraining": _MANAGERS,
        "RecordSkillCertificate": _MANAGERS,
        "SetAvailability": _MANAGERS,
        "ListPayBands": frozenset({Role.COMPANY, Role.OPERATOR, Role.PLATFORM, Role.REGULATOR}),
        "CreateConsentCode": _MANAGERS,
        "RedeemConsentCode": frozenset({Role.PLATFORM}),
        "RevokeConsentGrant": frozenset({Role.COMPANY, Role.OPERATOR, Role.PLATFORM}),
        "ListConsentGrants": frozenset({Role.COMPANY, Role.OPERATOR, Role.PLATFORM}),
    }.items()
}

Context = grpc.aio.ServicerContext[Any, Any]


def resource_id(name: str, collection: str, field: str) -> uuid.UUID:
    """The UUID of ``{collection}/{id}`` (protovalidate checked the shape)."""
    try:
        return uuid.UUID(name.removeprefix(f"{collection}/").split("/")[0])
    except ValueError:
        raise InvalidArgument(field, f"must be {collection}/{{uuid}}") from None


def company_to_proto(company: d.Company) -> pb.Company:
    return pb.Company(
        name=f"companies/{company.company_id}",
        social_credit_code=company.social_credit_code,
        display_name=company.name,
        premises_square_metres=company.premises_m2,
        outlets=[pb.Outlet(display_name=o.name, district_code=o.district_code) for o in company.outlets],
        employment_model=EMPLOYMENT_MODEL[company.employment_model],
        create_time=timestamp(company.registered_at),
    )


def company_draft(company: pb.Company) -> d.CompanyDraft:
    return d.CompanyDraft(
        social_credit_code=company.social_credit_code,
        name=company.display_name,
        premises_m2=company.premises_square_metres,
        outlets=tuple(d.Outlet(o.display_name, o.district_code) for o in company.outlets),
        employment_model=EMPLOYMENT_MODEL_FROM_PROTO[company.employment_model],
    )


def worker_to_proto(worker: WorkerView) -> pb.Worker:
    return pb.Worker(
        name=f"workers/{worker.worker_id}",
        company=f"companies/{worker.company_id}",
        masked_id_number=worker.masked_id_number,
        masked_full_name=worker.masked_name,
        masked_mobile=worker.masked_mobile,
        photo_ref=worker.photo_ref,
        service_districts=list(worker.service_districts),
        trades=[TRADE[t] for t in worker.trades],
        origin_province=worker.origin_province or "",
        skill_level=SKILL_LEVEL[worker.skill_level] if worker.skill_level else pb.SKILL_LEVEL_UNSPECIFIED,
        card_colour=CARD_COLOUR[worker.colour] if worker.colour else pb.CARD_COLOUR_UNSPECIFIED,
        card_reasons=list(worker.reasons),
        employments=[_employment(e) for e in worker.employments],
        create_time=timestamp(worker.registered_at),
    )


def _employment(employment: d.Employment) -> pb.Employment:
    message = pb.Employment(
        company=f"companies/{employment.company_id}", start_time=timestamp(employment.started_at)
    )
    if employment.ended_at is not None:
        message.end_time.CopyFrom(timestamp(employment.ended_at))
    return message


def worker_draft(request: pb.CreateWorkerRequest) -> d.WorkerDraft:
    return d.WorkerDraft(
        id_number=request.id_number,
        name=request.full_name,
        mobile=request.mobile,
        photo_ref=request.photo_ref,
        service_districts=tuple(request.service_districts),
        trades=tuple(TRADE_FROM_PROTO[t] for t in request.trades),
        origin_province=request.origin_province or None,
    )


def worker_filter(request: pb.ListWorkersRequest) -> WorkerFilter:
    company = request.parent.removeprefix("companies/")
    return WorkerFilter(
        company_id=None if company == "-" else resource_id(request.parent, "companies", "parent"),
        district_code=request.district_code or None,
        trade=TRADE_FROM_PROTO[request.trade] if request.trade else None,
        min_skill_level=d.SkillLevel(request.min_skill_level) if request.min_skill_level else None,
        colour=CARD_COLOUR_FROM_PROTO[request.card_colour] if request.card_colour else None,
    )


def _abilities(values: Sequence[int]) -> tuple[d.SpecialAbility, ...]:
    return tuple(SPECIAL_ABILITY_FROM_PROTO[pb.SpecialAbility.ValueType(v)] for v in values)


def _availability(request: pb.SetAvailabilityRequest) -> d.Availability:
    slots = tuple(d.WeeklySlot(s.day_of_week, s.start_minute, s.end_minute) for s in request.weekly_slots)
    leaves = tuple(
        d.Leave(v.start_time.ToDatetime(tzinfo=UTC), v.end_time.ToDatetime(tzinfo=UTC))
        for v in request.leaves
    )
    return d.availability(slots, leaves)


def grant_to_proto(grant: d.ConsentGrant) -> pb.ConsentGrant:
    message = pb.ConsentGrant(
        name=f"workers/{grant.worker_id}/consentGrants/{grant.grant_id}",
        platform_id=grant.platform_id,
        consumer_ref=grant.consumer_ref,
        create_time=timestamp(grant.granted_at),
        expire_time=timestamp(grant.expires_at),
    )
    if grant.revoked_at is not None:
        message.revoke_time.CopyFrom(timestamp(grant.revoked_at))
    return message


class WorkerServicer(workers_pb2_grpc.WorkerServiceServicer):
    def __init__(
        self,
        uow_factory: Callable[[], ServiceUnitOfWork],
        reads: WorkerReads,
        health_validity_months: int,
        pay_bands: tuple[d.PayBand, ...],
    ) -> None:
        self._uow = uow_factory
        self._reads = reads
        self._health_validity_months = health_validity_months
        self._pay_bands = pay_bands

    async def CreateCompany(
        self, request: pb.CreateCompanyRequest, context: Context
    ) -> pb.CreateCompanyResponse:
        company = await service_layer.create_company(
            self._uow(),
            uuid.UUID(request.request_id),
            company_draft(request.company),
            uuid.UUID(request.company_id) if request.company_id else None,
        )
        return pb.CreateCompanyResponse(company=company_to_proto(company))

    async def GetCompany(self, request: pb.GetCompanyRequest, context: Context) -> pb.GetCompanyResponse:
        company_id = resource_id(request.name, "companies", "name")
        company = await queries.get_company(self._reads, current_principal(), company_id)
        return pb.GetCompanyResponse(company=company_to_proto(company))

    async def CreateWorker(
        self, request: pb.CreateWorkerRequest, context: Context
    ) -> pb.CreateWorkerResponse:
        worker_id = await service_layer.create_worker(
            self._uow(),
            current_principal(),
            uuid.UUID(request.request_id),
            resource_id(request.parent, "companies", "parent"),
            worker_draft(request),
        )
        return pb.CreateWorkerResponse(worker=await self._worker(worker_id))

    async def GetWorker(self, request: pb.GetWorkerRequest, context: Context) -> pb.GetWorkerResponse:
        return pb.GetWorkerResponse(worker=await self._worker(resource_id(request.name, "workers", "name")))

    async def ListWorkers(self, request: pb.ListWorkersRequest, context: Context) -> pb.ListWorkersResponse:
        size = page_size(request.page_size) if request.page_size else 50
        page, token = await queries.list_workers(
            self._reads, current_principal(), worker_filter(request), size, request.page_token
        )
        return pb.ListWorkersResponse(workers=[worker_to_proto(w) for w in page], next_page_token=token)

    async def TransferWorker(
        self, request: pb.TransferWorkerRequest, context: Context
    ) -> pb.TransferWorkerResponse:
        worker_id = resource_id(request.name, "workers", "name")
        to_company = resource_id(request.company, "companies", "company")
        await service_layer.transfer_worker(self._uow(), current_principal(), worker_id, to_company)
        moved = await self._reads.worker(worker_id)  # the caller's company no longer manages it
        assert moved is not None  # just moved in a committed unit of work; workers are never deleted
        return pb.TransferWorkerResponse(worker=worker_to_proto(moved))

    async def RecordBackgroundCheck(
        self, request: pb.RecordBackgroundCheckRequest, context: Context
    ) -> pb.RecordBackgroundCheckResponse:
        check = d.BackgroundCheck(
            identity_genuine=request.identity_genuine,
            listed_crime_within_5_years=request.listed_crime_within_5_years,
            severe_mental_illness=request.severe_mental_illness,
            drug_offence_within_3_years=request.drug_offence_within_3_years,
            checked_on=calendar_date(request.check_date, "check_date"),
        )
        worker_id = resource_id(request.worker, "workers", "worker")
        colour = await service_layer.record_background_check(
            self._uow(), current_principal(), worker_id, check
        )
        return pb.RecordBackgroundCheckResponse(card_colour=CARD_COLOUR[colour])

    async def RecordHealthCheck(
        self, request: pb.RecordHealthCheckRequest, context: Context
    ) -> pb.RecordHealthCheckResponse:
        form = HealthCheckForm(
            tier=HEALTH_TIER_FROM_PROTO[request.tier],
            issued_on=calendar_date(request.issue_date, "issue_date"),
            hospital=request.hospital,
            certificate_no=request.certificate_number,
        )
        worker_id = resource_id(request.worker, "workers", "worker")
        check, colour = await service_layer.record_health_check(
            self._uow(), current_principal(), worker_id, form, self._health_validity_months
        )
        return pb.RecordHealthCheckResponse(
            valid_until=check.valid_until.isoformat(), card_colour=CARD_COLOUR[colour]
        )

    async def RecordTraining(
        self, request: pb.RecordTrainingRequest, context: Context
    ) -> pb.RecordTrainingResponse:
        training = d.Training(
            course=request.course,
            provider=request.provider,
            hours=request.hours,
            completed_on=calendar_date(request.completion_date, "completion_date"),
            exam_passed=request.exam_passed,
        )
        worker_id = resource_id(request.worker, "workers", "worker")
        await service_layer.record_training(self._uow(), current_principal(), worker_id, training)
        return pb.RecordTrainingResponse()

    async def RecordSkillCertificate(
        self, request: pb.RecordSkillCertificateRequest, context: Context
    ) -> pb.RecordSkillCertificateResponse:
        certificate = d.SkillCertificate(
            trade=TRADE_FROM_PROTO[request.trade],
            level=d.SkillLevel(request.level),
            certificate_no=request.certificate_number,
            issued_on=calendar_date(request.issue_date, "issue_date"),
            special_abilities=_abilities(request.special_abilities),
        )
        worker_id = resource_id(request.worker, "workers", "worker")
        highest = await service_layer.record_certificate(
            self._uow(), current_principal(), worker_id, certificate
        )
        return pb.RecordSkillCertificateResponse(skill_level=SKILL_LEVEL[highest])

    async def ListPayBands(
        self, request: pb.ListPayBandsRequest, context: Context
    ) -> pb.ListPayBandsResponse:
        return pb.ListPayBandsResponse(
            pay_bands=[
                pb.PayBand(
                    level=SKILL_LEVEL[b.level],
                    min_fen_per_hour=b.min_fen_per_hour,
                    max_fen_per_hour=b.max_fen_per_hour,
                )
                for b in self._pay_bands
            ]
        )

    async def SetAvailability(
        self, request: pb.SetAvailabilityRequest, context: Context
    ) -> pb.SetAvailabilityResponse:
        worker_id = resource_id(request.worker, "workers", "worker")
        await service_layer.set_availability(
            self._uow(), current_principal(), worker_id, _availability(request)
        )
        return pb.SetAvailabilityResponse()

    async def CreateConsentCode(
        self, request: pb.CreateConsentCodeRequest, context: Context
    ) -> pb.CreateConsentCodeResponse:
        worker_id = resource_id(request.worker, "workers", "worker")
        ttl = timedelta(hours=request.grant_hours or 24)
        code = await service_layer.create_consent_code(self._uow(), current_principal(), worker_id, ttl)
        return pb.CreateConsentCodeResponse(code=code.code, expire_time=timestamp(code.expires_at))

    async def RedeemConsentCode(
        self, request: pb.RedeemConsentCodeRequest, context: Context
    ) -> pb.RedeemConsentCodeResponse:
        worker_id = resource_id(request.worker, "workers", "worker")
        grant = await service_layer.redeem_consent_code(
            self._uow(), current_principal(), worker_id, request.code, request.consumer_ref
        )
        return pb.RedeemConsentCodeResponse(grant=grant_to_proto(grant))

    async def RevokeConsentGrant(
        self, request: pb.RevokeConsentGrantRequest, context: Context
    ) -> pb.RevokeConsentGrantResponse:
        worker_id = resource_id(request.name, "workers", "name")
        grant_id = resource_id(request.name.split("/consentGrants/")[-1], "", "name")
        grant = await service_layer.revoke_consent_grant(
            self._uow(), current_principal(), worker_id, grant_id
        )
        return pb.RevokeConsentGrantResponse(grant=grant_to_proto(grant))

    async def ListConsentGrants(
        self, request: pb.ListConsentGrantsRequest, context: Context
    ) -> pb.ListConsentGrantsResponse:
        worker_id = resource_id(request.parent, "workers", "parent")
        grants = await service_layer.list_consent_grants(
            self._uow(), current_principal(), worker_id, request.active_only
        )
        return pb.ListConsentGrantsResponse(grants=[grant_to_proto(g) for g in grants])

    async def _worker(self, worker_id: uuid.UUID) -> pb.Worker:
        return worker_to_proto(await queries.get_worker(self._reads, current_principal(), worker_id))
