"""The CreditService API: protobuf mapping of ledger entries and credit records, the fields it
refuses, its policy, and the servicer through the in-memory unit of work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import cast

import pytest

from jiazheng.credit.v1 import credit_pb2
from libs.common.auth import Principal, Role, acting_as
from libs.common.errors import InvalidArgument, NotFound
from libs.common.testing import FixedClock
from services.credit.api import (
    POLICY,
    SERVICE_NAME,
    Context,
    CreditServicer,
    award_from_proto,
    credit_to_proto,
    entry_to_proto,
    worker_id_of,
)
from services.credit.domain import RULE_VERSION, LedgerEntry, order_booked
from services.credit.lookups import Explanation, Profile, SourcedLine, WorkerCredit
from services.credit.model import FactKind, Level, Line
from services.credit.queries import LedgerReads, RecordedEntry
from services.credit.tests.fakes import FakeCreditUnitOfWork

ENTRY_ID = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")
OCCURRED = datetime(2024, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)
RECORDED = datetime(2024, 6, 1, 12, 0, 1, 250000, tzinfo=UTC)


def _recorded(entry: LedgerEntry) -> RecordedEntry:
    return RecordedEntry(seq=17, entry_id=ENTRY_ID, entry=entry, recorded_at=RECORDED)


def test_entry_to_proto_fills_every_field() -> None:
    entry = order_booked(
        worker_id="w-42",
        order_id="0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c",
        event_id="evt-1",
        event_type="jiazheng.orders.events.v1.OrderCreated",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        occurred_at=OCCURRED,
    )

    proto = entry_to_proto(_recorded(entry))

    assert proto.name == f"workers/w-42/ledgerEntries/{ENTRY_ID}"
    assert proto.worker_id == "w-42"
    assert proto.event_id == "evt-1"
    assert proto.event_type == "jiazheng.orders.events.v1.OrderCreated"
    assert proto.score_delta == 0
    assert proto.reason == "booked for order 0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c"
    assert proto.rule_version == RULE_VERSION
    assert proto.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert proto.occur_time.ToDatetime(tzinfo=UTC) == OCCURRED
    assert proto.record_time.ToDatetime(tzinfo=UTC) == RECORDED


@pytest.mark.parametrize("delta", [-50, -1, 0, 1, 120])
def test_score_delta_sign_survives_the_wire(delta: int) -> None:
    entry = LedgerEntry(
        worker_id="w",
        event_id="e",
        event_type="t",
        score_delta=delta,
        reason="r",
        rule_version="2024.1",
        trace_id="",
        occurred_at=OCCURRED,
    )

    wire = entry_to_proto(_recorded(entry)).SerializeToString()

    assert credit_pb2.LedgerEntry.FromString(wire).score_delta == delta


def test_entry_without_trace_keeps_empty_trace_id() -> None:
    entry = order_booked("w", "o", "e", "t", "", OCCURRED)

    assert entry_to_proto(_recorded(entry)).trace_id == ""


# -- 家政信用查: the record in its view, awards ------------------------------------------------

WORKER = "0f4d9c2e-8a57-4b61-9a0e-5c3b2f1e7d10"
NO_CONTEXT = cast(Context, None)
EVALUATED = datetime(2026, 3, 2, 2, tzinfo=UTC)
PROFILE = Profile("c-jiajie", "GREEN", "AA")
LINES = (
    SourcedLine(
        Line("evt-1", FactKind.CERTIFICATE_GRANTED, OCCURRED, 30, "certificate 四级: +30"),
        "jiazheng.workers.events.v1.SkillCertificateRecorded",
    ),
    SourcedLine(
        Line("evt-2", FactKind.NO_SHOW, RECORDED, -40, "no-show, 1st within 28 days: -40"), "x.NoShow"
    ),
)


def test_the_public_view_carries_no_score_model_version_or_line() -> None:
    public = WorkerCredit(WORKER, Level.C, PROFILE, EVALUATED)

    proto = credit_to_proto(public)

    assert (proto.worker, proto.view, proto.level) == (
        f"workers/{WORKER}",
        credit_pb2.VIEW_PUBLIC,
        credit_pb2.LEVEL_C,
    )
    assert (proto.card_colour, proto.company, proto.company_grade) == ("GREEN", "companies/c-jiajie", "AA")
    assert proto.evaluate_time.ToDatetime(tzinfo=UTC) == EVALUATED
    assert (proto.score, proto.model_version, list(proto.lines)) == (0, "", [])


def test_the_full_view_carries_the_score_and_every_line_with_its_sign_and_source() -> None:
    full = WorkerCredit(WORKER, Level.C, PROFILE, EVALUATED, Explanation(590, "2026.1", LINES))

    wire = credit_pb2.WorkerCredit.FromString(credit_to_proto(full).SerializeToString())

    assert (wire.view, wire.score, wire.model_version) == (credit_pb2.VIEW_FULL, 590, "2026.1")
    assert [(x.fact_id, x.kind, x.reason, x.points, x.source) for x in wire.lines] == [
        ("evt-1", "certificate_granted", "certificate 四级: +30", 30, LINES[0].source),
        ("evt-2", "no_show", "no-show, 1st within 28 days: -40", -40, "x.NoShow"),
    ]
    assert [x.occur_time.ToDatetime(tzinfo=UTC) for x in wire.lines] == [OCCURRED, RECORDED]


def test_a_worker_without_a_known_company_names_none() -> None:
    proto = credit_to_proto(WorkerCredit(WORKER, Level.A, Profile(), EVALUATED))

    assert (proto.company, proto.company_grade, proto.card_colour, proto.level) == (
        "",
        "",
        "",
        credit_pb2.LEVEL_A,
    )


@pytest.mark.parametrize("name", ["companies/w-1", "workers/", "workers/w-1/ledgerEntries/e", "w-1"])
def test_a_name_that_is_not_a_workers_is_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        worker_id_of(name)

    assert refused.value.field == "name"


@pytest.mark.parametrize(
    ("request_id", "award_date", "field"),
    [("not-a-uuid", "2026-03-01", "request_id"), (str(ENTRY_ID), "2026-02-30", "award_date")],
)
def test_an_award_with_a_bad_request_id_or_date_is_refused_naming_the_field(
    request_id: str, award_date: str, field: str
) -> None:
    request = credit_pb2.RecordWorkerAwardRequest(
        name=f"workers/{WORKER}", request_id=request_id, title="一等奖", tier=3, award_date=award_date
    )

    with pytest.raises(InvalidArgument) as refused:
        award_from_proto(request)

    assert refused.value.field == field


def test_anyone_may_look_a_worker_up_and_only_operators_enter_awards() -> None:
    assert POLICY[f"/{SERVICE_NAME}/GetWorkerCredit"] == frozenset(Role)
    assert POLICY[f"/{SERVICE_NAME}/RecordWorkerAward"] == {Role.OPERATOR}


def _servicer(uow: FakeCreditUnitOfWork) -> CreditServicer:
    return CreditServicer(cast(LedgerReads, None), lambda: uow)


async def test_the_servicer_answers_a_lookup_in_the_callers_view_and_an_award_in_full() -> None:
    uow = FakeCreditUnitOfWork(FixedClock(EVALUATED))
    servicer = _servicer(uow)
    award = credit_pb2.RecordWorkerAwardRequest(
        name=f"workers/{WORKER}", request_id=str(ENTRY_ID), title="一等奖", tier=3, award_date="2026-03-01"
    )

    with acting_as(Principal("ops", Role.OPERATOR, "")):
        awarded = (await servicer.RecordWorkerAward(award, NO_CONTEXT)).credit
    with acting_as(Principal("p-1", Role.PLATFORM, "p-1")):
        looked_up = (
            await servicer.GetWorkerCredit(
                credit_pb2.GetWorkerCreditRequest(name=f"workers/{WORKER}"), NO_CONTEXT
            )
        ).credit

    assert (awarded.view, awarded.score, awarded.level) == (credit_pb2.VIEW_FULL, 660, credit_pb2.LEVEL_B)
    assert [(x.fact_id, x.source, x.points) for x in awarded.lines] == [(str(ENTRY_ID), "operator", 60)]
    assert (looked_up.view, looked_up.level, looked_up.score) == (
        credit_pb2.VIEW_PUBLIC,
        credit_pb2.LEVEL_B,
        0,
    )


async def test_the_servicer_answers_not_found_for_a_worker_credit_never_heard_of() -> None:
    servicer = _servicer(FakeCreditUnitOfWork(FixedClock(EVALUATED)))

    with acting_as(Principal("p-1", Role.PLATFORM, "p-1")), pytest.raises(NotFound):
        await servicer.GetWorkerCredit(credit_pb2.GetWorkerCreditRequest(name="workers/w-nobody"), NO_CONTEXT)
