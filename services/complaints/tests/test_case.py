"""The case workflow as pure domain code: answers, mediation under leases, agreements and their
follow-up, escalation routes, endings and suspension requests, with deadlines pinned on China's
2026 working-day calendar (the Spring Festival, Qingming and Labour Day with their make-up days)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from libs.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.complaints import domain
from services.complaints.domain import (
    BEIJING,
    Case,
    CaseKind,
    CaseState,
    DeadlineKind,
    EscalationRoute,
    MediationBody,
    OutcomeResult,
    PartyKind,
)

CASE_ID = uuid.UUID("5d0c1e2a-3b4f-4a6b-8c7d-9e0f1a2b3c4d")
CALENDAR = domain.WorkingCalendar()
LEASE = timedelta(minutes=30)
MEDIATOR, OTHER_MEDIATOR = "mediator-wang", "mediator-li"
FILED = datetime(2026, 2, 12, 10, 0, tzinfo=BEIJING)  # the Thursday before the 2026 Spring Festival
# The 7th working day after 12 Feb: Fri 13, Sat 14 (make-up), then 24-27 and Sat 28 (make-up) after
# the holiday of 15-23 Feb; the decision is due at its end.
DECISION_DUE = datetime(2026, 3, 1, tzinfo=BEIJING)
MEDIATION_START = datetime(2026, 3, 2, 10, 0, tzinfo=BEIJING)
# The 45th working day after Mon 2 Mar is Fri 8 May: Qingming (Mon 6 Apr) and Labour Day (1-5 May) off.
MEDIATION_DUE = datetime(2026, 5, 9, tzinfo=BEIJING)
CLAIMED = MEDIATION_START + timedelta(days=1)
COMPLAINT = domain.Filing(
    kind=CaseKind.COMPLAINT,
    category=domain.Category.DAMAGE,
    severity=domain.Severity.MAJOR,
    complainant=PartyKind.CONSUMER,
    respondent=PartyKind.COMPANY,
    description="打碎了花瓶",
    platform_id="p-meituan",
    order_id="o-1",
    worker_id="w-42",
    company_id="c-jiajie",
    filed_by="p-meituan",
)
WAGE_DISPUTE = domain.Filing(
    kind=CaseKind.WORKER_DISPUTE,
    category=domain.Category.UNPAID_WAGES,
    severity=domain.Severity.MAJOR,
    complainant=PartyKind.WORKER,
    respondent=PartyKind.COMPANY,
    description="欠薪两个月",
    worker_id="w-42",
    company_id="c-jiajie",
    employee_model=True,
    filed_by="u-haidian",
)
AGREEMENT = domain.Agreement(
    facts="花瓶打碎",
    responsibility="公司承担",
    undertakings=(
        domain.Undertaking(PartyKind.COMPANY, "赔偿 300 元", date(2026, 3, 31)),
        domain.Undertaking(PartyKind.WORKER, "致歉", date(2026, 3, 20)),
    ),
)
OUTCOME = domain.Outcome(OutcomeResult.PARTLY_SUBSTANTIATED, PartyKind.COMPANY, 30_000)


def _filed(filing: domain.Filing = COMPLAINT) -> Case:
    return domain.file_case(CASE_ID, filing, FILED)


def _in_mediation(filing: domain.Filing = COMPLAINT) -> Case:
    return domain.to_mediation(_filed(filing), MEDIATION_START, CALENDAR)


def _held(filing: domain.Filing = COMPLAINT, at: datetime = CLAIMED) -> Case:
    return domain.claim(_in_mediation(filing), MEDIATOR, at, LEASE)


def _agreed(filing: domain.Filing = COMPLAINT) -> Case:
    return domain.record_agreement(_held(filing), MEDIATOR, AGREEMENT, OUTCOME, CLAIMED)


# -- answers and deadlines -------------------------------------------------------------------


def test_a_complaint_is_filed_answered_accepted_and_resolved() -> None:
    filed = _filed()
    responded = domain.respond(filed, FILED + timedelta(hours=2), CALENDAR)
    accepted = domain.accept(responded, FILED + timedelta(days=3), CALENDAR)
    resolved = domain.resolve(accepted, OUTCOME, "jiajie-api")

    assert (filed.state, filed.deadline) == (
        CaseState.FILED,
        domain.Deadline(DeadlineKind.FIRST_RESPONSE, FILED + timedelta(hours=24)),
    )
    assert (responded.state, responded.responded_at) == (CaseState.RESPONDED, FILED + timedelta(hours=2))
    assert responded.deadline == domain.Deadline(DeadlineKind.DECISION, DECISION_DUE)
    assert (accepted.state, accepted.responded_at) == (CaseState.ACCEPTED, FILED + timedelta(hours=2))
    assert accepted.deadline == domain.Deadline(DeadlineKind.DECISION, DECISION_DUE)
    assert (resolved.state, resolved.outcome, resolved.resolved_by, resolved.deadline) == (
        CaseState.RESOLVED,
        OUTCOME,
        "jiajie-api",
        None,
    )


def test_accepting_without_a_response_counts_as_the_response() -> None:
    accepted = domain.accept(_filed(), FILED + timedelta(hours=5), CALENDAR)

    assert (accepted.state, accepted.responded_at) == (CaseState.ACCEPTED, FILED + timedelta(hours=5))


def test_a_rejected_case_is_mediated_for_45_working_days() -> None:
    responded = domain.respond(_filed(), FILED + timedelta(hours=2), CALENDAR)

    rejected = domain.to_mediation(responded, MEDIATION_START, CALENDAR)

    assert rejected.state is CaseState.IN_MEDIATION
    assert rejected.body is MediationBody.CONSUMER_ASSOCIATION
    assert rejected.deadline == domain.Deadline(DeadlineKind.MEDIATION, MEDIATION_DUE)
    assert (rejected.mediator, rejected.lease_until) == (None, None)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (CaseKind.COMPLAINT, MediationBody.CONSUMER_ASSOCIATION),
        (CaseKind.CHARGE_DISPUTE, MediationBody.CONSUMER_ASSOCIATION),
        (CaseKind.WORKER_DISPUTE, MediationBody.PEOPLES_MEDIATION),
        (CaseKind.CLAIM_DISPUTE, MediationBody.INDUSTRY_ASSOCIATION),
    ],
)
def test_each_kind_of_case_is_mediated_by_its_body(kind: CaseKind, body: MediationBody) -> None:
    filing = dataclasses.replace(WAGE_DISPUTE, kind=kind)

    assert _in_mediation(filing).body is body


def test_a_missed_first_response_runs_on_to_the_decision_deadline() -> None:
    missed = domain.first_response_missed(_filed(), CALENDAR)

    assert missed.state is CaseState.FILED
    assert missed.deadline == domain.Deadline(DeadlineKind.DECISION, DECISION_DUE)


def test_the_first_response_deadline_of_an_answered_case_cannot_be_missed() -> None:
    responded = domain.respond(_filed(), FILED + timedelta(hours=2), CALENDAR)

    with pytest.raises(FailedPrecondition, match="responded"):
        domain.first_response_missed(responded, CALENDAR)


def test_a_worker_dispute_needs_the_employment_model() -> None:
    with pytest.raises(InvalidArgument) as raised:
        _filed(dataclasses.replace(WAGE_DISPUTE, employee_model=None))

    assert raised.value.field == "employee_model"
    assert _filed(dataclasses.replace(WAGE_DISPUTE, employee_model=False)).state is CaseState.FILED


# -- mediation under leases ------------------------------------------------------------------


def test_a_claim_holds_the_case_until_its_lease_ends() -> None:
    held = _held()

    assert (held.mediator, held.lease_until) == (MEDIATOR, CLAIMED + LEASE)
    assert held.held_by(MEDIATOR, CLAIMED + LEASE - timedelta(seconds=1))
    assert not held.held_by(MEDIATOR, CLAIMED + LEASE)
    assert not held.held_by(OTHER_MEDIATOR, CLAIMED)


def test_a_held_case_cannot_be_claimed_by_another_mediator() -> None:
    with pytest.raises(FailedPrecondition, match=MEDIATOR):
        domain.claim(_held(), OTHER_MEDIATOR, CLAIMED + LEASE - timedelta(seconds=1), LEASE)


def test_a_case_whose_lease_expired_is_free_to_claim() -> None:
    again = domain.claim(_held(), OTHER_MEDIATOR, CLAIMED + LEASE, LEASE)

    assert (again.mediator, again.lease_until) == (OTHER_MEDIATOR, CLAIMED + 2 * LEASE)


def test_only_a_case_in_mediation_is_claimed() -> None:
    with pytest.raises(FailedPrecondition, match="filed"):
        domain.claim(_filed(), MEDIATOR, CLAIMED, LEASE)


def test_the_holder_releases_the_case_to_the_queue() -> None:
    released = domain.release(_held(), MEDIATOR, CLAIMED + timedelta(minutes=5))

    assert (released.state, released.mediator, released.lease_until) == (CaseState.IN_MEDIATION, None, None)


def test_an_operator_reassigns_a_held_case_with_a_fresh_lease() -> None:
    later = CLAIMED + timedelta(minutes=10)

    reassigned = domain.reassign(_held(), OTHER_MEDIATOR, later, LEASE)

    assert (reassigned.mediator, reassigned.lease_until) == (OTHER_MEDIATOR, later + LEASE)


HolderStep = Callable[[Case, str, datetime], Case]
HOLDER_STEPS: dict[str, HolderStep] = {
    "release": domain.release,
    "record_agreement": lambda case, m, now: domain.record_agreement(case, m, AGREEMENT, OUTCOME, now),
    "end_mediation": lambda case, m, now: domain.end_mediation(case, m, EscalationRoute.COURT, now),
}


@pytest.mark.parametrize("step", HOLDER_STEPS.values(), ids=HOLDER_STEPS.keys())
def test_only_the_holder_does_what_the_holder_does(step: HolderStep) -> None:
    with pytest.raises(PermissionDenied):
        step(_held(), OTHER_MEDIATOR, CLAIMED + timedelta(minutes=5))


@pytest.mark.parametrize("step", HOLDER_STEPS.values(), ids=HOLDER_STEPS.keys())
def test_a_holder_whose_lease_expired_claims_again_first(step: HolderStep) -> None:
    with pytest.raises(FailedPrecondition, match="lease expired"):
        step(_held(), MEDIATOR, CLAIMED + LEASE)


# -- agreements and escalation ---------------------------------------------------------------


def test_an_agreement_is_followed_up_after_its_last_due_date() -> None:
    agreed = _agreed()

    assert (agreed.state, agreed.agreement, agreed.outcome) == (CaseState.AGREEMENT, AGREEMENT, OUTCOME)
    # the last undertaking is due on 31 March: performance is checked when that day ends in Beijing
    assert agreed.deadline == domain.Deadline(
        DeadlineKind.AGREEMENT_FOLLOW_UP, datetime(2026, 4, 1, tzinfo=BEIJING)
    )


@pytest.mark.parametrize(("due", "allowed"), [(date(2026, 3, 2), False), (date(2026, 3, 3), True)])
def test_an_undertaking_due_before_today_in_beijing_is_refused(due: date, allowed: bool) -> None:
    now = datetime(2026, 3, 3, 0, 30, tzinfo=BEIJING)  # still 2 March in UTC
    agreement = dataclasses.replace(
        AGREEMENT, undertakings=(domain.Undertaking(PartyKind.COMPANY, "赔偿", due),)
    )
    held = _held(at=now - timedelta(minutes=1))

    if allowed:
        assert domain.record_agreement(held, MEDIATOR, agreement, OUTCOME, now).state is CaseState.AGREEMENT
        return
    with pytest.raises(InvalidArgument) as raised:
        domain.record_agreement(held, MEDIATOR, agreement, OUTCOME, now)
    assert raised.value.field == "agreement.undertakings"


def test_a_performed_agreement_resolves_the_case_by_its_mediator() -> None:
    done = domain.follow_up(_agreed(), performed=True)

    assert (done.state, done.outcome, done.resolved_by, done.deadline) == (
        CaseState.RESOLVED,
        OUTCOME,
        MEDIATOR,
        None,
    )


@pytest.mark.parametrize(
    ("filing", "route"),
    [
        (COMPLAINT, EscalationRoute.REGULATOR_12315),
        (WAGE_DISPUTE, EscalationRoute.LEGAL_AID),
        (dataclasses.replace(COMPLAINT, kind=CaseKind.CHARGE_DISPUTE), EscalationRoute.REGULATOR_12315),
    ],
    ids=["complaint", "worker_dispute", "charge_dispute"],
)
def test_a_breached_agreement_escalates_by_the_default_route(
    filing: domain.Filing, route: EscalationRoute
) -> None:
    breached = domain.follow_up(_agreed(filing), performed=False)

    assert (breached.state, breached.route) == (CaseState.ESCALATED, route)
    assert (breached.deadline, breached.mediator, breached.lease_until) == (None, None, None)


def test_legal_aid_is_for_workers_disputes_only() -> None:
    with pytest.raises(InvalidArgument) as raised:
        domain.escalate(_held(COMPLAINT), EscalationRoute.LEGAL_AID)

    assert raised.value.field == "route"
    assert domain.escalate(_held(WAGE_DISPUTE), EscalationRoute.LEGAL_AID).route is EscalationRoute.LEGAL_AID


@pytest.mark.parametrize(("employee_model", "labour"), [(True, True), (False, False)])
def test_a_legal_aid_referral_is_due_in_5_working_days(employee_model: bool, labour: bool) -> None:
    filing = dataclasses.replace(WAGE_DISPUTE, employee_model=employee_model)
    escalated = domain.escalate(_held(filing), EscalationRoute.LEGAL_AID)
    now = datetime(2026, 4, 1, 10, 0, tzinfo=BEIJING)  # a Wednesday; Qingming is 4-6 April

    referral = domain.refer_to_legal_aid(escalated, now, CALENDAR)

    assert (referral.case_id, referral.labour_dispute, referral.created_at) == (CASE_ID, labour, now)
    assert referral.deadline == datetime(2026, 4, 10, tzinfo=BEIJING)
    assert (referral.accepted_at, referral.overdue) == (None, False)


def test_only_a_case_escalated_to_legal_aid_is_referred() -> None:
    to_court = domain.escalate(_held(WAGE_DISPUTE), EscalationRoute.COURT)

    with pytest.raises(FailedPrecondition):
        domain.refer_to_legal_aid(to_court, CLAIMED, CALENDAR)


# -- endings ---------------------------------------------------------------------------------

CLOSED: dict[str, Callable[[], Case]] = {
    "resolved": lambda: domain.resolve(_filed(), OUTCOME, "ops-1"),
    "withdrawn": lambda: domain.withdraw(_filed()),
    "escalated": lambda: domain.escalate(_held(), EscalationRoute.COURT),
}
ENDINGS: dict[str, Callable[[Case], Case]] = {
    "resolve": lambda case: domain.resolve(case, OUTCOME, "ops-1"),
    "withdraw": domain.withdraw,
}


@pytest.mark.parametrize("state", CLOSED.keys())
@pytest.mark.parametrize("ending", ENDINGS.keys())
def test_a_closed_case_cannot_end_again_and_the_error_names_its_state(state: str, ending: str) -> None:
    closed = CLOSED[state]()

    with pytest.raises(FailedPrecondition, match=f"is {state}$"):
        ENDINGS[ending](closed)


def test_withdrawing_stops_the_clock_and_frees_the_case() -> None:
    withdrawn = domain.withdraw(_held())

    assert (withdrawn.state, withdrawn.deadline, withdrawn.mediator) == (CaseState.WITHDRAWN, None, None)


AGAINST_WORKER = dataclasses.replace(
    COMPLAINT, category=domain.Category.THEFT, severity=domain.Severity.SEVERE, respondent=PartyKind.WORKER
)


@pytest.mark.parametrize(
    ("changes", "result", "requested"),
    [
        ({}, OutcomeResult.SUBSTANTIATED, True),
        ({}, OutcomeResult.PARTLY_SUBSTANTIATED, False),
        ({}, OutcomeResult.NOT_SUBSTANTIATED, False),
        ({"severity": domain.Severity.MAJOR}, OutcomeResult.SUBSTANTIATED, False),
        ({"respondent": PartyKind.COMPANY}, OutcomeResult.SUBSTANTIATED, False),
        ({"worker_id": ""}, OutcomeResult.SUBSTANTIATED, False),
    ],
    ids=["substantiated", "partly", "not", "major", "against_company", "no_worker"],
)
def test_suspension_is_requested_for_a_substantiated_severe_complaint_against_a_worker(
    changes: dict[str, object], result: OutcomeResult, requested: bool
) -> None:
    filing = dataclasses.replace(AGAINST_WORKER, **changes)  # type: ignore[arg-type]
    resolved = domain.resolve(_filed(filing), domain.Outcome(result, PartyKind.WORKER), "ops-1")

    assert domain.requests_suspension(resolved) is requested


def test_an_agreed_but_unresolved_case_requests_no_suspension() -> None:
    substantiated = domain.Outcome(OutcomeResult.SUBSTANTIATED, PartyKind.WORKER)
    agreed = domain.record_agreement(_held(AGAINST_WORKER), MEDIATOR, AGREEMENT, substantiated, CLAIMED)

    assert not domain.requests_suspension(agreed)
    assert domain.requests_suspension(domain.follow_up(agreed, performed=True))
