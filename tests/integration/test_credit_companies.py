"""Companies' credit on the real stack: an operator's decision through CompanyCreditService grades
the company and is published on credit's topic; a complaint filed and answered in complaints
reaches the company's record in credit by events alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from deploy.local.services import DEMO_COMPANY_ID
from deploy.local.stack import Endpoints
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from libs.common.events import envelope_from_kafka
from libs.common.kafka import events_topic
from services.credit.model import BEIJING
from tests.integration.clients import auth, db_value
from tests.integration.complaints_client import complaints_call
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import read_topic

pytestmark = pytest.mark.integration


async def company_credit_call(credit: RunningService, key: str, method: str, request: Any) -> Any:
    async with credit.channel() as channel:
        stub: Any = credit_pb2_grpc.CompanyCreditServiceStub(channel)
        return await getattr(stub, method)(request, metadata=auth(key))


async def _decisions_published(bootstrap: str, name: str) -> list[credit_events.CompanyDecisionRecorded]:
    found = {}
    for record in await read_topic(bootstrap, events_topic("credit")):
        event = envelope_from_kafka(record.headers, record.value)
        if record.key == name.encode() and event.type.endswith(".CompanyDecisionRecorded"):
            found[event.id] = event.parse(credit_events.CompanyDecisionRecorded)  # the relay: at least once
    return list(found.values())


async def test_an_operators_black_list_decision_grades_the_company_c_and_is_published(
    endpoints: Endpoints, harness: ServiceHarness, credit: RunningService
) -> None:
    operator, platform = harness.key("operator"), harness.key("demo-platform")
    name = f"companies/co-{uuid.uuid4().hex[:12]}"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await company_credit_call(
            credit, platform, "GetCompanyCredit", credit_pb2.GetCompanyCreditRequest(name=name)
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    today = datetime.now(BEIJING).date().isoformat()
    decision = credit_pb2.CompanyDecision(
        kind=credit_pb2.DECISION_KIND_BLACK_LIST, reason="拖欠服务员工资，列入失信名单", decision_date=today
    )
    request = credit_pb2.RecordCompanyDecisionRequest(
        name=name, request_id=str(uuid.uuid4()), decision=decision
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await company_credit_call(credit, platform, "RecordCompanyDecision", request)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    recorded = await company_credit_call(credit, operator, "RecordCompanyDecision", request)
    retried = await company_credit_call(credit, operator, "RecordCompanyDecision", request)

    got = await company_credit_call(
        credit, platform, "GetCompanyCredit", credit_pb2.GetCompanyCreditRequest(name=name)
    )
    assert (got.credit.grade, got.credit.black_listed, got.credit.red_listed) == ("C", True, False)
    assert list(got.credit.decisions) == [decision]
    assert recorded.credit == retried.credit == got.credit

    async def published() -> list[credit_events.CompanyDecisionRecorded]:
        return await _decisions_published(endpoints.kafka_bootstrap, name)

    [event] = await eventually(published, within=60)
    assert (event.company_id, event.kind, event.grade, event.decision_date) == (
        name.removeprefix("companies/"),
        "black_list",
        "C",
        today,
    )

    end = credit_pb2.CompanyDecision(
        kind=credit_pb2.DECISION_KIND_RED_LIST_ENDED, reason="移出红名单", decision_date=today
    )
    with pytest.raises(grpc.aio.AioRpcError) as not_listed:
        await company_credit_call(
            credit,
            operator,
            "RecordCompanyDecision",
            credit_pb2.RecordCompanyDecisionRequest(name=name, request_id=str(uuid.uuid4()), decision=end),
        )
    assert not_listed.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_complaint_filed_and_answered_in_complaints_reaches_the_companys_record(
    endpoints: Endpoints, harness: ServiceHarness, complaints: RunningService, credit: RunningService
) -> None:
    complaint = c.FileComplaintRequest(
        request_id=str(uuid.uuid4()),
        respondent=c.PARTY_KIND_COMPANY,
        company=f"companies/{DEMO_COMPANY_ID}",
        category=c.CATEGORY_QUALITY,
        severity=c.SEVERITY_MINOR,
        description="约定的厨房清洁没有完成",
    )
    filed = (
        await complaints_call(complaints, harness.key("demo-platform"), "FileComplaint", complaint)
    ).complaint_case
    answering = datetime.now(UTC)
    await complaints_call(
        complaints, harness.key("demo-company"), "RespondToCase", c.RespondToCaseRequest(name=filed.name)
    )
    dsn, case_id = endpoints.dsn("jz_credit"), filed.name.removeprefix("cases/")

    async def answered() -> bool:
        sql = "SELECT response_seconds IS NOT NULL FROM company_complaints WHERE case_id = $1"
        return bool(await db_value(dsn, sql, case_id))

    await eventually(answered, within=60)
    sql = "SELECT company_id || ' ' || response_seconds FROM company_complaints WHERE case_id = $1"
    company_id, seconds = (await db_value(dsn, sql, case_id)).split()
    assert company_id == DEMO_COMPANY_ID
    assert 0 <= int(seconds) <= (datetime.now(UTC) - answering).total_seconds() + 60
    graded_at = await db_value(
        dsn, "SELECT graded_at FROM company_grades WHERE company_id = $1", DEMO_COMPANY_ID
    )
    assert graded_at >= answering - timedelta(seconds=5)  # regraded when the answer arrived
    got = await company_credit_call(
        credit,
        harness.key("operator"),
        "GetCompanyCredit",
        credit_pb2.GetCompanyCreditRequest(name=f"companies/{DEMO_COMPANY_ID}"),
    )
    assert got.credit.company == f"companies/{DEMO_COMPANY_ID}"
