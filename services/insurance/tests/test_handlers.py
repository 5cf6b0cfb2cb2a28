"""The effects of consumed events, fed the producers' real envelopes (orders' messages as orders
publishes them, complaints' CaseResolved built by complaints' own event builder), through the
fake unit of work."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from google.protobuf.message import Message

from jiazheng.insurance.events.v1 import events_pb2 as ev
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.type.v1.service_type_pb2 import SERVICE_TYPE_CLEANING
from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, new_event
from libs.common.protoutil import timestamp
from services.complaints import domain as complaints
from services.complaints import events as complaint_events
from services.insurance.domain.claims import ClaimState
from services.insurance.handlers import effects
from services.insurance.service_layer.claims import automatic_claim_id
from services.insurance.tests.fakes import FakeInsuranceUnitOfWork
from services.insurance.tests.test_claim_service_layer import RULES, START, insured_uow, types_published

ORDER = "6a0f5d3e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
EFFECTS = effects(RULES)


def from_orders(message: Message, at: datetime = START) -> EventEnvelope:
    return new_event(message, source="/jiazheng/orders", subject=f"orders/{ORDER}", time=at)


def assigned(worker_id: str = "w-1") -> EventEnvelope:
    return from_orders(
        order_events.OrderAssigned(
            order_id=ORDER,
            worker_id=worker_id,
            company_id="co-1",
            service_type=SERVICE_TYPE_CLEANING,
            district_code="110105",
            scheduled_start_time=timestamp(START),
            scheduled_end_time=timestamp(START + timedelta(hours=4)),
            platform_id="p-1",
        )
    )


async def consume(uow: FakeInsuranceUnitOfWork, *events: EventEnvelope) -> None:
    for event in events:
        async with uow:
            await EFFECTS[event.type](uow, [event])
            await uow.commit()


async def test_an_assigned_order_is_copied_and_its_coverage_published() -> None:
    uow = await insured_uow("w-1")
    await consume(uow, assigned())
    order = uow.orders.by_id[ORDER]
    assert (order.company_id, order.platform_id, order.scheduled_start) == ("co-1", "p-1", START)
    assert types_published(uow) == ["OrderCoverageRecorded"]


async def test_check_in_completion_and_cancellation_keep_the_copy_current() -> None:
    uow = await insured_uow("w-1")
    check_out = START + timedelta(hours=3)
    await consume(
        uow,
        assigned(),
        from_orders(order_events.OrderCheckedIn(order_id=ORDER, check_in_time=timestamp(START))),
    )
    assert uow.orders.by_id[ORDER].check_in == START
    completed = order_events.OrderCompleted(
        order_id=ORDER, check_in_time=timestamp(START), check_out_time=timestamp(check_out)
    )
    await consume(uow, from_orders(completed))
    assert uow.orders.by_id[ORDER].window == (START, check_out)
    await consume(uow, from_orders(order_events.OrderCancelled(order_id=ORDER)))
    assert uow.orders.by_id[ORDER].cancelled


async def test_a_replaced_worker_s_service_ends_and_the_new_worker_is_covered_afresh() -> None:
    uow = await insured_uow("w-1")
    left = START + timedelta(hours=1)
    checked_in = order_events.OrderCheckedIn(order_id=ORDER, check_in_time=timestamp(START))
    replaced = order_events.WorkerReplaced(order_id=ORDER, worker_id="w-1", time=timestamp(left))
    await consume(uow, assigned(), from_orders(checked_in), from_orders(replaced))
    assert uow.orders.by_id[ORDER].window == (START, left)
    await consume(uow, assigned("w-9"))
    order = uow.orders.by_id[ORDER]
    assert (order.worker_id, order.check_in) == ("w-9", None)
    assert types_published(uow) == ["OrderCoverageRecorded", "OrderUncovered"]


async def test_events_of_orders_insurance_never_saw_assigned_are_ignored() -> None:
    uow = await insured_uow("w-1")
    await consume(
        uow, from_orders(order_events.OrderCheckedIn(order_id=ORDER, check_in_time=timestamp(START)))
    )
    assert uow.orders.by_id == {}


@pytest.mark.parametrize(
    "message",
    [
        order_events.OrderAssigned(order_id=ORDER),
        order_events.OrderCheckedIn(),
        order_events.OrderCancelled(),
    ],
)
async def test_an_event_without_its_ids_is_permanent(message: Message) -> None:
    uow = await insured_uow("w-1")
    with pytest.raises(PermanentEventError, match="no "):
        await consume(uow, from_orders(message))


async def test_an_undecodable_event_is_permanent() -> None:
    uow = await insured_uow("w-1")
    broken = EventEnvelope(**{**assigned().__dict__, "data": b"\xff\xff\xff"})
    with pytest.raises(PermanentEventError):
        await consume(uow, broken)


def resolved(
    result: complaints.OutcomeResult = complaints.OutcomeResult.SUBSTANTIATED,
    compensation: int = 2_000_00,
    order_id: str = ORDER,
    at_fault: complaints.PartyKind = complaints.PartyKind.WORKER,
) -> tuple[EventEnvelope, uuid.UUID]:
    """CaseResolved as complaints publishes it."""
    filing = complaints.Filing(
        kind=complaints.CaseKind.COMPLAINT,
        category=complaints.Category.DAMAGE,
        severity=complaints.Severity.MAJOR,
        complainant=complaints.PartyKind.CONSUMER,
        respondent=complaints.PartyKind.WORKER,
        description="broke a vase",
        platform_id="p-1",
        order_id=order_id,
        worker_id="w-1",
        company_id="co-1",
    )
    filed_at = START + timedelta(hours=30)
    case = complaints.file_case(uuid.uuid4(), filing, filed_at)
    outcome = complaints.Outcome(result, at_fault, compensation)
    done = complaints.resolve(case, outcome, "operator")
    return complaint_events.case_resolved(done, filed_at + timedelta(days=2)), case.case_id


async def test_a_substantiated_outcome_with_compensation_files_one_professional_liability_claim() -> None:
    uow = await insured_uow("w-1")
    checked_in = order_events.OrderCheckedIn(order_id=ORDER, check_in_time=timestamp(START))
    await consume(uow, assigned(), from_orders(checked_in))
    event, case_id = resolved()
    await consume(uow, event, event)
    claim = uow.claims.by_id[automatic_claim_id(str(case_id))]
    assert (claim.filing.incident_time, claim.report_time) == (START, START + timedelta(hours=30))
    assert (claim.filing.claimed_fen, claim.worker_at_fault, claim.state) == (
        2_000_00,
        True,
        ClaimState.FILED,
    )
    assert types_published(uow).count("ClaimFiled") == 1
    assert uow.published[-1].event.parse(ev.ClaimFiled).case_id == str(case_id)


@pytest.mark.parametrize(
    ("result", "compensation", "order_id"),
    [
        (complaints.OutcomeResult.NOT_SUBSTANTIATED, 2_000_00, ORDER),
        (complaints.OutcomeResult.SUBSTANTIATED, 0, ORDER),
        (complaints.OutcomeResult.PARTLY_SUBSTANTIATED, 2_000_00, ""),
    ],
)
async def test_other_outcomes_file_no_claim(
    result: complaints.OutcomeResult, compensation: int, order_id: str
) -> None:
    uow = await insured_uow("w-1")
    await consume(uow, resolved(result, compensation, order_id)[0])
    assert uow.claims.by_id == {}


async def test_an_outcome_on_an_order_insurance_does_not_know_files_a_claim_adjudication_denies() -> None:
    uow = await insured_uow("w-1")
    event, case_id = resolved()
    await consume(uow, event)
    claim = uow.claims.by_id[automatic_claim_id(str(case_id))]
    assert (claim.defect, claim.insurer) == (f"orders/{ORDER} is not known", "demo-insurer")
    assert claim.filing.incident_time is None
    assert uow.published[-1].event.parse(ev.ClaimFiled).HasField("incident_time") is False


async def test_the_worker_is_at_fault_only_when_the_outcome_says_so() -> None:
    uow = await insured_uow("w-1")
    event, case_id = resolved(at_fault=complaints.PartyKind.COMPANY)
    await consume(uow, event)
    assert uow.claims.by_id[automatic_claim_id(str(case_id))].worker_at_fault is False
