"""Helpers for the insurance service's integration tests: thin PolicyService and ClaimService
clients, group policy requests, and insurance's events read back from Kafka."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import grpc
from google.protobuf.message import Message

from jiazheng.insurance.v1 import claims_pb2, claims_pb2_grpc, policies_pb2_grpc
from jiazheng.insurance.v1 import policies_pb2 as pb
from jiazheng.type.v1 import service_type_pb2 as st
from libs.common.beijing import BEIJING
from libs.common.kafka import events_topic
from tests.integration import kafka_tools
from tests.integration.clients import auth
from tests.integration.harness import RunningService

TOPIC = events_topic("insurance")


def beijing_today() -> date:
    return datetime.now(BEIJING).date()


def seconds_until_beijing_day(day: date) -> float:
    """From now to 00:00 Beijing time on ``day``."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    return (midnight - datetime.now(BEIJING)).total_seconds()


async def policy_call(svc: RunningService, key: str, method: str, request: Any) -> Any:
    async with svc.channel() as channel:
        stub: Any = policies_pb2_grpc.PolicyServiceStub(channel)
        return await getattr(stub, method)(request, metadata=auth(key))


def insured(
    worker_id: str,
    birth_date: date,
    job_class: int = 2,
    service_types: tuple[st.ServiceType.ValueType, ...] = (st.SERVICE_TYPE_ELDERLY_CARE,),
) -> pb.InsuredWorkerInput:
    return pb.InsuredWorkerInput(
        worker_id=worker_id,
        birth_date=birth_date.isoformat(),
        service_types=service_types,
        job_class=job_class,
    )


async def create_policy(
    svc: RunningService,
    key: str,
    product: str,
    start: date,
    end: date | None,
    *workers: pb.InsuredWorkerInput,
) -> pb.Policy:
    request = pb.CreatePolicyRequest(
        request_id=str(uuid.uuid4()),
        product=f"products/{product}",
        start_date=start.isoformat(),
        end_date=end.isoformat() if end else "",
        workers=workers,
    )
    reply: pb.CreatePolicyResponse = await policy_call(svc, key, "CreatePolicy", request)
    return reply.policy


async def events_about(bootstrap: str, subject: str, message: type[Message]) -> list[Any]:
    """The events of type ``message`` keyed ``subject`` on insurance's topic, in order, each once."""
    return await kafka_tools.events_about(bootstrap, TOPIC, subject, message)


async def claim_call(svc: RunningService, key: str, method: str, request: Any) -> Any:
    """``method`` of ClaimService with ``key``'s authorisation."""
    async with svc.channel() as channel:
        stub: Any = claims_pb2_grpc.ClaimServiceStub(channel)
        return await getattr(stub, method)(request, metadata=auth(key))


async def order_coverage(svc: RunningService, key: str, order: str) -> claims_pb2.OrderCoverage | None:
    """The coverage insurance recorded for ``order`` (orders/{id}); None while it does not know it."""
    try:
        reply = await claim_call(svc, key, "GetOrderCoverage", claims_pb2.GetOrderCoverageRequest(name=order))
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return None
    coverage: claims_pb2.OrderCoverage = reply.coverage
    return coverage
