"""Companies' credit on the real stack: an operator's decision through CompanyCreditService grades
the company and is published on credit's topic; a complaint filed and answered in complaints
reaches the company's record in credit by events alone; a worker's award, then the worker's move
to another company, and a complaint filed against a company regrade the companies once the regrade
delay has passed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest

from deploy.local.services import DEMO_COMPANY_ID
from deploy.local.stack import Endpoints, scratch_database
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from jiazheng.workers.v1 import workers_pb2 as w
from libs.common.events import envelope_from_kafka
from libs.common.kafka import ensure_topics, events_topic
from libs.common.settings import ServiceSettings
from services.credit import companies
from services.credit.app import CONSUMER, SOURCES
from services.credit.model import BEIJING
from tests.integration.clients import auth, db_value
from tests.integration.complaints_client import complaints_call, file_company_complaint
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import read_topic, start_group_at_end
from tests.integration.test_credit_lookups import credit_of
from tests.integration.workers_client import call, create_company, create_worker

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
    name = await file_company_complaint(
        complaints, harness.key("demo-platform"), f"companies/{DEMO_COMPANY_ID}", "约定的厨房清洁没有完成"
    )
    answering = datetime.now(UTC)
    await complaints_call(
        complaints, harness.key("demo-company"), "RespondToCase", c.RespondToCaseRequest(name=name)
    )
    dsn, case_id = endpoints.dsn("jz_credit"), name.removeprefix("cases/")

    async def answered() -> bool:
        sql = "SELECT response_seconds IS NOT NULL FROM company_complaints WHERE case_id = $1"
        return bool(await db_value(dsn, sql, case_id))

    await eventually(answered, within=60)
    sql = "SELECT company_id || ' ' || response_seconds FROM company_complaints WHERE case_id = $1"
    company_id, seconds = (await db_value(dsn, sql, case_id)).split()
    assert company_id == DEMO_COMPANY_ID
    assert 0 <= int(seconds) <= (datetime.now(UTC) - answering).total_seconds() + 60
    # The answer set the company's regrade timer, or joined a pending one (an earlier test's change)
    # that has fired since: regraded within the delay of the answer either way.
    regraded_or_due = (
        "SELECT EXISTS (SELECT 1 FROM timers WHERE kind = $3 AND key = $1"
        " AND fired_at IS NULL AND due_at <= now() + make_interval(secs => $4))"
        " OR EXISTS (SELECT 1 FROM company_grades WHERE company_id = $1 AND graded_at >= $2)"
    )
    since, delay_s = answering - timedelta(seconds=5), companies.REGRADE_DELAY.total_seconds()
    assert await db_value(dsn, regraded_or_due, DEMO_COMPANY_ID, since, companies.REGRADE_TIMER, delay_s)
    got = await company_credit_call(
        credit,
        harness.key("operator"),
        "GetCompanyCredit",
        credit_pb2.GetCompanyCreditRequest(name=f"companies/{DEMO_COMPANY_ID}"),
    )
    assert got.credit.company == f"companies/{DEMO_COMPANY_ID}"


REGRADE_DELAY = timedelta(seconds=2)


@dataclass(frozen=True)
class Regrading:
    """The credit process of this module's regrade tests and its database."""

    credit: RunningService
    dsn: str


@pytest.fixture(scope="module")
async def regrading(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService
) -> AsyncIterator[Regrading]:
    """A credit process of its own that regrades a company 2 s after a change (its workers, a case):
    its own database, and its own consumer group, reading from the topics' ends, so that the
    session's credit process (whose delay is the default) sets no timer of these companies; its
    relay is off (what it publishes stays in its outbox)."""
    group = f"regrade-{uuid.uuid4().hex[:8]}"
    await ensure_topics(ServiceSettings(kafka_bootstrap=endpoints.kafka_bootstrap), SOURCES)
    for topic in SOURCES:
        await start_group_at_end(endpoints.kafka_bootstrap, f"{group}-{CONSUMER}", topic)
    async with scratch_database(endpoints, "jz_credit_regrade") as database:
        svc = await harness.start(
            "credit",
            database,
            consumer_group_prefix=group,
            relay_enabled="false",
            company_regrade_delay_s=str(REGRADE_DELAY.total_seconds()),
        )
        yield Regrading(svc, endpoints.dsn(database))
        svc.stop()  # before its database is dropped


@dataclass(frozen=True)
class StoredGrade:
    grade: str
    points: int
    graded_at: datetime


async def _stored(regrading: Regrading, company: str) -> StoredGrade | None:
    conn = await asyncpg.connect(regrading.dsn)
    try:
        row = await conn.fetchrow(
            "SELECT grade, points, graded_at FROM company_grades WHERE company_id = $1",
            company.removeprefix("companies/"),
        )
    finally:
        await conn.close()
    return StoredGrade(**row) if row else None


async def _graded_after(regrading: Regrading, company: str, since: datetime) -> StoredGrade:
    """The company's stored grade, once it has been regraded after ``since``."""

    async def regraded() -> StoredGrade | None:
        stored = await _stored(regrading, company)
        return stored if stored and stored.graded_at > since else None

    return await eventually(regraded, within=REGRADE_DELAY.total_seconds() + 30)


async def test_an_award_then_a_move_regrade_the_companies_from_their_workers_after_the_delay(
    harness: ServiceHarness, workers: RunningService, regrading: Regrading
) -> None:
    operator, regulator = harness.key("operator"), harness.key("regulator")
    first, second = await create_company(workers, operator), await create_company(workers, operator)
    worker_id = (await create_worker(workers, operator, first.name)).name.removeprefix("workers/")
    # Registered, the worker has no score: 30 (no complaint) + 20 (none to answer), no worker line.
    joined = await _graded_after(regrading, first.name, datetime.min.replace(tzinfo=UTC))
    assert (joined.grade, joined.points) == ("B", 50)

    awarding = datetime.now(UTC)
    award = credit_pb2.RecordWorkerAwardRequest(
        name=f"workers/{worker_id}",
        request_id=str(uuid.uuid4()),
        title="北京市家政服务职业技能竞赛 一等奖",
        tier=3,
        award_date=datetime.now(BEIJING).date().isoformat(),
    )
    async with regrading.credit.channel() as channel:
        scored = await credit_pb2_grpc.CreditServiceStub(channel).RecordWorkerAward(
            award, metadata=auth(operator)
        )
    awarded = datetime.now(UTC)
    assert scored.credit.score == 660

    # The mean of 660 adds 40 × 160 // 300 = 21: A. Regraded by the timer the score change set.
    regraded = await _graded_after(regrading, first.name, joined.graded_at)
    assert (regraded.grade, regraded.points) == ("A", 71)
    assert awarding + REGRADE_DELAY <= regraded.graded_at <= awarded + REGRADE_DELAY + timedelta(seconds=10)
    public = await credit_of(regrading.credit, regulator, worker_id)
    assert (public.company, public.company_grade) == (first.name, "A")

    moving = datetime.now(UTC)
    await call(
        workers,
        operator,
        "TransferWorker",
        w.TransferWorkerRequest(name=f"workers/{worker_id}", company=second.name),
    )

    left, gained = [await _graded_after(regrading, c.name, moving + REGRADE_DELAY) for c in (first, second)]
    assert ((left.grade, left.points), (gained.grade, gained.points)) == (("B", 50), ("A", 71))
    got = await company_credit_call(
        regrading.credit, regulator, "GetCompanyCredit", credit_pb2.GetCompanyCreditRequest(name=second.name)
    )
    assert (got.credit.grade, got.credit.workers_mean_score) == ("A", 660)


async def test_a_complaint_filed_in_complaints_regrades_the_company_after_the_delay(
    harness: ServiceHarness, workers: RunningService, complaints: RunningService, regrading: Regrading
) -> None:
    company = await create_company(workers, harness.key("operator"))
    filing = datetime.now(UTC)
    await file_company_complaint(complaints, harness.key("demo-platform"), company.name, "约定的保洁没有上门")

    # One case received, none resolved (0 of the 30 resolution points), none answered yet (within
    # 24 h: 20 response points): 20, C. Regraded by the timer the case set, not in the case's poll.
    graded = await _graded_after(regrading, company.name, datetime.min.replace(tzinfo=UTC))
    assert (graded.grade, graded.points) == ("C", 20)
    assert graded.graded_at >= filing + REGRADE_DELAY
    got = await company_credit_call(
        regrading.credit,
        harness.key("regulator"),
        "GetCompanyCredit",
        credit_pb2.GetCompanyCreditRequest(name=company.name),
    )
    assert got.credit.grade == graded.grade
