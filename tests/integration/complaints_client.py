"""A thin client of the complaints service's APIs for the integration tests."""

from __future__ import annotations

import uuid
from typing import Any

from deploy.local.services import DEMO_COMPANY_ID
from jiazheng.complaints.events.v1 import events_pb2 as ce
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.complaints.v1 import complaints_pb2_grpc
from libs.common.events import envelope_from_kafka
from libs.common.kafka import events_topic
from tests.integration.clients import auth
from tests.integration.harness import RunningService
from tests.integration.kafka_tools import read_topic

MEDIATION_METHODS = c.DESCRIPTOR.services_by_name["MediationService"].methods_by_name


def company_complaint(**fields: Any) -> c.FileComplaintRequest:
    """A new complaint about the demo company's service quality (major, a phone number in its
    description, one photo), with ``fields`` set over it."""
    request = c.FileComplaintRequest(
        request_id=str(uuid.uuid4()),
        respondent=c.PARTY_KIND_COMPANY,
        company=f"companies/{DEMO_COMPANY_ID}",
        category=c.CATEGORY_QUALITY,
        severity=c.SEVERITY_MAJOR,
        description="阿姨打扫不干净，联系电话13800001234",
        evidence_refs=["photos/kitchen-1.jpg"],
    )
    for name, value in fields.items():
        setattr(request, name, value)
    return request


async def complaints_call(
    svc: RunningService, key: str, method: str, request: Any, traceparent: str | None = None
) -> Any:
    """``method`` of ComplaintService or MediationService, with ``key``'s authorisation (and the
    caller's trace, when given)."""
    async with svc.channel() as channel:
        stub: Any = (
            complaints_pb2_grpc.MediationServiceStub(channel)
            if method in MEDIATION_METHODS
            else complaints_pb2_grpc.ComplaintServiceStub(channel)
        )
        return await getattr(stub, method)(request, metadata=auth(key, traceparent))


async def file_worker_complaint(
    svc: RunningService,
    key: str,
    worker_id: str,
    company: str,
    category: c.Category.ValueType = c.CATEGORY_THEFT,
    severity: c.Severity.ValueType = c.SEVERITY_SEVERE,
    description: str = "服务后发现首饰丢失",
) -> str:
    """A consumer's complaint against the worker of ``company``, filed through the platform whose
    ``key`` is given: the case's name (cases/{id})."""
    complaint = c.FileComplaintRequest(
        request_id=str(uuid.uuid4()),
        respondent=c.PARTY_KIND_WORKER,
        worker=f"workers/{worker_id}",
        company=company,
        category=category,
        severity=severity,
        description=description,
    )
    filed = await complaints_call(svc, key, "FileComplaint", complaint)
    return str(filed.complaint_case.name)


async def file_company_complaint(svc: RunningService, key: str, company: str, description: str) -> str:
    """A consumer's minor complaint about the quality of ``company``'s service, filed through the
    platform whose ``key`` is given: the case's name (cases/{id})."""
    complaint = c.FileComplaintRequest(
        request_id=str(uuid.uuid4()),
        respondent=c.PARTY_KIND_COMPANY,
        company=company,
        category=c.CATEGORY_QUALITY,
        severity=c.SEVERITY_MINOR,
        description=description,
    )
    filed = await complaints_call(svc, key, "FileComplaint", complaint)
    return str(filed.complaint_case.name)


async def case_events(bootstrap: str, name: str) -> list[tuple[str, Any]]:
    """The case's events in order, each once: the relay delivers at least once (a process stopped
    between sending and marking sent sends again), consumers and this reader dedupe by event id."""
    records = sorted(
        (r for r in await read_topic(bootstrap, events_topic("complaints")) if r.key == name.encode()),
        key=lambda r: r.offset,
    )
    found, seen = [], set()
    for record in records:
        event = envelope_from_kafka(record.headers, record.value)
        if event.id not in seen:
            seen.add(event.id)
            kind = event.type.rsplit(".", 1)[-1]
            found.append((kind, event.parse(getattr(ce, kind))))
    return found
