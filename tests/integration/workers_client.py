"""Helpers for the workers service's integration tests: valid identity numbers and thin clients."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from deploy.local.stack import Endpoints
from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2 as pb
from jiazheng.workers.v1 import workers_pb2_grpc
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.workers.domain.identity import id_check_character, uscc_check_character
from tests.integration.clients import auth
from tests.integration.harness import RunningService, eventually

USCC_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"


# Each number a birth date and sequence digits never drawn before in this process (three digits
# hold 1,000 sequences a day: a counter alone repeated after 1,000 workers of one birth date).
_DRAWN: set[tuple[date, int]] = set()


def id_number(born: date | None = None) -> str:
    """A resident ID number with a correct check character, unique within a test session; born on
    ``born``, or on a random day that makes the worker 26 to 66 years old in 2026."""
    day, sequence = born or _random_birth_date(), random.randrange(1000)
    while (day, sequence) in _DRAWN:
        day, sequence = born or _random_birth_date(), random.randrange(1000)
    _DRAWN.add((day, sequence))
    first17 = f"110105{day:%Y%m%d}{sequence:03d}"
    return first17 + id_check_character(first17)


def _random_birth_date() -> date:
    return date(1960, 1, 1) + timedelta(days=random.randrange(40 * 365))


def social_credit_code() -> str:
    first17 = "9111" + "".join(random.choice(USCC_BODY) for _ in range(13))
    return first17 + uscc_check_character(first17)


async def call(svc: RunningService, key: str, method: str, request: Any) -> Any:
    """``method`` of WorkerService (or CardService, by its name) with ``key``'s authorisation."""
    async with svc.channel() as channel:
        stub: Any = (
            workers_pb2_grpc.CardServiceStub(channel)
            if method in pb.DESCRIPTOR.services_by_name["CardService"].methods_by_name
            else workers_pb2_grpc.WorkerServiceStub(channel)
        )
        return await getattr(stub, method)(request, metadata=auth(key))


async def create_company(svc: RunningService, operator_key: str, company_id: str = "") -> pb.Company:
    company = pb.Company(
        social_credit_code=social_credit_code(),
        display_name="北京好家政有限公司",
        premises_square_metres=80,
        outlets=[pb.Outlet(display_name="望京网点", district_code="110105")],
        employment_model=pb.EMPLOYMENT_MODEL_EMPLOYEE,
    )
    request = pb.CreateCompanyRequest(request_id=str(uuid.uuid4()), company=company, company_id=company_id)
    reply: pb.CreateCompanyResponse = await call(svc, operator_key, "CreateCompany", request)
    return reply.company


async def ensure_company(svc: RunningService, operator_key: str, company_id: str) -> pb.Company:
    """The company ``company_id``, registered unless another module of this session did (the
    session's workers database is shared: the demo company's key acts for that one id)."""
    try:
        return await create_company(svc, operator_key, company_id)
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    request = pb.GetCompanyRequest(name=f"companies/{company_id}")
    reply: pb.GetCompanyResponse = await call(svc, operator_key, "GetCompany", request)
    return reply.company


def worker_request(company: str, **fields: Any) -> pb.CreateWorkerRequest:
    request = pb.CreateWorkerRequest(
        request_id=str(uuid.uuid4()),
        parent=company,
        id_number=id_number(),
        full_name="王芳",
        mobile="13912345678",
        photo_ref="photos/wang.jpg",
        service_districts=["110105", "110108"],
        trades=[pb.TRADE_HOUSEKEEPER],
    )
    for name, value in fields.items():
        field = getattr(request, name)
        if isinstance(value, list):
            del field[:]
            field.extend(value)
        else:
            setattr(request, name, value)
    return request


async def create_worker(svc: RunningService, key: str, company: str, **fields: Any) -> pb.Worker:
    reply: pb.CreateWorkerResponse = await call(svc, key, "CreateWorker", worker_request(company, **fields))
    return reply.worker


def coverage_event(worker: str, valid_until: date) -> EventEnvelope:
    """insurance's event: ``worker`` (workers/{id}) covered through ``valid_until``."""
    message = insurance_events.WorkerCoverageChanged(
        worker_id=worker.removeprefix("workers/"),
        covered=True,
        valid_until=valid_until.isoformat(),
        policy="policies/p-1",
        change_time=timestamp(datetime.now(UTC)),
    )
    return new_event(message, source="/jiazheng/insurance", subject=worker)


def uncovered_event(worker: str) -> EventEnvelope:
    """insurance's event: ``worker``'s cover ended."""
    message = insurance_events.WorkerCoverageChanged(
        worker_id=worker.removeprefix("workers/"), covered=False, change_time=timestamp(datetime.now(UTC))
    )
    return new_event(message, source="/jiazheng/insurance", subject=worker)


def card_colour_event(worker: str, colour: pb.CardColour.ValueType) -> EventEnvelope:
    """workers' event: ``worker``'s card turned ``colour`` (from GREEN)."""
    message = worker_events.CardStatusChanged(
        worker_id=worker.removeprefix("workers/"),
        colour=colour,
        previous_colour=pb.CARD_COLOUR_GREEN,
        change_time=timestamp(datetime.now(UTC)),
    )
    return new_event(message, source="/jiazheng/workers", subject=worker)


async def produce(bootstrap: str, topic: str, *events: EventEnvelope) -> list[RecordMetadata]:
    """The records as the producers' relays send them (binary binding, key = subject)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        return [
            await producer.send_and_wait(topic, value=e.data, key=e.key, headers=e.kafka_headers())
            for e in events
        ]
    finally:
        await producer.stop()


async def card_colour(svc: RunningService, key: str, worker: str) -> pb.CardColour.ValueType:
    reply: pb.GetWorkerResponse = await call(svc, key, "GetWorker", pb.GetWorkerRequest(name=worker))
    return reply.worker.card_colour


async def becomes(svc: RunningService, key: str, worker: str, colour: pb.CardColour.ValueType) -> None:
    async def shown() -> bool:
        return await card_colour(svc, key, worker) == colour

    await eventually(shown, within=60)


async def ready_worker(
    endpoints: Endpoints,
    workers: RunningService,
    operator: str,
    company: str,
    district: str = "110105",
    insured: bool = True,
) -> tuple[str, str]:
    """A GREEN family carer (level 4, elderly-care health check) serving ``district`` (朝阳 unless
    said) all week; its id and the verification link its card's QR code encodes. Not ``insured``:
    no coverage event, the card waits (YELLOW) for a real policy."""
    worker = await create_worker(
        workers, operator, company, service_districts=[district], trades=[pb.TRADE_FAMILY_CARER]
    )
    today = date.today()
    steps = [
        (
            "RecordBackgroundCheck",
            pb.RecordBackgroundCheckRequest(
                worker=worker.name, identity_genuine=True, check_date=(today - timedelta(days=30)).isoformat()
            ),
        ),
        (
            "RecordHealthCheck",
            pb.RecordHealthCheckRequest(
                worker=worker.name,
                tier=pb.HEALTH_TIER_ELDERLY_CARE,
                issue_date=(today - timedelta(days=10)).isoformat(),
                hospital="北京协和医院",
                certificate_number="TJ-1",
            ),
        ),
        (
            "RecordSkillCertificate",
            pb.RecordSkillCertificateRequest(
                worker=worker.name,
                trade=pb.TRADE_FAMILY_CARER,
                level=pb.SKILL_LEVEL_4,
                certificate_number="ZS-4",
                issue_date=(today - timedelta(days=5)).isoformat(),
            ),
        ),
        (
            "SetAvailability",
            pb.SetAvailabilityRequest(
                worker=worker.name,
                weekly_slots=[
                    pb.WeeklySlot(day_of_week=d, start_minute=0, end_minute=1440) for d in range(1, 8)
                ],
            ),
        ),
    ]
    for method, request in steps:
        await call(workers, operator, method, request)
    card = (await call(workers, operator, "IssueCard", pb.IssueCardRequest(worker=worker.name))).card
    if not insured:
        return worker.name.removeprefix("workers/"), card.verification_url
    await produce(
        endpoints.kafka_bootstrap,
        events_topic("insurance"),
        coverage_event(worker.name, today + timedelta(days=365)),
    )
    await becomes(workers, operator, worker.name, pb.CARD_COLOUR_GREEN)
    return worker.name.removeprefix("workers/"), card.verification_url
