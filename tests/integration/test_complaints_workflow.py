"""The complaints workflow on the real stack, moved by the clock alone: complaints processes whose
clocks are set to chosen instants (JZ_CLOCK_OFFSET_S) share one database, so a deadline set by one
fires in the next, as it would after a restart. The Spring Festival of 2026 is the holiday: its
make-up working Saturdays (14 and 28 February) count, its nine days off do not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import grpc
import pytest

from deploy.local.services import stopped_after
from deploy.local.stack import Endpoints
from jiazheng.complaints.v1 import complaints_pb2 as c
from tests.integration.complaints_client import case_events, company_complaint, complaints_call
from tests.integration.harness import RunningService, ServiceHarness, eventually

pytestmark = pytest.mark.integration
BEIJING = timezone(timedelta(hours=8))
COMPANY = "00000000-0000-4000-8000-00000000c001"  # the demo-company key's tenant


def _offset_to(instant: datetime) -> str:
    return str((instant - datetime.now(UTC)).total_seconds())


@asynccontextmanager
async def complaints_at(
    harness: ServiceHarness, database: str, keys: dict[str, str], instant: datetime
) -> AsyncIterator[RunningService]:
    """A complaints process on ``database`` whose clock reads ``instant`` now."""
    env = {**keys, "clock_offset_s": _offset_to(instant)}
    async with stopped_after(await harness.start("complaints", database, 0, False, **env)) as svc:
        yield svc


@pytest.fixture
def pii(orders_keys: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in orders_keys.items() if k.startswith("pii_")}


async def _case(svc: RunningService, key: str, name: str) -> c.Case:
    reply: c.GetCaseResponse = await complaints_call(svc, key, "GetCase", c.GetCaseRequest(name=name))
    return reply.complaint_case


async def test_an_ignored_complaint_goes_to_mediation_by_the_clock_across_the_spring_festival(
    endpoints: Endpoints, harness: ServiceHarness, scratch_database: str, pii: dict[str, str]
) -> None:
    platform = harness.key("demo-platform")
    filed_at = datetime(2026, 2, 12, 10, 0, tzinfo=BEIJING)  # a Thursday before the festival
    async with complaints_at(harness, scratch_database, pii, filed_at) as svc:
        filed = (await complaints_call(svc, platform, "FileComplaint", company_complaint())).complaint_case
    assert filed.state == c.CASE_STATE_FILED
    created = filed.create_time.ToDatetime(tzinfo=UTC)
    assert abs(created - filed_at) < timedelta(minutes=2)  # the process's clock reads about filed_at
    assert filed.deadline.ToDatetime(tzinfo=UTC) - created == timedelta(hours=24)

    # The 7th working day after 12 February: 13 (Fri), 14 (make-up Sat), 24-27, 28 (make-up Sat).
    async with complaints_at(
        harness, scratch_database, pii, datetime(2026, 2, 28, 23, 0, tzinfo=BEIJING)
    ) as svc:

        async def decision_running() -> c.Case | None:
            case = await _case(svc, platform, filed.name)
            return case if case.deadline_kind == "decision" else None

        waiting = await eventually(decision_running, within=60)
    assert waiting.state == c.CASE_STATE_FILED
    assert waiting.deadline.ToDatetime(tzinfo=UTC) == datetime(
        2026, 2, 28, 16, 0, tzinfo=UTC
    )  # 1 March, 00:00

    async with complaints_at(
        harness, scratch_database, pii, datetime(2026, 3, 1, 0, 5, tzinfo=BEIJING)
    ) as svc:

        async def in_mediation() -> c.Case | None:
            case = await _case(svc, platform, filed.name)
            return case if case.state == c.CASE_STATE_IN_MEDIATION else None

        escalated = await eventually(in_mediation, within=60)

        # Each deadline fired once, though three processes ran over the case. Read while the
        # last process runs: its relay publishes the escalation after the state is visible.
        async def published() -> list[str]:
            kinds = [kind for kind, _ in await case_events(endpoints.kafka_bootstrap, filed.name)]
            return kinds if "CaseEscalatedToMediation" in kinds else []

        kinds = await eventually(published, within=60)
    assert escalated.mediation_body == c.MEDIATION_BODY_CONSUMER_ASSOCIATION
    assert escalated.deadline_kind == "mediation"
    assert kinds == ["CaseFiled", "SlaBreached", "SlaBreached", "CaseEscalatedToMediation"]
    breaches = [
        e for kind, e in await case_events(endpoints.kafka_bootstrap, filed.name) if kind == "SlaBreached"
    ]
    assert [b.deadline_kind for b in breaches] == ["first_response", "decision"]
    assert all(
        "13800001234" not in str(e) for _, e in await case_events(endpoints.kafka_bootstrap, filed.name)
    )


async def _in_mediation(svc: RunningService, harness: ServiceHarness, **fields: Any) -> c.Case:
    """A new complaint the demo company rejected: in the consumer association's queue."""
    filed = (
        await complaints_call(svc, harness.key("demo-platform"), "FileComplaint", company_complaint(**fields))
    ).complaint_case
    decided = await complaints_call(
        svc, harness.key("demo-company"), "DecideCase", c.DecideCaseRequest(name=filed.name, accept=False)
    )
    case: c.Case = decided.complaint_case
    assert case.state == c.CASE_STATE_IN_MEDIATION
    return case


async def test_a_lease_that_expires_returns_the_case_and_two_claims_never_share_one(
    harness: ServiceHarness, scratch_database: str, pii: dict[str, str]
) -> None:
    first, second = harness.key("consumer-mediator"), harness.key("consumer-mediator-2")
    now = datetime.now(UTC)
    async with complaints_at(harness, scratch_database, pii, now) as svc:
        severe = await _in_mediation(svc, harness, severity=c.SEVERITY_SEVERE)
        await _in_mediation(svc, harness, severity=c.SEVERITY_MINOR)
        claims = await asyncio.gather(
            complaints_call(svc, first, "ClaimNextCase", c.ClaimNextCaseRequest()),
            complaints_call(svc, second, "ClaimNextCase", c.ClaimNextCaseRequest()),
        )
        claimed = {r.complaint_case.name for r in claims}
        assert len(claimed) == 2  # each got a different case
        with pytest.raises(grpc.aio.AioRpcError) as none_left:
            await complaints_call(svc, first, "ClaimNextCase", c.ClaimNextCaseRequest())
        assert none_left.value.code() == grpc.StatusCode.NOT_FOUND
        holder = next(r for r in claims if r.complaint_case.name == severe.name).complaint_case.mediator

    # 31 minutes later the leases have expired: the severe case is first in the queue again.
    later = now + timedelta(minutes=31)
    async with complaints_at(harness, scratch_database, pii, later) as svc:
        other = second if holder == "consumer-mediator" else first
        retaken = (
            await complaints_call(svc, other, "ClaimNextCase", c.ClaimNextCaseRequest())
        ).complaint_case
        assert retaken.name == severe.name
        assert retaken.mediator != holder
        outcome = c.Outcome(result=c.OUTCOME_RESULT_NOT_SUBSTANTIATED)
        with pytest.raises(grpc.aio.AioRpcError) as not_yours:
            await complaints_call(
                svc,
                first if other == second else second,
                "ResolveCase",
                c.ResolveCaseRequest(name=severe.name, outcome=outcome),
            )
        assert not_yours.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_wage_dispute_reaches_the_legal_aid_queue(
    harness: ServiceHarness, complaints: RunningService
) -> None:
    dispute = c.FileWorkerDisputeRequest(
        request_id=str(uuid.uuid4()),
        worker=f"workers/{uuid.uuid4()}",
        respondent=c.PARTY_KIND_COMPANY,
        company=f"companies/{COMPANY}",
        category=c.CATEGORY_UNPAID_WAGES,
        severity=c.SEVERITY_MAJOR,
        description="三个月工资未发",
        employee_model=True,
    )
    filed = (
        await complaints_call(complaints, harness.key("union"), "FileWorkerDispute", dispute)
    ).complaint_case
    again = (
        await complaints_call(complaints, harness.key("union"), "FileWorkerDispute", dispute)
    ).complaint_case
    assert again.name == filed.name  # a retry is the same case
    await complaints_call(
        complaints,
        harness.key("demo-company"),
        "DecideCase",
        c.DecideCaseRequest(name=filed.name, accept=False),
    )
    mediator = harness.key("peoples-mediator")

    reassign = c.ReassignCaseRequest(name=filed.name, mediator="peoples-mediator")
    held = (
        await complaints_call(complaints, harness.key("operator"), "ReassignCase", reassign)
    ).complaint_case
    assert held.mediator == "peoples-mediator"
    ended = await complaints_call(
        complaints,
        mediator,
        "EndMediation",
        c.EndMediationRequest(name=filed.name, route=c.ESCALATION_ROUTE_LEGAL_AID),
    )
    assert ended.complaint_case.state == c.CASE_STATE_ESCALATED

    referrals = (
        await complaints_call(complaints, harness.key("operator"), "ListReferrals", c.ListReferralsRequest())
    ).referrals
    [referral] = [r for r in referrals if r.case_name == filed.name]
    assert referral.labour_dispute
    assert not referral.accepted


async def test_an_outcome_on_a_closed_case_and_another_platforms_case_are_refused(
    harness: ServiceHarness, complaints: RunningService
) -> None:
    platform = harness.key("demo-platform")
    filed = (await complaints_call(complaints, platform, "FileComplaint", company_complaint())).complaint_case
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await complaints_call(
            complaints, harness.key("other-platform"), "GetCase", c.GetCaseRequest(name=filed.name)
        )
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND

    await complaints_call(complaints, platform, "WithdrawCase", c.WithdrawCaseRequest(name=filed.name))
    outcome = c.Outcome(result=c.OUTCOME_RESULT_SUBSTANTIATED)
    with pytest.raises(grpc.aio.AioRpcError) as closed:
        await complaints_call(
            complaints,
            harness.key("operator"),
            "ResolveCase",
            c.ResolveCaseRequest(name=filed.name, outcome=outcome),
        )
    assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "withdrawn" in (closed.value.details() or "")

    with pytest.raises(grpc.aio.AioRpcError) as unknown_order:
        await complaints_call(
            complaints, platform, "FileComplaint", company_complaint(order=f"orders/{uuid.uuid4()}")
        )
    assert unknown_order.value.code() == grpc.StatusCode.NOT_FOUND
