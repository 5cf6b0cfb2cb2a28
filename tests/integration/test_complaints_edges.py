"""The complaints service's refusals and later deadlines on the real stack: real complaints processes
on a database of their own, orders' events and complaints' own on Kafka. Each process's clock is
set to a chosen instant (JZ_CLOCK_OFFSET_S), so a deadline set by one fires in a later one by the
clock alone, as after a restart; nothing sleeps.

Working days of 2026 (chinese-calendar): 清明 4-6 April off; 劳动节 1-5 May off, Saturday 9 May
a make-up working day."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import grpc
import pytest
from aiokafka import AIOKafkaProducer

from deploy.local.services import stopped_after
from deploy.local.stack import Endpoints
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.orders.events.v1 import events_pb2 as order_events
from libs.common.events import new_event
from libs.common.kafka import ensure_topics, events_topic
from libs.common.settings import ServiceSettings
from tests.integration.complaints_client import case_events, company_complaint, complaints_call
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import start_group_at_end

pytestmark = pytest.mark.integration
BEIJING = timezone(timedelta(hours=8))
COMPANY = "00000000-0000-4000-8000-00000000c001"  # the demo-company key's tenant
ORDERS_TOPIC = events_topic("orders")
SOURCES = [ORDERS_TOPIC, events_topic("insurance")]  # what complaints consumes
OUTCOME = c.Outcome(result=c.OUTCOME_RESULT_PARTLY_SUBSTANTIATED, at_fault=c.PARTY_KIND_COMPANY)


@pytest.fixture
async def env(endpoints: Endpoints, orders_keys: dict[str, str]) -> dict[str, str]:
    """The processes' settings: the session's personal-data keys, and a consumer group of their
    own that starts at the ends of the topics complaints consumes: the session's complaints
    process keeps its partitions, and these read only what their test publishes."""
    group = f"edges-{uuid.uuid4().hex[:8]}"
    await ensure_topics(ServiceSettings(kafka_bootstrap=endpoints.kafka_bootstrap), SOURCES)
    for topic in SOURCES:
        await start_group_at_end(endpoints.kafka_bootstrap, f"{group}-complaints", topic)
    pii = {k: v for k, v in orders_keys.items() if k.startswith("pii_")}
    return {**pii, "consumer_group_prefix": group}


@asynccontextmanager
async def complaints_at(
    harness: ServiceHarness, database: str, env: dict[str, str], instant: datetime
) -> AsyncIterator[RunningService]:
    """A complaints process on ``database`` whose clock reads ``instant`` now; its timers are
    polled every half second."""
    offset = str((instant - datetime.now(UTC)).total_seconds())
    settings = {**env, "clock_offset_s": offset, "timer_poll_interval_s": "0.5"}
    async with stopped_after(await harness.start("complaints", database, 0, False, **settings)) as svc:
        yield svc


async def _rows(dsn: str) -> tuple[int, int]:
    """How many cases and outbox rows the database holds."""
    conn = await asyncpg.connect(dsn)
    try:
        cases = await conn.fetchval("SELECT count(*) FROM cases")
        outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await conn.close()
    return cases, outbox


async def _refused(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code(), refused.value.details() or ""


async def _case(svc: RunningService, key: str, name: str) -> c.Case:
    reply = await complaints_call(svc, key, "GetCase", c.GetCaseRequest(name=name))
    case: c.Case = reply.complaint_case
    return case


async def _published_until(bootstrap: str, name: str, last: str) -> list[tuple[str, Any]]:
    """The case's events once ``last`` is among them (read while the publishing process runs)."""

    async def published() -> list[tuple[str, Any]]:
        found = await case_events(bootstrap, name)
        return found if last in [kind for kind, _ in found] else []

    return await eventually(published, within=60)


def _one(found: list[tuple[str, Any]], kind: str) -> Any:
    [event] = [e for k, e in found if k == kind]
    return event


def _wage_dispute() -> c.FileWorkerDisputeRequest:
    return c.FileWorkerDisputeRequest(
        request_id=str(uuid.uuid4()),
        worker=f"workers/{uuid.uuid4()}",
        respondent=c.PARTY_KIND_COMPANY,
        company=f"companies/{COMPANY}",
        category=c.CATEGORY_UNPAID_WAGES,
        severity=c.SEVERITY_MAJOR,
        description="两个月工资未发",
        employee_model=True,
    )


async def _rejected(svc: RunningService, harness: ServiceHarness, name: str) -> c.Case:
    """The demo company rejects the case: it goes to its mediation body's queue."""
    decide = c.DecideCaseRequest(name=name, accept=False)
    reply = await complaints_call(svc, harness.key("demo-company"), "DecideCase", decide)
    case: c.Case = reply.complaint_case
    assert case.state == c.CASE_STATE_IN_MEDIATION
    return case


# -- another tenant's order, a reused request id ----------------------------------------------


async def _publish_order(bootstrap: str, order_id: str, platform: str, worker: str) -> None:
    """OrderCreated and OrderAssigned on orders' topic, as orders' relay sends them."""
    created = order_events.OrderCreated(order_id=order_id, platform_id=platform, district_code="110105")
    assigned = order_events.OrderAssigned(
        order_id=order_id, platform_id=platform, district_code="110105", worker_id=worker, company_id=COMPANY
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for message in (created, assigned):
            event = new_event(message, source="/jiazheng/orders", subject=f"orders/{order_id}")
            await producer.send(ORDERS_TOPIC, value=event.data, key=event.key, headers=event.kafka_headers())
        await producer.flush()
    finally:
        await producer.stop()


async def test_another_platforms_order_is_not_found_and_a_reused_request_id_is_refused(
    endpoints: Endpoints, harness: ServiceHarness, scratch_database: str, env: dict[str, str]
) -> None:
    dsn = endpoints.dsn(scratch_database)
    order_id, worker_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    async with complaints_at(harness, scratch_database, env, now) as svc:
        await _publish_order(endpoints.kafka_bootstrap, order_id, "demo-platform", worker_id)

        async def known() -> bool:
            conn = await asyncpg.connect(dsn)
            try:
                found = await conn.fetchval(
                    "SELECT company_id FROM known_orders WHERE order_id = $1", order_id
                )
            finally:
                await conn.close()
            return bool(found == COMPANY)

        await eventually(known, within=60)
        about_order = {"order": f"orders/{order_id}", "respondent": c.PARTY_KIND_WORKER, "company": ""}
        before = await _rows(dsn)

        other = harness.key("other-platform")
        code, details = await _refused(
            complaints_call(svc, other, "FileComplaint", company_complaint(**about_order))
        )
        assert code == grpc.StatusCode.NOT_FOUND
        assert f"orders/{order_id}" in details
        assert await _rows(dsn) == before

        # The same order through its own platform: known, and it names the worker and the company.
        mine = company_complaint(**about_order)
        platform = harness.key("demo-platform")
        filed = (await complaints_call(svc, platform, "FileComplaint", mine)).complaint_case
        assert (filed.worker, filed.company) == (f"workers/{worker_id}", f"companies/{COMPANY}")
        after_filing = await _rows(dsn)
        assert after_filing == (before[0] + 1, before[1] + 1)  # the case and its CaseFiled

        retried = (await complaints_call(svc, platform, "FileComplaint", mine)).complaint_case
        assert retried == filed  # the first answer
        reused = company_complaint(**about_order, request_id=mine.request_id, description="另一件事")
        code, details = await _refused(complaints_call(svc, platform, "FileComplaint", reused))
        assert code == grpc.StatusCode.ALREADY_EXISTS
        assert filed.name in details
        assert await _rows(dsn) == after_filing
        assert (await _case(svc, platform, filed.name)).description == mine.description


# -- an expired lease ---------------------------------------------------------------------------


def _holder_steps(name: str) -> dict[str, Any]:
    """Every step only the mediator holding the case takes, as (method, request)."""
    undertaking = c.Undertaking(party=c.PARTY_KIND_COMPANY, action="退还服务费", due_date="2099-01-31")
    agreement = c.Agreement(facts="打扫不干净", responsibility="公司承担", undertakings=[undertaking])
    return {
        "ResolveCase": c.ResolveCaseRequest(name=name, outcome=OUTCOME),
        "RecordAgreement": c.RecordAgreementRequest(name=name, agreement=agreement, outcome=OUTCOME),
        "EndMediation": c.EndMediationRequest(name=name, route=c.ESCALATION_ROUTE_COURT),
        "ReleaseCase": c.ReleaseCaseRequest(name=name),
    }


async def test_every_holder_step_of_an_expired_lease_is_the_same_precise_error(
    endpoints: Endpoints, harness: ServiceHarness, scratch_database: str, env: dict[str, str]
) -> None:
    holder, other = harness.key("consumer-mediator"), harness.key("consumer-mediator-2")
    operator = harness.key("operator")
    dsn = endpoints.dsn(scratch_database)
    now = datetime.now(UTC)
    async with complaints_at(harness, scratch_database, env, now) as svc:
        filed = await complaints_call(svc, harness.key("demo-platform"), "FileComplaint", company_complaint())
        await _rejected(svc, harness, filed.complaint_case.name)
        claimed = (
            await complaints_call(svc, holder, "ClaimNextCase", c.ClaimNextCaseRequest())
        ).complaint_case
    assert claimed.mediator == "consumer-mediator"

    # 31 minutes later the 30-minute lease has expired; nobody claimed the case meanwhile.
    async with complaints_at(harness, scratch_database, env, now + timedelta(minutes=31)) as svc:
        before = (await _rows(dsn), await _case(svc, operator, claimed.name))
        answers = {}
        for method, request in _holder_steps(claimed.name).items():
            answers[method] = (
                await _refused(complaints_call(svc, holder, method, request)),
                (await _refused(complaints_call(svc, other, method, request)))[0],
            )
        assert (await _rows(dsn), await _case(svc, operator, claimed.name)) == before

        # Claimed again, the holder resolves it.
        again = (await complaints_call(svc, holder, "ClaimNextCase", c.ClaimNextCaseRequest())).complaint_case
        assert again.name == claimed.name
        request = _holder_steps(claimed.name)["ResolveCase"]
        resolved = (await complaints_call(svc, holder, "ResolveCase", request)).complaint_case
    assert resolved.state == c.CASE_STATE_RESOLVED
    expired = grpc.StatusCode.FAILED_PRECONDITION
    assert {method: (code, other_code) for method, ((code, _), other_code) in answers.items()} == {
        method: (expired, grpc.StatusCode.PERMISSION_DENIED) for method in _holder_steps(claimed.name)
    }
    for method, ((_, details), _) in answers.items():
        assert details.endswith("your lease expired; claim it again"), (method, details)


# -- the deadlines after mediation, by the clock alone -----------------------------------------

IN_MEDIATION_AT = datetime(2026, 3, 2, 10, 0, tzinfo=BEIJING)  # a Monday
# The 45th working day after 2 March is Friday 8 May (清明 and 劳动节 off): mediation ends at
# 00:00 on Saturday 9 May, itself a make-up working day.
MEDIATION_DUE = datetime(2026, 5, 9, tzinfo=BEIJING)
FOLLOW_UP_DUE = datetime(2026, 3, 6, tzinfo=BEIJING)  # the end of the undertaking's date, 5 March
# Referred on Saturday 9 May: 5 working days are 11 to 15 May.
REFERRAL_DUE = datetime(2026, 5, 16, tzinfo=BEIJING)


def _at(stamp: Any) -> datetime:
    moment: datetime = stamp.ToDatetime(tzinfo=UTC)
    return moment


async def _until_state(svc: RunningService, key: str, name: str, state: c.CaseState.ValueType) -> c.Case:
    async def reached() -> c.Case | None:
        case = await _case(svc, key, name)
        return case if case.state == state else None

    return await eventually(reached, within=60)


async def _referral(svc: RunningService, operator: str, name: str) -> c.Referral:
    listed: c.ListReferralsResponse = await complaints_call(
        svc, operator, "ListReferrals", c.ListReferralsRequest()
    )
    [referral] = [r for r in listed.referrals if r.case_name == name]
    return referral


async def test_mediation_agreement_and_referral_deadlines_fire_by_the_clock_alone(
    endpoints: Endpoints, harness: ServiceHarness, scratch_database: str, env: dict[str, str]
) -> None:
    platform, mediator = harness.key("demo-platform"), harness.key("consumer-mediator")
    operator, bootstrap = harness.key("operator"), endpoints.kafka_bootstrap
    async with complaints_at(harness, scratch_database, env, IN_MEDIATION_AT) as svc:
        # A complaint with an agreement whose undertaking is due on 5 March.
        agreed = (await complaints_call(svc, platform, "FileComplaint", company_complaint())).complaint_case
        await _rejected(svc, harness, agreed.name)
        await complaints_call(svc, mediator, "ClaimNextCase", c.ClaimNextCaseRequest())
        undertaking = c.Undertaking(party=c.PARTY_KIND_COMPANY, action="退还服务费", due_date="2026-03-05")
        agreement = c.Agreement(facts="打扫不干净", responsibility="公司承担", undertakings=[undertaking])
        record = c.RecordAgreementRequest(name=agreed.name, agreement=agreement, outcome=OUTCOME)
        await complaints_call(svc, mediator, "RecordAgreement", record)
        # A complaint and a worker's wage dispute that mediation never settles.
        unsettled = (
            await complaints_call(svc, platform, "FileComplaint", company_complaint())
        ).complaint_case
        complaint_mediation = await _rejected(svc, harness, unsettled.name)
        dispute = (
            await complaints_call(svc, harness.key("union"), "FileWorkerDispute", _wage_dispute())
        ).complaint_case
        dispute_mediation = await _rejected(svc, harness, dispute.name)
    assert _at(complaint_mediation.deadline) == _at(dispute_mediation.deadline) == MEDIATION_DUE
    assert dispute_mediation.mediation_body == c.MEDIATION_BODY_PEOPLES_MEDIATION

    # An hour past the mediation deadline (and long past the agreement's follow-up).
    async with complaints_at(harness, scratch_database, env, MEDIATION_DUE + timedelta(hours=1)) as svc:
        to_12315 = await _until_state(svc, platform, unsettled.name, c.CASE_STATE_ESCALATED)
        to_legal_aid = await _until_state(svc, harness.key("union"), dispute.name, c.CASE_STATE_ESCALATED)
        complaint_events = await _published_until(bootstrap, unsettled.name, "CaseEscalatedExternally")
        dispute_events = await _published_until(bootstrap, dispute.name, "LegalAidReferral")
        referral = await _referral(svc, operator, dispute.name)

        overdue_events = await _published_until(bootstrap, agreed.name, "SlaBreached")
        overdue = await _case(svc, mediator, agreed.name)
        # The follow-up finds the agreement breached: recorded, published, escalated.
        performance = c.RecordPerformanceRequest(
            name=agreed.name, performed=False, breached_by=c.PARTY_KIND_COMPANY
        )
        breached = (await complaints_call(svc, mediator, "RecordPerformance", performance)).complaint_case
        breach_events = await _published_until(bootstrap, agreed.name, "CaseEscalatedExternally")

    assert (to_12315.escalation_route, to_12315.deadline_kind) == (c.ESCALATION_ROUTE_12315, "")
    assert [kind for kind, _ in complaint_events] == [
        "CaseFiled",
        "CaseEscalatedToMediation",
        "CaseEscalatedExternally",
    ]
    escalated = _one(complaint_events, "CaseEscalatedExternally")
    assert (escalated.route, escalated.reason) == (c.ESCALATION_ROUTE_12315, "mediation_deadline")

    assert to_legal_aid.escalation_route == c.ESCALATION_ROUTE_LEGAL_AID
    assert [kind for kind, _ in dispute_events] == [
        "CaseFiled",
        "CaseEscalatedToMediation",
        "CaseEscalatedExternally",
        "LegalAidReferral",
    ]
    escalated = _one(dispute_events, "CaseEscalatedExternally")
    assert (escalated.route, escalated.reason) == (c.ESCALATION_ROUTE_LEGAL_AID, "mediation_deadline")
    referred = _one(dispute_events, "LegalAidReferral")
    assert (referred.labour_dispute, referred.accepted, _at(referred.deadline)) == (True, False, REFERRAL_DUE)
    assert (referral.labour_dispute, referral.overdue, _at(referral.deadline)) == (True, False, REFERRAL_DUE)

    assert [kind for kind, _ in overdue_events] == [
        "CaseFiled",
        "CaseEscalatedToMediation",
        "MediationAssigned",
        "AgreementReached",
        "SlaBreached",
    ]
    breach = _one(overdue_events, "SlaBreached")
    assert (breach.deadline_kind, _at(breach.deadline), breach.company_id) == (
        "agreement_follow_up",
        FOLLOW_UP_DUE,
        COMPANY,
    )
    assert (overdue.state, overdue.deadline_kind) == (c.CASE_STATE_AGREEMENT, "")
    assert (breached.state, breached.escalation_route) == (c.CASE_STATE_ESCALATED, c.ESCALATION_ROUTE_12315)
    assert [kind for kind, _ in breach_events][len(overdue_events) :] == [
        "AgreementFollowedUp",
        "CaseEscalatedExternally",
    ]
    followed = _one(breach_events, "AgreementFollowedUp")
    assert (followed.performed, followed.breached_by, followed.company_id) == (
        False,
        c.PARTY_KIND_COMPANY,
        COMPANY,
    )
    escalated = _one(breach_events, "CaseEscalatedExternally")
    assert (escalated.route, escalated.reason) == (c.ESCALATION_ROUTE_12315, "agreement_breached")

    # Nobody took the referral: its own deadline fires.
    async with complaints_at(harness, scratch_database, env, REFERRAL_DUE + timedelta(minutes=30)) as svc:
        late_events = await _published_until(bootstrap, dispute.name, "SlaBreached")
        late = await _referral(svc, operator, dispute.name)
        still = await _case(svc, harness.key("union"), dispute.name)
    assert [kind for kind, _ in late_events][len(dispute_events) :] == ["SlaBreached"]
    late_breach = _one(late_events, "SlaBreached")
    assert (late_breach.deadline_kind, _at(late_breach.deadline)) == ("legal_aid_referral", REFERRAL_DUE)
    assert (late.overdue, late.accepted) == (True, False)
    assert still.state == c.CASE_STATE_ESCALATED
