"""Insurance's order coverage and claims on the real stack, through real processes of orders,
workers, complaints, credit and `python -m services.insurance`: an order accepted through orders
is covered by the real policy of its worker (or flagged uncovered); a complaint's compensation
files one automatic claim however often its outcome is delivered and however insurance is killed,
which the insurer adjudicates and pays once, closing the complaint's compensation and reaching
credit's ledger; and bad claims refused, capped or denied with their reasons."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from deploy.local.services import DEMO_COMPANY_ID, stopped_after
from deploy.local.stack import Endpoints
from deploy.local.stack import scratch_database as new_scratch_database
from jiazheng.complaints.events.v1 import events_pb2 as ce
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.insurance.events.v1 import events_pb2 as ev
from jiazheng.insurance.v1 import claims_pb2 as pb
from jiazheng.insurance.v1 import cover_pb2
from jiazheng.insurance.v1 import policies_pb2 as ppb
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.type.v1 import service_type_pb2 as st
from jiazheng.workers.v1 import workers_pb2 as w
from libs.common.beijing import BEIJING, beijing_day
from libs.common.events import EventEnvelope, envelope_from_kafka
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.credit.model import FactKind, v1
from services.insurance.service_layer.claims import automatic_claim_id
from tests.integration.clients import db_value, field_violations, ledger
from tests.integration.complaints_client import complaints_call
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.insurance_client import (
    beijing_today,
    claim_call,
    create_policy,
    events_about,
    insured,
    order_coverage,
    policy_call,
)
from tests.integration.kafka_tools import read_topic
from tests.integration.test_credit_lookups import credit_of
from tests.integration.test_orders_lifecycle import orders_call
from tests.integration.workers_client import ensure_company, produce, ready_worker

pytestmark = pytest.mark.integration
BORN = date(1985, 3, 1)
ELDERLY_CARE = (st.SERVICE_TYPE_ELDERLY_CARE,)


@pytest.fixture(scope="module")
async def database(endpoints: Endpoints) -> AsyncIterator[str]:
    async with new_scratch_database(endpoints, "jz_insurance_claims_test") as name:
        yield name


@pytest.fixture
def pii(orders_keys: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in orders_keys.items() if k.startswith("pii_")}


@pytest.fixture
async def insurance(
    harness: ServiceHarness, database: str, pii: dict[str, str]
) -> AsyncIterator[RunningService]:
    async with stopped_after(await harness.start("insurance", database, 0, False, **pii)) as svc:
        yield svc


@pytest.fixture(scope="module")
async def company(harness: ServiceHarness, workers: RunningService) -> w.Company:
    """The demo company, whose key buys the policies and files the claims."""
    return await ensure_company(workers, harness.key("operator"), DEMO_COMPANY_ID)


async def accepted_order(
    orders: RunningService, platform: str, worker_id: str, card: str, check_in: bool = True
) -> o.Order:
    """An elderly-care order that started half an hour ago (or at Beijing midnight if that is
    later, so that it falls on the day a policy made "from today" starts), offered to
    ``worker_id``, accepted, and (unless not ``check_in``) checked in with the worker's card."""
    start = Timestamp()
    midnight = datetime.combine(beijing_today(), time(), tzinfo=BEIJING)
    start.FromDatetime(max(datetime.now(UTC) - timedelta(minutes=30), midnight))
    draft = o.Order(
        service_type=st.SERVICE_TYPE_ELDERLY_CARE,
        district_code="110105",
        consumer_ref=f"c-{uuid.uuid4().hex[:8]}",
        scheduled_start_time=start,
        duration_hours=4,
        contact=o.Contact(full_name="王奶奶", mobile="13900001111"),
        address="北京市朝阳区望京西路8号",
    )
    create = o.CreateOrderRequest(request_id=str(uuid.uuid4()), order=draft)
    order: o.Order = (await orders_call(orders, platform, "CreateOrder", create)).order

    async def offered() -> o.Offer | None:
        try:
            request = o.OfferOrderRequest(name=order.name, worker_id=worker_id)
            reply = await orders_call(orders, platform, "OfferOrder", request)
        except grpc.aio.AioRpcError as refused:  # not yet eligible: the workers events are on their way
            if refused.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return None
        offer: o.Offer = reply.offer
        return offer

    offer = await eventually(offered, within=60)
    accepted = await orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=offer.name))
    if not check_in:
        return accepted.order  # type: ignore[no-any-return]
    checked_in = await orders_call(
        orders, platform, "CheckIn", o.CheckInRequest(name=order.name, card_token=card)
    )
    return checked_in.order  # type: ignore[no-any-return]


def file_request(order: o.Order, incident: datetime, claimed_fen: int = 300_000) -> pb.FileClaimRequest:
    return pb.FileClaimRequest(
        request_id=str(uuid.uuid4()),
        order=order.name,
        kind=cover_pb2.COVER_KIND_PROFESSIONAL_LIABILITY,
        incident_time=timestamp(incident),
        claimed_fen=claimed_fen,
        description="打碎了客户的花瓶",
    )


async def refusal(svc: RunningService, key: str, request: pb.FileClaimRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await claim_call(svc, key, "FileClaim", request)
    return refused.value


async def knows_check_in(svc: RunningService, key: str, order: o.Order) -> None:
    """Wait until insurance has the order's check-in: a claim before it is then outside the window
    (INVALID_ARGUMENT), no longer unknown (NOT_FOUND) or before any check-in (FAILED_PRECONDITION)."""
    before = order.check_in_time.ToDatetime(tzinfo=UTC) - timedelta(hours=1)

    async def known() -> grpc.aio.AioRpcError | None:
        error = await refusal(svc, key, file_request(order, before))
        return error if error.code() == grpc.StatusCode.INVALID_ARGUMENT else None

    outside = await eventually(known, within=60)
    assert field_violations(outside) == ["incident_time"]


async def insured_and_checked_in(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    insurance: RunningService,
    company: w.Company,
) -> tuple[str, o.Order]:
    """A ready worker of ``company`` on its package policy from today, and an elderly-care order
    of theirs accepted and checked in, once insurance knows the check-in."""
    operator, buyer = harness.key("operator"), harness.key("demo-company")
    worker, card = await ready_worker(endpoints, workers, operator, company.name)
    await create_policy(
        insurance, buyer, "package-standard", beijing_today(), None, insured(worker, BORN, 2, ELDERLY_CARE)
    )
    order = await accepted_order(orders, harness.key("demo-platform"), worker, card)
    await knows_check_in(insurance, buyer, order)
    return worker, order


async def adjudicate(svc: RunningService, key: str, claim: str, assessed_fen: int) -> pb.Claim:
    request = pb.AdjudicateClaimRequest(name=claim, request_id=str(uuid.uuid4()), assessed_fen=assessed_fen)
    return (await claim_call(svc, key, "AdjudicateClaim", request)).claim  # type: ignore[no-any-return]


async def test_an_accepted_order_is_covered_by_its_worker_s_policy_or_flagged(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    insurance: RunningService,
    company: w.Company,
) -> None:
    operator, platform, buyer = (
        harness.key("operator"),
        harness.key("demo-platform"),
        harness.key("demo-company"),
    )
    covered_worker, card = await ready_worker(endpoints, workers, operator, company.name)
    bare_worker, bare_card = await ready_worker(endpoints, workers, operator, company.name)
    policy = await create_policy(
        insurance,
        buyer,
        "package-standard",
        beijing_today(),
        None,
        insured(covered_worker, BORN, 2, ELDERLY_CARE),
    )

    order = await accepted_order(orders, platform, covered_worker, card, check_in=False)
    coverage = await eventually(lambda: order_coverage(insurance, buyer, order.name), within=60)
    assert (coverage.covered, coverage.policy, coverage.insurer) == (True, policy.name, "demo-insurer")
    assert coverage.service_date == beijing_day(order.scheduled_start_time.ToDatetime(UTC)).isoformat()
    recorded = await eventually(
        lambda: events_about(endpoints.kafka_bootstrap, order.name, ev.OrderCoverageRecorded)
    )
    assert [(r.policy_id, r.worker_id) for r in recorded] == [
        (policy.name.removeprefix("policies/"), covered_worker)
    ]
    assert (await order_coverage(insurance, harness.key("demo-insurer"), order.name)) is not None
    assert (await order_coverage(insurance, harness.key("other-company"), order.name)) is None

    bare = await accepted_order(orders, platform, bare_worker, bare_card, check_in=False)
    flagged = await eventually(lambda: events_about(endpoints.kafka_bootstrap, bare.name, ev.OrderUncovered))
    assert (flagged[0].worker_id, flagged[0].company_id) == (bare_worker, DEMO_COMPANY_ID)
    assert flagged[0].reason == "no policy lists the worker"
    listed = await claim_call(
        insurance, buyer, "ListUncoveredOrders", pb.ListUncoveredOrdersRequest(page_size=200)
    )
    assert [(u.reason, u.covered) for u in listed.orders if u.order == bare.name] == [
        ("no policy lists the worker", False)
    ]
    assert order.name not in [u.order for u in listed.orders]
    others = await claim_call(
        insurance, harness.key("other-company"), "ListUncoveredOrders", pb.ListUncoveredOrdersRequest()
    )
    assert bare.name not in [u.order for u in others.orders]


async def _resolved_record(bootstrap: str, case_id: str) -> EventEnvelope | None:
    for record in await read_topic(bootstrap, events_topic("complaints")):
        event = envelope_from_kafka(record.headers, record.value)
        if event.type.endswith(".CaseResolved") and event.parse(ce.CaseResolved).case_id == case_id:
            return event
    return None


async def _settled(bootstrap: str, case_id: str) -> list[ce.CompensationSettled]:
    found = {}
    for record in await read_topic(bootstrap, events_topic("complaints")):
        event = envelope_from_kafka(record.headers, record.value)
        if event.type.endswith(".CompensationSettled"):
            settled = event.parse(ce.CompensationSettled)
            if settled.case_id == case_id:
                found[event.id] = settled
    return list(found.values())


async def _complaint_on(complaints: RunningService, platform: str, order: o.Order) -> str:
    """A consumer's complaint about the order's worker, once complaints knows the order."""

    async def filed() -> str | None:
        request = c.FileComplaintRequest(
            request_id=str(uuid.uuid4()),
            order=order.name,
            respondent=c.PARTY_KIND_WORKER,
            category=c.CATEGORY_DAMAGE,
            severity=c.SEVERITY_MAJOR,
            description="阿姨打碎了古董花瓶",
        )
        try:
            reply = await complaints_call(complaints, platform, "FileComplaint", request)
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise
            return None  # the order's events have not reached complaints yet
        return str(reply.complaint_case.name)

    return await eventually(filed, within=60)


async def test_a_complaint_s_compensation_is_claimed_once_paid_once_and_settles_the_case(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    complaints: RunningService,
    credit: RunningService,
    insurance: RunningService,
    database: str,
    pii: dict[str, str],
    company: w.Company,
) -> None:
    operator, platform = harness.key("operator"), harness.key("demo-platform")
    insurer, bootstrap = harness.key("demo-insurer"), endpoints.kafka_bootstrap
    worker, order = await insured_and_checked_in(endpoints, harness, orders, workers, insurance, company)

    case = await _complaint_on(complaints, platform, order)
    case_id = case.removeprefix("cases/")
    outcome = c.Outcome(
        result=c.OUTCOME_RESULT_SUBSTANTIATED, at_fault=c.PARTY_KIND_WORKER, compensation_fen=200_000
    )
    await complaints_call(
        complaints, operator, "ResolveCase", c.ResolveCaseRequest(name=case, outcome=outcome)
    )
    name = f"claims/{automatic_claim_id(case_id)}"

    async def claim_of_case() -> pb.Claim | None:
        try:
            reply = await claim_call(insurance, insurer, "GetClaim", pb.GetClaimRequest(name=name))
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None
        claim: pb.Claim = reply.claim
        return claim

    filed = await eventually(claim_of_case, within=60)
    assert (filed.complaint_case, filed.claimed_fen, filed.state) == (case, 200_000, pb.CLAIM_STATE_FILED)
    assert (filed.kind, filed.worker_at_fault) == (cover_pb2.COVER_KIND_PROFESSIONAL_LIABILITY, True)
    assert filed.incident_time == order.check_in_time

    # The outcome again (as a relay redelivers it) and a copy under a new event id, with insurance
    # killed in between: the inbox drops the first, the claim's id (from the case's) the second.
    resolved = await eventually(lambda: _resolved_record(bootstrap, case_id), within=30)
    copy = dataclasses.replace(resolved, id=str(uuid.uuid4()))
    await produce(bootstrap, events_topic("complaints"), resolved)
    insurance.kill()
    await produce(bootstrap, events_topic("complaints"), copy)
    async with stopped_after(await harness.start("insurance", database, 0, False, **pii)) as restarted:
        dsn, seen = (
            endpoints.dsn(database),
            "SELECT count(*) FROM inbox WHERE consumer = 'insurance' AND event_id = $1",
        )

        async def copy_consumed() -> bool:
            return bool(await db_value(dsn, seen, copy.id))

        await eventually(copy_consumed, within=60)
        listed = await claim_call(restarted, operator, "ListClaims", pb.ListClaimsRequest(page_size=200))
        assert [cl.name for cl in listed.claims if cl.complaint_case == case] == [name]
        assert len(await events_about(bootstrap, name, ev.ClaimFiled)) == 1

        decided = await adjudicate(restarted, insurer, name, 200_000)
        assert (decided.decision, decided.payable_fen) == (cover_pb2.CLAIM_DECISION_APPROVED, 150_000)
        assert list(decided.reasons) == ["deductible ¥500.00 taken"]
        pay = pb.PayClaimRequest(name=name, request_id=str(uuid.uuid4()))
        paid = (await claim_call(restarted, insurer, "PayClaim", pay)).claim
        assert paid.state == pb.CLAIM_STATE_PAID
        assert (await claim_call(restarted, insurer, "PayClaim", pay)).claim.pay_time == paid.pay_time
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await claim_call(
                restarted, insurer, "PayClaim", pb.PayClaimRequest(name=name, request_id=str(uuid.uuid4()))
            )
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        payments = await eventually(lambda: events_about(bootstrap, name, ev.ClaimPaid), within=60)
        assert [(p.paid_fen, p.case_id, p.worker_at_fault, p.worker_id) for p in payments] == [
            (150_000, case_id, True, worker)
        ]
        settled = await eventually(lambda: _settled(bootstrap, case_id), within=60)
        assert [(s.claim, s.paid_fen) for s in settled] == [(name, 150_000)]

        async def at_fault_entry() -> list[str]:
            entries = await ledger(credit, operator, worker)
            return [e.reason for e in entries if e.event_type.endswith(".ClaimPaid")]

        assert await eventually(at_fault_entry, within=60) == [
            f"at-fault claim {name.removeprefix('claims/')} paid"
        ]
        # The score moved by the model's claim penalty: 50, and 10 per full 1,000 yuan paid (¥1,500).
        record = await credit_of(credit, operator, worker)
        lines = [line for line in record.lines if line.kind == FactKind.CLAIM_PAID_AT_FAULT]
        assert [line.points for line in lines] == [-(v1.CLAIM_PENALTY + v1.CLAIM_PENALTY_PER_1000_YUAN)]
        assert len(await events_about(bootstrap, name, ev.ClaimPaid)) == 1


async def test_bad_claims_are_refused_capped_or_denied_with_the_reason(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    insurance: RunningService,
    database: str,
    pii: dict[str, str],
    company: w.Company,
) -> None:
    operator, platform, buyer = (
        harness.key("operator"),
        harness.key("demo-platform"),
        harness.key("demo-company"),
    )
    insurer, today = harness.key("demo-insurer"), beijing_today()
    (capped_worker, card), (removed_worker, removed_card), (later_worker, later_card) = [
        await ready_worker(endpoints, workers, operator, company.name) for _ in range(3)
    ]
    policy = await create_policy(
        insurance,
        buyer,
        "package-standard",
        today,
        None,
        insured(capped_worker, BORN, 2, ELDERLY_CARE),
        insured(removed_worker, BORN, 2, ELDERLY_CARE),
    )
    # No check-in yet: FAILED_PRECONDITION (once insurance knows the order at all).
    waiting = await accepted_order(orders, platform, capped_worker, card, check_in=False)
    await eventually(lambda: order_coverage(insurance, buyer, waiting.name), within=60)
    not_yet = await refusal(insurance, buyer, file_request(waiting, datetime.now(UTC)))
    assert not_yet.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no check-in" in (not_yet.details() or "")

    # Over the limit: capped at what remains, and said so.
    order = await orders_call(
        orders, platform, "CheckIn", o.CheckInRequest(name=waiting.name, card_token=card)
    )
    order = order.order
    await knows_check_in(insurance, buyer, order)
    incident = order.check_in_time.ToDatetime(tzinfo=UTC)
    big = (await claim_call(insurance, buyer, "FileClaim", file_request(order, incident, 25_000_000))).claim
    assert big.late_report is False
    decided = await adjudicate(insurance, insurer, big.name, 25_000_000)
    assert (decided.decision, decided.payable_fen) == (cover_pb2.CLAIM_DECISION_PARTLY_APPROVED, 20_000_000)
    assert list(decided.reasons) == [
        "deductible ¥500.00 taken",
        "capped at the remaining limit ¥200000.00 of ¥200000.00 (¥0.00 used by earlier claims)",
    ]

    # Cover ended (removed from today after the service began: the last day was yesterday) or not
    # yet effective (a policy from tomorrow, bought after the service began): denied.
    served = {
        worker_id: await accepted_order(orders, platform, worker_id, worker_card)
        for worker_id, worker_card in [(removed_worker, removed_card), (later_worker, later_card)]
    }
    remove = ppb.EndorsePolicyRequest(
        request_id=str(uuid.uuid4()),
        name=policy.name,
        kind=cover_pb2.ENDORSEMENT_KIND_REMOVE,
        effective_date=today.isoformat(),
        remove_worker_ids=[removed_worker],
    )
    await policy_call(insurance, buyer, "EndorsePolicy", remove)
    tomorrow = today + timedelta(days=1)
    await create_policy(
        insurance, buyer, "package-standard", tomorrow, None, insured(later_worker, BORN, 2, ELDERLY_CARE)
    )

    denied_claims = []
    for worker_id, reason in [
        (removed_worker, f"cover ended on {today - timedelta(days=1)}"),
        (later_worker, f"cover not yet effective on {today} (starts {tomorrow})"),
    ]:
        await knows_check_in(insurance, buyer, served[worker_id])
        at = served[worker_id].check_in_time.ToDatetime(tzinfo=UTC)
        claim = (await claim_call(insurance, buyer, "FileClaim", file_request(served[worker_id], at))).claim
        assert claim.insurer == "demo-insurer"
        denied = await adjudicate(insurance, insurer, claim.name, 300_000)
        assert (denied.state, list(denied.reasons)) == (pb.CLAIM_STATE_DENIED, [reason])
        denied_claims.append(claim)

    # Reported more than 48 hours after the incident (a process whose clock runs 49 hours ahead).
    late_clock = {**pii, "clock_offset_s": str(49 * 3600)}
    async with stopped_after(await harness.start("insurance", database, 0, False, **late_clock)) as later:
        late = (await claim_call(later, buyer, "FileClaim", file_request(order, incident))).claim
    assert late.late_report is True
    filed = await events_about(endpoints.kafka_bootstrap, late.name, ev.ClaimFiled)
    assert [f.late_report for f in filed] == [True]

    # Listed oldest filed first, page after page (claim ids are random: id order is no order).
    listed = await _all_claims(insurance, buyer, page_size=2)
    mine = [big.name, *(c.name for c in denied_claims), late.name]
    assert [c.name for c in listed if c.name in mine] == mine
    times = [(c.create_time.ToDatetime(), c.name) for c in listed]
    assert times == sorted(times)


async def _all_claims(svc: RunningService, key: str, page_size: int) -> list[pb.Claim]:
    claims: list[pb.Claim] = []
    token = ""
    while True:
        page = await claim_call(
            svc, key, "ListClaims", pb.ListClaimsRequest(page_size=page_size, page_token=token)
        )
        claims += page.claims
        token = page.next_page_token
        if not token:
            return claims


async def _claim_disputes(bootstrap: str, order_id: str) -> list[ce.CaseFiled]:
    """The claim-dispute cases complaints filed about the order."""
    found = {}
    for record in await read_topic(bootstrap, events_topic("complaints")):
        event = envelope_from_kafka(record.headers, record.value)
        if event.type.endswith(".CaseFiled"):
            filed = event.parse(ce.CaseFiled)
            if filed.order_id == order_id and filed.kind == c.CASE_KIND_CLAIM_DISPUTE:
                found[event.id] = filed
    return list(found.values())


async def test_a_contested_denial_opens_a_claim_dispute_in_complaints(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    complaints: RunningService,
    insurance: RunningService,
    company: w.Company,
) -> None:
    buyer, insurer, bootstrap = (
        harness.key("demo-company"),
        harness.key("demo-insurer"),
        endpoints.kafka_bootstrap,
    )
    worker, order = await insured_and_checked_in(endpoints, harness, orders, workers, insurance, company)
    incident = order.check_in_time.ToDatetime(tzinfo=UTC)
    claim = (await claim_call(insurance, buyer, "FileClaim", file_request(order, incident))).claim
    adjudicate_request = pb.AdjudicateClaimRequest(
        name=claim.name,
        request_id=str(uuid.uuid4()),
        assessed_fen=300_000,
        exclusions=[cover_pb2.EXCLUSION_UNDECLARED_VALUABLES],
    )
    denied = (await claim_call(insurance, insurer, "AdjudicateClaim", adjudicate_request)).claim
    assert denied.state == pb.CLAIM_STATE_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as unpaid:
        await claim_call(
            insurance, insurer, "PayClaim", pb.PayClaimRequest(name=claim.name, request_id=str(uuid.uuid4()))
        )
    assert unpaid.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    contest = pb.ContestClaimDenialRequest(
        name=claim.name, request_id=str(uuid.uuid4()), reason="花瓶已在入户前登记"
    )
    contested = (await claim_call(insurance, buyer, "ContestClaimDenial", contest)).claim
    assert contested.state == pb.CLAIM_STATE_CONTESTED
    assert (await claim_call(insurance, buyer, "ContestClaimDenial", contest)).claim == contested

    order_id = order.name.removeprefix("orders/")
    [dispute] = await eventually(lambda: _claim_disputes(bootstrap, order_id), within=60)
    assert (dispute.category, dispute.complainant, dispute.respondent) == (
        c.CATEGORY_CLAIM_DENIED,
        c.PARTY_KIND_COMPANY,
        c.PARTY_KIND_INSURER,
    )
    assert (dispute.worker_id, dispute.company_id) == (worker, company.name.removeprefix("companies/"))
    case = await complaints_call(
        complaints, buyer, "GetCase", c.GetCaseRequest(name=f"cases/{dispute.case_id}")
    )
    assert case.complaint_case.state == c.CASE_STATE_FILED
    assert len(await events_about(bootstrap, claim.name, ev.ClaimDenialContested)) == 1
