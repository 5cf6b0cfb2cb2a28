"""Protobuf ↔ domain of the complaints APIs, their policy, and the servicers driven through the
in-memory unit of work as the current principal."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, cast

import pytest

from jiazheng.complaints.v1 import complaints_pb2 as pb
from libs.common.auth import Principal, Role, acting_as
from libs.common.errors import InvalidArgument
from services.complaints import domain
from services.complaints.api import (
    POLICY,
    SERVICES,
    ComplaintServicer,
    MediationServicer,
    agreement_from_proto,
    case_to_proto,
)
from services.complaints.api.cases import Context
from services.complaints.api.convert import (
    agreement_to_proto,
    case_id,
    outcome_from,
    plain_id,
)
from services.complaints.mapping import outcome_to_proto
from services.complaints.service_layer import KnownOrder, Rules
from services.complaints.tests.fakes import FakeComplaintsUnitOfWork

CASE_ID = uuid.UUID("5d0c1e2a-3b4f-4a6b-8c7d-9e0f1a2b3c4d")
ORDER_ID = "0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c"
FILED = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Beijing
CALENDAR = domain.WorkingCalendar()
LEASE = timedelta(minutes=30)
OPERATOR = Principal("ops-1", Role.OPERATOR, "")
PLATFORM = Principal("meituan-api", Role.PLATFORM, "p-meituan")
COMPANY = Principal("jiajie-api", Role.COMPANY, "c-jiajie")
MEDIATOR = Principal("mediator-wang", Role.MEDIATOR, "consumer_association")
FILING = domain.Filing(
    kind=domain.CaseKind.COMPLAINT,
    category=domain.Category.DAMAGE,
    severity=domain.Severity.MAJOR,
    complainant=domain.PartyKind.CONSUMER,
    respondent=domain.PartyKind.COMPANY,
    description="打碎了花瓶",
    platform_id="p-meituan",
    order_id=ORDER_ID,
    worker_id="w-42",
    company_id="c-jiajie",
    evidence_refs=("photo-1", "photo-2"),
    filed_by="p-meituan",
)
AGREEMENT = domain.Agreement(
    facts="花瓶打碎",
    responsibility="公司承担",
    undertakings=(
        domain.Undertaking(domain.PartyKind.COMPANY, "赔偿 300 元", date(2024, 7, 1)),
        domain.Undertaking(domain.PartyKind.WORKER, "致歉", date(2024, 6, 20)),
    ),
)
OUTCOME = domain.Outcome(domain.OutcomeResult.PARTLY_SUBSTANTIATED, domain.PartyKind.COMPANY, 30_000)
NO_CONTEXT = cast(Context, None)


# -- cases in each state ---------------------------------------------------------------------


def _filed() -> domain.Case:
    return domain.file_case(CASE_ID, FILING, FILED)


def _responded() -> domain.Case:
    return domain.respond(_filed(), FILED + timedelta(hours=2), CALENDAR)


def _accepted() -> domain.Case:
    return domain.accept(_responded(), FILED + timedelta(hours=3), CALENDAR)


def _claimed() -> domain.Case:
    in_mediation = domain.to_mediation(_responded(), FILED + timedelta(days=1), CALENDAR)
    return domain.claim(in_mediation, MEDIATOR.id, FILED + timedelta(days=2), LEASE)


def _agreement() -> domain.Case:
    return domain.record_agreement(_claimed(), MEDIATOR.id, AGREEMENT, OUTCOME, FILED + timedelta(days=2))


def _resolved() -> domain.Case:
    return domain.resolve(_accepted(), OUTCOME, COMPANY.id)


def _escalated() -> domain.Case:
    return domain.escalate(_claimed(), domain.EscalationRoute.COURT)


def _withdrawn() -> domain.Case:
    return domain.withdraw(_filed())


BUILDERS: dict[pb.CaseState.ValueType, Callable[[], domain.Case]] = {
    pb.CASE_STATE_FILED: _filed,
    pb.CASE_STATE_RESPONDED: _responded,
    pb.CASE_STATE_ACCEPTED: _accepted,
    pb.CASE_STATE_IN_MEDIATION: _claimed,
    pb.CASE_STATE_AGREEMENT: _agreement,
    pb.CASE_STATE_RESOLVED: _resolved,
    pb.CASE_STATE_ESCALATED: _escalated,
    pb.CASE_STATE_WITHDRAWN: _withdrawn,
}


class StateFields(NamedTuple):
    """What only some states answer: the deadline running, the mediation body, the mediator
    holding the case, whether an outcome, the route, whether an agreement."""

    deadline_kind: str = ""
    body: int = 0
    mediator: str = ""
    outcome: bool = False
    route: int = 0
    agreement: bool = False


CONSUMER_ASSOCIATION = pb.MEDIATION_BODY_CONSUMER_ASSOCIATION
STATE_FIELDS: dict[pb.CaseState.ValueType, StateFields] = {
    pb.CASE_STATE_FILED: StateFields("first_response"),
    pb.CASE_STATE_RESPONDED: StateFields("decision"),
    pb.CASE_STATE_ACCEPTED: StateFields("decision"),
    pb.CASE_STATE_IN_MEDIATION: StateFields("mediation", CONSUMER_ASSOCIATION, MEDIATOR.id),
    pb.CASE_STATE_AGREEMENT: StateFields(
        "agreement_follow_up", CONSUMER_ASSOCIATION, MEDIATOR.id, outcome=True, agreement=True
    ),
    pb.CASE_STATE_RESOLVED: StateFields(outcome=True),
    pb.CASE_STATE_ESCALATED: StateFields(body=CONSUMER_ASSOCIATION, route=pb.ESCALATION_ROUTE_COURT),
    pb.CASE_STATE_WITHDRAWN: StateFields(),
}


@pytest.mark.parametrize("state", list(BUILDERS), ids=pb.CaseState.Name)
def test_case_to_proto_answers_the_filing_in_every_state(state: pb.CaseState.ValueType) -> None:
    proto = case_to_proto(BUILDERS[state](), OPERATOR)

    assert proto.state == state
    assert (proto.name, proto.kind, proto.platform_id, proto.order) == (
        f"cases/{CASE_ID}",
        pb.CASE_KIND_COMPLAINT,
        "p-meituan",
        f"orders/{ORDER_ID}",
    )
    assert (proto.complainant, proto.respondent, proto.worker, proto.company) == (
        pb.PARTY_KIND_CONSUMER,
        pb.PARTY_KIND_COMPANY,
        "workers/w-42",
        "companies/c-jiajie",
    )
    assert (proto.category, proto.severity, proto.description) == (
        pb.CATEGORY_DAMAGE,
        pb.SEVERITY_MAJOR,
        "打碎了花瓶",
    )
    assert list(proto.evidence_refs) == ["photo-1", "photo-2"]
    assert proto.create_time.ToDatetime(tzinfo=UTC) == FILED


@pytest.mark.parametrize("state", list(BUILDERS), ids=pb.CaseState.Name)
def test_case_to_proto_answers_what_the_state_has(state: pb.CaseState.ValueType) -> None:
    proto = case_to_proto(BUILDERS[state](), OPERATOR)

    expected = STATE_FIELDS[state]
    assert (proto.deadline_kind, proto.HasField("deadline")) == (
        expected.deadline_kind,
        bool(expected.deadline_kind),
    )
    assert (proto.mediation_body, proto.mediator, proto.HasField("lease_expire_time")) == (
        expected.body,
        expected.mediator,
        bool(expected.mediator),
    )
    assert (proto.HasField("outcome"), proto.escalation_route, proto.HasField("agreement")) == (
        expected.outcome,
        expected.route,
        expected.agreement,
    )


def test_the_states_together_fill_every_field_of_a_case() -> None:
    filled = {
        field.name
        for build in BUILDERS.values()
        for field, _ in case_to_proto(build(), OPERATOR).ListFields()
    }

    assert filled == {field.name for field in pb.Case.DESCRIPTOR.fields}


def test_the_deadline_and_the_lease_are_the_cases() -> None:
    case = _claimed()
    proto = case_to_proto(case, MEDIATOR)

    assert case.deadline is not None
    assert case.lease_until is not None
    assert proto.deadline.ToDatetime(tzinfo=UTC) == case.deadline.due_at
    assert proto.lease_expire_time.ToDatetime(tzinfo=UTC) == case.lease_until


def test_a_company_or_union_filing_has_no_platform_nor_order() -> None:
    filing = domain.Filing(
        kind=domain.CaseKind.WORKER_DISPUTE,
        category=domain.Category.UNPAID_WAGES,
        severity=domain.Severity.SEVERE,
        complainant=domain.PartyKind.WORKER,
        respondent=domain.PartyKind.CONSUMER,
        description="欠薪",
        worker_id="w-7",
        employee_model=False,
        filed_by="union-haidian",
    )

    proto = case_to_proto(domain.file_case(CASE_ID, filing, FILED), OPERATOR)

    assert (proto.platform_id, proto.order, proto.company, proto.worker) == ("", "", "", "workers/w-7")
    assert (proto.kind, proto.complainant) == (pb.CASE_KIND_WORKER_DISPUTE, pb.PARTY_KIND_WORKER)


# -- agreements and outcomes -----------------------------------------------------------------


def test_the_agreement_round_trips_through_the_wire() -> None:
    wire = agreement_to_proto(AGREEMENT).SerializeToString()

    assert agreement_from_proto(pb.Agreement.FromString(wire)) == AGREEMENT
    assert [u.due_date for u in pb.Agreement.FromString(wire).undertakings] == ["2024-07-01", "2024-06-20"]


@pytest.mark.parametrize("result", list(domain.OutcomeResult))
@pytest.mark.parametrize("at_fault", [None, *domain.PartyKind])
def test_the_outcome_round_trips(result: domain.OutcomeResult, at_fault: domain.PartyKind | None) -> None:
    outcome = domain.Outcome(result, at_fault, 12_345)

    assert outcome_from(pb.Outcome.FromString(outcome_to_proto(outcome).SerializeToString())) == outcome


@pytest.mark.parametrize("due_date", ["2024-02-30", "2024-13-01", ""])
def test_a_bad_due_date_names_its_undertaking(due_date: str) -> None:
    agreement = agreement_to_proto(AGREEMENT)
    agreement.undertakings[1].due_date = due_date

    with pytest.raises(InvalidArgument) as raised:
        agreement_from_proto(agreement)

    assert raised.value.field == "agreement.undertakings[1].due_date"


def test_an_undertaking_without_a_party_is_refused() -> None:
    agreement = agreement_to_proto(AGREEMENT)
    agreement.undertakings[0].party = pb.PARTY_KIND_UNSPECIFIED

    with pytest.raises(InvalidArgument) as raised:
        agreement_from_proto(agreement)

    assert raised.value.field == "agreement.undertakings[0].party"


def test_an_outcome_without_a_result_is_refused() -> None:
    with pytest.raises(InvalidArgument) as raised:
        outcome_from(pb.Outcome(compensation_fen=100))

    assert raised.value.field == "outcome.result"


# -- resource names --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", f"orders/{CASE_ID}", "cases/", "cases/not-a-uuid", str(CASE_ID)])
def test_a_bad_case_name_names_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        case_id(name)

    assert raised.value.field == "name"


def test_a_case_name_gives_its_id() -> None:
    assert case_id(f"cases/{CASE_ID}") == CASE_ID


@pytest.mark.parametrize(
    ("name", "collection", "expected"),
    [("workers/w-42", "workers", "w-42"), (f"orders/{ORDER_ID}", "orders", ORDER_ID), ("", "companies", "")],
)
def test_plain_ids_of_names(name: str, collection: str, expected: str) -> None:
    assert plain_id(name, collection, "field") == expected


@pytest.mark.parametrize("name", ["companies/c-1", "workers/", "workers/w/1", "w-42"])
def test_a_bad_name_names_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        plain_id(name, "workers", "worker")

    assert raised.value.field == "worker"


# -- policy ----------------------------------------------------------------------------------


def test_the_policy_covers_exactly_both_services_methods() -> None:
    services = pb.DESCRIPTOR.services_by_name.values()

    assert set(POLICY) == {f"/{s.full_name}/{m.name}" for s in services for m in s.methods}
    assert {s.name for s in SERVICES} == {"ComplaintService", "MediationService"}


@pytest.mark.parametrize(
    ("method", "roles"),
    [
        ("ComplaintService/FileComplaint", {Role.PLATFORM}),
        ("ComplaintService/FileWorkerDispute", {Role.PLATFORM, Role.COMPANY, Role.UNION}),
        ("ComplaintService/ResolveCase", {Role.COMPANY, Role.MEDIATOR, Role.OPERATOR, Role.PLATFORM}),
        ("MediationService/ClaimNextCase", {Role.MEDIATOR}),
        ("MediationService/RecordPerformance", {Role.MEDIATOR, Role.OPERATOR}),
        ("MediationService/AcceptReferral", {Role.OPERATOR}),
    ],
)
def test_policy_roles(method: str, roles: set[Role]) -> None:
    assert POLICY[f"/jiazheng.complaints.v1.{method}"] == roles


# -- the servicers through the in-memory unit of work ----------------------------------------


@pytest.fixture
def uow() -> FakeComplaintsUnitOfWork:
    fake = FakeComplaintsUnitOfWork()
    fake.orders.by_id[ORDER_ID] = KnownOrder(ORDER_ID, "p-meituan", "110108", "w-42", "c-jiajie")
    return fake


def _servicers(uow: FakeComplaintsUnitOfWork) -> tuple[ComplaintServicer, MediationServicer]:
    rules = Rules(CALENDAR, LEASE)
    return ComplaintServicer(lambda: uow, rules), MediationServicer(lambda: uow, rules)


def _complaint(request_id: uuid.UUID, **fields: Any) -> pb.FileComplaintRequest:
    return pb.FileComplaintRequest(
        request_id=str(request_id),
        order=f"orders/{ORDER_ID}",
        respondent=pb.PARTY_KIND_COMPANY,
        category=pb.CATEGORY_QUALITY,
        severity=pb.SEVERITY_MINOR,
        description="没打扫干净",
        **fields,
    )


async def test_file_complaint_files_through_the_callers_platform(uow: FakeComplaintsUnitOfWork) -> None:
    complaints, _ = _servicers(uow)
    request_id = uuid.uuid4()

    with acting_as(PLATFORM):
        first = await complaints.FileComplaint(_complaint(request_id), NO_CONTEXT)
        again = await complaints.FileComplaint(_complaint(request_id), NO_CONTEXT)

    [stored] = uow.cases.by_id.values()
    assert (stored.filing.platform_id, stored.filing.filed_by) == ("p-meituan", "p-meituan")
    assert (stored.filing.kind, stored.filing.complainant) == (
        domain.CaseKind.COMPLAINT,
        domain.PartyKind.CONSUMER,
    )
    assert (first.complaint_case.company, first.complaint_case.description) == (
        "companies/c-jiajie",
        "没打扫干净",
    )
    assert again.complaint_case.name == first.complaint_case.name == stored.name


async def test_file_complaint_refuses_a_bad_worker_name(uow: FakeComplaintsUnitOfWork) -> None:
    complaints, _ = _servicers(uow)

    with acting_as(PLATFORM), pytest.raises(InvalidArgument) as raised:
        await complaints.FileComplaint(_complaint(uuid.uuid4(), worker="companies/c-1"), NO_CONTEXT)

    assert raised.value.field == "worker"
    assert not uow.cases.by_id


@pytest.mark.parametrize(
    ("principal", "platform_id"), [(PLATFORM, "p-meituan"), (Principal("u", Role.UNION, "u-1"), "")]
)
async def test_file_worker_dispute_comes_through_a_platform_only_when_one_files_it(
    uow: FakeComplaintsUnitOfWork, principal: Principal, platform_id: str
) -> None:
    complaints, _ = _servicers(uow)
    request = pb.FileWorkerDisputeRequest(
        request_id=str(uuid.uuid4()),
        worker="workers/w-9",
        respondent=pb.PARTY_KIND_CONSUMER,
        category=pb.CATEGORY_ABUSE,
        severity=pb.SEVERITY_SEVERE,
        description="被辱骂",
        employee_model=True,
    )

    with acting_as(principal):
        answer = await complaints.FileWorkerDispute(request, NO_CONTEXT)

    [stored] = uow.cases.by_id.values()
    assert (stored.filing.platform_id, stored.filing.filed_by) == (platform_id, principal.tenant)
    assert (stored.filing.employee_model, stored.filing.complainant) == (True, domain.PartyKind.WORKER)
    assert (answer.complaint_case.kind, answer.complaint_case.worker) == (
        pb.CASE_KIND_WORKER_DISPUTE,
        "workers/w-9",
    )


async def _in_mediation(uow: FakeComplaintsUnitOfWork) -> str:
    """A complaint the company rejected, claimed by the mediator; its name."""
    complaints, mediation = _servicers(uow)
    with acting_as(PLATFORM):
        filed = await complaints.FileComplaint(_complaint(uuid.uuid4()), NO_CONTEXT)
    name = filed.complaint_case.name
    with acting_as(COMPANY):
        await complaints.DecideCase(pb.DecideCaseRequest(name=name, accept=False), NO_CONTEXT)
    with acting_as(MEDIATOR):
        claimed = await mediation.ClaimNextCase(pb.ClaimNextCaseRequest(), NO_CONTEXT)
    assert (claimed.complaint_case.name, claimed.complaint_case.mediator) == (name, MEDIATOR.id)
    return name


async def test_an_agreement_performed_resolves_the_case(uow: FakeComplaintsUnitOfWork) -> None:
    _, mediation = _servicers(uow)
    name = await _in_mediation(uow)
    agreed = pb.RecordAgreementRequest(
        name=name, agreement=agreement_to_proto(AGREEMENT), outcome=outcome_to_proto(OUTCOME)
    )

    with acting_as(MEDIATOR):
        agreement = await mediation.RecordAgreement(agreed, NO_CONTEXT)
        done = await mediation.RecordPerformance(
            pb.RecordPerformanceRequest(name=name, performed=True), NO_CONTEXT
        )

    assert agreement_from_proto(agreement.complaint_case.agreement) == AGREEMENT
    assert agreement.complaint_case.deadline_kind == "agreement_follow_up"
    assert done.complaint_case.state == pb.CASE_STATE_RESOLVED
    assert outcome_from(done.complaint_case.outcome) == OUTCOME


async def test_a_breach_needs_the_party_in_breach(uow: FakeComplaintsUnitOfWork) -> None:
    _, mediation = _servicers(uow)
    name = await _in_mediation(uow)

    with acting_as(OPERATOR), pytest.raises(InvalidArgument) as raised:
        await mediation.RecordPerformance(pb.RecordPerformanceRequest(name=name, performed=False), NO_CONTEXT)

    assert raised.value.field == "breached_by"


async def test_queue_and_workload_of_the_mediators_body(uow: FakeComplaintsUnitOfWork) -> None:
    _, mediation = _servicers(uow)
    name = await _in_mediation(uow)

    with acting_as(MEDIATOR):
        queue = await mediation.ListQueue(pb.ListQueueRequest(), NO_CONTEXT)
    with acting_as(OPERATOR):
        workload = await mediation.ListWorkload(
            pb.ListWorkloadRequest(body=pb.MEDIATION_BODY_CONSUMER_ASSOCIATION), NO_CONTEXT
        )
        other = await mediation.ListQueue(
            pb.ListQueueRequest(body=pb.MEDIATION_BODY_PEOPLES_MEDIATION), NO_CONTEXT
        )

    assert [c.name for c in queue.cases] == [name]
    assert [(w.mediator, w.held, w.closed) for w in workload.workloads] == [(MEDIATOR.id, 1, 0)]
    assert list(other.cases) == []


async def test_an_operator_names_the_body_of_a_listing(uow: FakeComplaintsUnitOfWork) -> None:
    _, mediation = _servicers(uow)

    with acting_as(OPERATOR), pytest.raises(InvalidArgument) as raised:
        await mediation.ListQueue(pb.ListQueueRequest(), NO_CONTEXT)

    assert raised.value.field == "body"


async def test_a_reassigned_case_is_the_named_mediators(uow: FakeComplaintsUnitOfWork) -> None:
    _, mediation = _servicers(uow)
    name = await _in_mediation(uow)

    with acting_as(OPERATOR):
        answer = await mediation.ReassignCase(
            pb.ReassignCaseRequest(name=name, mediator="mediator-li"), NO_CONTEXT
        )

    assert answer.complaint_case.mediator == "mediator-li"
    assert answer.complaint_case.lease_expire_time.ToDatetime(tzinfo=UTC) == uow.clock.now() + LEASE


async def test_a_dispute_ended_without_agreement_goes_to_legal_aid(uow: FakeComplaintsUnitOfWork) -> None:
    complaints, mediation = _servicers(uow)
    union = Principal("u", Role.UNION, "u-1")
    request = pb.FileWorkerDisputeRequest(
        request_id=str(uuid.uuid4()),
        worker="workers/w-9",
        respondent=pb.PARTY_KIND_CONSUMER,
        category=pb.CATEGORY_UNPAID_WAGES,
        severity=pb.SEVERITY_MAJOR,
        description="欠薪两个月",
        employee_model=True,
    )
    peoples = Principal("mediator-zhao", Role.MEDIATOR, "peoples_mediation")
    with acting_as(union):
        name = (await complaints.FileWorkerDispute(request, NO_CONTEXT)).complaint_case.name
    with acting_as(OPERATOR):
        await complaints.DecideCase(pb.DecideCaseRequest(name=name, accept=False), NO_CONTEXT)
    with acting_as(peoples):
        await mediation.ClaimNextCase(pb.ClaimNextCaseRequest(), NO_CONTEXT)
        ended = await mediation.EndMediation(
            pb.EndMediationRequest(name=name, route=pb.ESCALATION_ROUTE_LEGAL_AID), NO_CONTEXT
        )
    with acting_as(OPERATOR):
        listed = await mediation.ListReferrals(pb.ListReferralsRequest(), NO_CONTEXT)
        accepted = await mediation.AcceptReferral(pb.AcceptReferralRequest(name=name), NO_CONTEXT)

    assert ended.complaint_case.escalation_route == pb.ESCALATION_ROUTE_LEGAL_AID
    assert [(r.case_name, r.labour_dispute, r.accepted) for r in listed.referrals] == [(name, True, False)]
    assert (accepted.referral.case_name, accepted.referral.accepted) == (name, True)


async def test_get_case_refuses_a_bad_name(uow: FakeComplaintsUnitOfWork) -> None:
    complaints, _ = _servicers(uow)

    with acting_as(OPERATOR), pytest.raises(InvalidArgument) as raised:
        await complaints.GetCase(pb.GetCaseRequest(name="orders/x"), NO_CONTEXT)

    assert raised.value.field == "name"
