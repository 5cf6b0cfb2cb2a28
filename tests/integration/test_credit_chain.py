"""The propagation chain on the real stack: a severe complaint substantiated by the mediator holding it
becomes a credit fact and a level change in credit, which turns the worker's card RED in workers and
drops the worker out of matching in orders — all by events, with no call between the services, and
in the trace of the mediator's call from the outcome to the card change."""

from __future__ import annotations

import pytest

from deploy.local.stack import Endpoints
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.workers.v1 import workers_pb2 as w
from libs.common.events import EventEnvelope, envelope_from_kafka
from libs.common.kafka import events_topic
from libs.common.telemetry import trace_id_of
from tests.integration.clients import auth, ledger, log_lines, new_traceparent
from tests.integration.complaints_client import complaints_call, file_worker_complaint
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import read_topic
from tests.integration.orders_client import candidates, new_order, orders_call
from tests.integration.workers_client import becomes, create_company, ready_worker

pytestmark = pytest.mark.integration


async def _level_events(bootstrap: str, worker_id: str) -> list[EventEnvelope]:
    """The worker's CreditLevelChanged events on credit's topic, in order."""
    found = []
    for record in await read_topic(bootstrap, events_topic("credit")):
        event = envelope_from_kafka(record.headers, record.value)
        if event.type.endswith(".CreditLevelChanged") and record.key == f"workers/{worker_id}".encode():
            found.append(event)
    return found


async def _levels(bootstrap: str, worker_id: str) -> list[credit_events.CreditLevelChanged]:
    return [e.parse(credit_events.CreditLevelChanged) for e in await _level_events(bootstrap, worker_id)]


async def _resolved_by_the_mediator(
    complaints: RunningService, harness: ServiceHarness, case: str, traceparent: str
) -> None:
    """The case rejected (an operator answering for the company), given to the consumer
    association's mediator, who records it substantiated with the worker at fault, in the trace."""
    operator, mediator = harness.key("operator"), harness.key("consumer-mediator")
    await complaints_call(complaints, operator, "DecideCase", c.DecideCaseRequest(name=case, accept=False))
    reassign = c.ReassignCaseRequest(name=case, mediator="consumer-mediator")
    await complaints_call(complaints, operator, "ReassignCase", reassign)
    outcome = c.Outcome(result=c.OUTCOME_RESULT_SUBSTANTIATED, at_fault=c.PARTY_KIND_WORKER)
    request = c.ResolveCaseRequest(name=case, outcome=outcome)
    await complaints_call(complaints, mediator, "ResolveCase", request, traceparent)


async def test_a_substantiated_severe_complaint_reaches_credit_cards_and_matching_in_one_trace(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    complaints: RunningService,
    credit: RunningService,
) -> None:
    operator, platform = harness.key("operator"), harness.key("demo-platform")
    company = await create_company(workers, operator)
    worker_id, _ = await ready_worker(endpoints, workers, operator, company.name)
    order = await new_order(orders, platform, days_ahead=13)
    await candidates(orders, platform, order, {worker_id})

    case = await file_worker_complaint(complaints, platform, worker_id, company.name)
    trace_id, traceparent = new_traceparent()
    await _resolved_by_the_mediator(complaints, harness, case, traceparent)

    async def upheld() -> list[credit_pb2.LedgerEntry]:
        entries = await ledger(credit, operator, worker_id)
        return [e for e in entries if "complaint" in e.reason]

    [entry] = await eventually(upheld, within=60)
    assert entry.event_type == "jiazheng.complaints.events.v1.CaseResolved"

    async def level_d() -> list[EventEnvelope]:
        events = await _level_events(endpoints.kafka_bootstrap, worker_id)
        level = events[-1].parse(credit_events.CreditLevelChanged).level if events else None
        return events if level == credit_events.CREDIT_LEVEL_D else []

    *_, to_d = await eventually(level_d, within=60)
    # The certificate (workers' topic) and the complaint (complaints' topic) may reach credit in
    # either order: D is published with 400 or 430; the record settles at 600 + 30 (the 四级
    # certificate the worker was registered with) - 200 (the complaint).
    assert to_d.parse(credit_events.CreditLevelChanged).score in (400, 430)

    async def settled() -> credit_pb2.WorkerCredit | None:
        request = credit_pb2.GetWorkerCreditRequest(name=f"workers/{worker_id}")
        async with credit.channel() as channel:
            reply = await credit_pb2_grpc.CreditServiceStub(channel).GetWorkerCredit(
                request, metadata=auth(operator)
            )
        return reply.credit if reply.credit.score == 430 else None

    record = await eventually(settled, within=60)
    assert record.level == credit_pb2.LEVEL_D

    await becomes(workers, operator, f"workers/{worker_id}", w.CARD_COLOUR_RED)
    # One trace from the mediator's call: the outcome complaints stored for relaying, the ledger
    # entry and the level change credit made of it, and the card workers turned RED.
    in_trace = {"msg": "event added to the outbox", "trace_id": trace_id}
    assert in_trace in log_lines(complaints, "event_id", entry.event_id)
    assert entry.trace_id == trace_id
    assert {"msg": "ledger entry recorded", "trace_id": trace_id} in log_lines(
        credit, "event_id", entry.event_id
    )
    assert trace_id_of(to_d.traceparent) == trace_id
    assert in_trace in log_lines(credit, "event_id", to_d.id)
    assert {"msg": "card colour changed", "trace_id": trace_id} in log_lines(workers, "worker_id", worker_id)

    async def out_of_matching() -> o.MatchOrderResponse | None:
        request = o.MatchOrderRequest(name=order.name, max_candidates=50)
        reply: o.MatchOrderResponse = await orders_call(orders, platform, "MatchOrder", request)
        return None if any(x.worker == f"workers/{worker_id}" for x in reply.candidates) else reply

    await eventually(out_of_matching, within=60)
