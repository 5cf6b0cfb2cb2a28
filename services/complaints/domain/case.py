"""A case (投诉/纠纷): a consumer's complaint or a worker's dispute, and its workflow on SLA clocks.

filed ─respond─► responded ─decide(accept)─► accepted ─resolve─► resolved
  │                  │ decide(reject) / the decision deadline / a request
  └──────────────────┴────────────► in mediation ─agreement─► agreement ─performed─► resolved
                                         │  (a mediator holds it under a lease)  └─breached─► escalated
                                         └─ the 45-working-day deadline / ended without agreement ─► escalated
Any open case may be withdrawn by the complainant's side, or resolved by an operator.

One deadline runs at a time (``Case.deadline``); the service keeps a durable timer on it. Each
transition is a function from the case to the next case; a step the state does not allow raises
``FailedPrecondition`` naming the state.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import IntEnum, StrEnum

from libs.common.beijing import BEIJING
from libs.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.complaints.domain.calendar import WorkingCalendar, add_working_days

FIRST_RESPONSE = timedelta(hours=24)  # local standards: contact the complainant within 24 h
DECISION_WORKING_DAYS = 7  # decide to accept within 7 working days (DOMAIN §7)
MEDIATION_WORKING_DAYS = 45  # mediation ends without agreement after 45 working days
LEGAL_AID_WORKING_DAYS = 5  # our default: a legal-aid centre takes a referral within 5 working days


class CaseKind(StrEnum):
    COMPLAINT = "complaint"
    WORKER_DISPUTE = "worker_dispute"
    CHARGE_DISPUTE = "charge_dispute"  # a disputed no-show or cancellation fee (orders' event)
    CLAIM_DISPUTE = "claim_dispute"  # a contested insurance claim denial (insurance's event)


class Category(StrEnum):
    QUALITY = "quality"
    DAMAGE = "damage"
    THEFT = "theft"
    ABUSE = "abuse"
    NO_SHOW = "no_show"
    FEES = "fees"
    OTHER = "other"
    UNPAID_WAGES = "unpaid_wages"  # 欠薪
    UNSAFE_CONDITIONS = "unsafe_conditions"
    FEES_WITHHELD = "fees_withheld"
    CLAIM_DENIED = "claim_denied"


class Severity(IntEnum):
    """Higher is more serious; the mediation queue takes the most severe first."""

    MINOR = 1
    MAJOR = 2
    SEVERE = 3


class PartyKind(StrEnum):
    CONSUMER = "consumer"
    WORKER = "worker"
    COMPANY = "company"
    INSURER = "insurer"


class CaseState(StrEnum):
    FILED = "filed"
    RESPONDED = "responded"
    ACCEPTED = "accepted"
    IN_MEDIATION = "in_mediation"
    AGREEMENT = "agreement"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"


OPEN = frozenset(
    {CaseState.FILED, CaseState.RESPONDED, CaseState.ACCEPTED, CaseState.IN_MEDIATION, CaseState.AGREEMENT}
)


class MediationBody(StrEnum):
    """The mediation bodies (调解组织) with a queue each."""

    INDUSTRY_ASSOCIATION = "industry_association"  # 家政行业协会
    PEOPLES_MEDIATION = "peoples_mediation"  # 人民调解委员会
    CONSUMER_ASSOCIATION = "consumer_association"  # 消费者协会


class EscalationRoute(StrEnum):
    REGULATOR_12315 = "12315"
    ARBITRATION = "arbitration"
    COURT = "court"
    LEGAL_AID = "legal_aid"


class OutcomeResult(StrEnum):
    SUBSTANTIATED = "substantiated"
    PARTLY_SUBSTANTIATED = "partly_substantiated"
    NOT_SUBSTANTIATED = "not_substantiated"


class DeadlineKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    DECISION = "decision"
    MEDIATION = "mediation"
    AGREEMENT_FOLLOW_UP = "agreement_follow_up"


@dataclass(frozen=True)
class Deadline:
    kind: DeadlineKind
    due_at: datetime


@dataclass(frozen=True)
class Outcome:
    """The result, the party at fault (None: nobody) and the compensation owed, in fen."""

    result: OutcomeResult
    at_fault: PartyKind | None = None
    compensation_fen: int = 0


@dataclass(frozen=True)
class Undertaking:
    party: PartyKind
    action: str
    due: date


@dataclass(frozen=True)
class Agreement:
    """A mediation agreement (调解协议): the facts, who is responsible, who does what by when."""

    facts: str
    responsibility: str
    undertakings: tuple[Undertaking, ...]

    @property
    def follow_up_at(self) -> datetime:
        """The end of the last due date (Beijing): performance is checked then."""
        last = max(u.due for u in self.undertakings)
        return datetime.combine(last + timedelta(days=1), time(), BEIJING)


@dataclass(frozen=True)
class Filing:
    """What a case is about, as filed. ``description`` is personal data (the store seals it).
    ``employee_model`` is set for worker disputes: 员工制 (a labour dispute) or 中介制 (civil).
    Ids are plain (``order_id``, not ``orders/...``); empty when none."""

    kind: CaseKind
    category: Category
    severity: Severity
    complainant: PartyKind
    respondent: PartyKind
    description: str
    platform_id: str = ""
    order_id: str = ""
    worker_id: str = ""
    company_id: str = ""
    district_code: str = ""
    evidence_refs: tuple[str, ...] = ()
    employee_model: bool | None = None
    filed_by: str = ""  # the filing principal's tenant (a platform, a company, a union)


@dataclass(frozen=True)
class Case:
    case_id: uuid.UUID
    filing: Filing
    state: CaseState
    filed_at: datetime
    deadline: Deadline | None
    responded_at: datetime | None = None
    body: MediationBody | None = None
    mediator: str | None = None
    lease_until: datetime | None = None
    outcome: Outcome | None = None
    agreement: Agreement | None = None
    route: EscalationRoute | None = None
    resolved_by: str | None = None

    @property
    def name(self) -> str:
        return f"cases/{self.case_id}"

    def require(self, *states: CaseState, doing: str) -> None:
        if self.state not in states:
            raise FailedPrecondition(f"cannot {doing} a case that is {self.state}")

    def held_by(self, mediator: str, now: datetime) -> bool:
        return self.mediator == mediator and self.lease_until is not None and now < self.lease_until


def file_case(case_id: uuid.UUID, filing: Filing, now: datetime) -> Case:
    """A new case: the respondent's first response is due within 24 hours."""
    if filing.kind is CaseKind.WORKER_DISPUTE and filing.employee_model is None:
        raise InvalidArgument("employee_model", "is required for a worker dispute")
    return Case(
        case_id, filing, CaseState.FILED, now, Deadline(DeadlineKind.FIRST_RESPONSE, now + FIRST_RESPONSE)
    )


def _decision_deadline(case: Case, calendar: WorkingCalendar) -> Deadline:
    return Deadline(DeadlineKind.DECISION, add_working_days(calendar, case.filed_at, DECISION_WORKING_DAYS))


def respond(case: Case, now: datetime, calendar: WorkingCalendar) -> Case:
    """The respondent's first response; the decision is due 7 working days after filing."""
    case.require(CaseState.FILED, doing="respond to")
    return dataclasses.replace(
        case, state=CaseState.RESPONDED, responded_at=now, deadline=_decision_deadline(case, calendar)
    )


def accept(case: Case, now: datetime, calendar: WorkingCalendar) -> Case:
    """The respondent accepts; it must still resolve the case by the decision deadline."""
    case.require(CaseState.FILED, CaseState.RESPONDED, doing="accept")
    return dataclasses.replace(
        case,
        state=CaseState.ACCEPTED,
        responded_at=case.responded_at or now,
        deadline=_decision_deadline(case, calendar),
    )


def default_body(filing: Filing) -> MediationBody:
    """Where a case is mediated (our default): workers' disputes by people's mediation, consumers'
    complaints and disputed charges by the consumer association, claim disputes by the industry
    association."""
    if filing.kind is CaseKind.WORKER_DISPUTE:
        return MediationBody.PEOPLES_MEDIATION
    if filing.kind is CaseKind.CLAIM_DISPUTE:
        return MediationBody.INDUSTRY_ASSOCIATION
    return MediationBody.CONSUMER_ASSOCIATION


def to_mediation(case: Case, now: datetime, calendar: WorkingCalendar) -> Case:
    """Into its mediation body's queue; mediation ends without agreement after 45 working days."""
    case.require(CaseState.FILED, CaseState.RESPONDED, CaseState.ACCEPTED, doing="send to mediation")
    due = add_working_days(calendar, now, MEDIATION_WORKING_DAYS)
    return dataclasses.replace(
        case,
        state=CaseState.IN_MEDIATION,
        body=default_body(case.filing),
        deadline=Deadline(DeadlineKind.MEDIATION, due),
        mediator=None,
        lease_until=None,
    )


def first_response_missed(case: Case, calendar: WorkingCalendar) -> Case:
    """The 24 hours passed with no response: the decision deadline runs on."""
    case.require(CaseState.FILED, doing="pass the first-response deadline of")
    return dataclasses.replace(case, deadline=_decision_deadline(case, calendar))


# -- mediation -------------------------------------------------------------------------------


def claim(case: Case, mediator: str, now: datetime, lease: timedelta) -> Case:
    """A mediator takes the case under a lease; a case whose lease expired is free to take."""
    case.require(CaseState.IN_MEDIATION, doing="claim")
    if case.mediator is not None and case.lease_until is not None and now < case.lease_until:
        raise FailedPrecondition(f"the case is held by {case.mediator} until {case.lease_until.isoformat()}")
    return dataclasses.replace(case, mediator=mediator, lease_until=now + lease)


def require_holder(case: Case, mediator: str, now: datetime, doing: str) -> None:
    """Another mediator's case is PERMISSION_DENIED; the holder's own expired lease is
    FAILED_PRECONDITION (claim it again first)."""
    if case.mediator != mediator:
        raise PermissionDenied(f"cannot {doing} a case held by another mediator")
    if not case.held_by(mediator, now):
        raise FailedPrecondition(f"cannot {doing} the case: your lease expired; claim it again")


def release(case: Case, mediator: str, now: datetime) -> Case:
    case.require(CaseState.IN_MEDIATION, doing="release")
    require_holder(case, mediator, now, "release")
    return dataclasses.replace(case, mediator=None, lease_until=None)


def reassign(case: Case, mediator: str, now: datetime, lease: timedelta) -> Case:
    case.require(CaseState.IN_MEDIATION, doing="reassign")
    return dataclasses.replace(case, mediator=mediator, lease_until=now + lease)


def record_agreement(
    case: Case, mediator: str, agreement: Agreement, outcome: Outcome, now: datetime
) -> Case:
    """The mediation agreement; its performance is followed up after the last due date."""
    case.require(CaseState.IN_MEDIATION, doing="record an agreement for")
    require_holder(case, mediator, now, "record an agreement for")
    if any(u.due < now.astimezone(BEIJING).date() for u in agreement.undertakings):
        raise InvalidArgument("agreement.undertakings", "due dates must not be in the past")
    return dataclasses.replace(
        case,
        state=CaseState.AGREEMENT,
        agreement=agreement,
        outcome=outcome,
        deadline=Deadline(DeadlineKind.AGREEMENT_FOLLOW_UP, agreement.follow_up_at),
    )


def default_route(filing: Filing) -> EscalationRoute:
    """Where an unresolved case goes (our default): legal aid for workers, 12315 for the others."""
    return (
        EscalationRoute.LEGAL_AID
        if filing.kind is CaseKind.WORKER_DISPUTE
        else EscalationRoute.REGULATOR_12315
    )


def escalate(case: Case, route: EscalationRoute) -> Case:
    """Out of mediation to an outside route; legal aid is for workers' disputes only."""
    case.require(CaseState.IN_MEDIATION, CaseState.AGREEMENT, doing="escalate")
    if route is EscalationRoute.LEGAL_AID and case.filing.kind is not CaseKind.WORKER_DISPUTE:
        raise InvalidArgument("route", "legal aid is for workers' disputes")
    return dataclasses.replace(
        case, state=CaseState.ESCALATED, route=route, deadline=None, mediator=None, lease_until=None
    )


def end_mediation(case: Case, mediator: str, route: EscalationRoute, now: datetime) -> Case:
    case.require(CaseState.IN_MEDIATION, doing="end the mediation of")
    require_holder(case, mediator, now, "end the mediation of")
    return escalate(case, route)


def follow_up(case: Case, performed: bool) -> Case:
    """Performed: resolved with the agreement's outcome. Breached: escalated by the default route."""
    case.require(CaseState.AGREEMENT, doing="follow up")
    if performed:
        return dataclasses.replace(case, state=CaseState.RESOLVED, deadline=None, resolved_by=case.mediator)
    return escalate(case, default_route(case.filing))


# -- endings ---------------------------------------------------------------------------------


def resolve(case: Case, outcome: Outcome, by: str) -> Case:
    """The outcome, recorded by whoever may (the use case checks who)."""
    case.require(*OPEN, doing="resolve")
    return dataclasses.replace(
        case,
        state=CaseState.RESOLVED,
        outcome=outcome,
        resolved_by=by,
        deadline=None,
        mediator=None,
        lease_until=None,
    )


def withdraw(case: Case) -> Case:
    case.require(*OPEN, doing="withdraw")
    return dataclasses.replace(
        case, state=CaseState.WITHDRAWN, deadline=None, mediator=None, lease_until=None
    )


def requests_suspension(case: Case) -> bool:
    """A substantiated severe complaint against a worker asks for the worker's suspension pending review."""
    outcome = case.outcome
    return (
        case.state is CaseState.RESOLVED
        and outcome is not None
        and outcome.result is OutcomeResult.SUBSTANTIATED
        and case.filing.severity is Severity.SEVERE
        and case.filing.respondent is PartyKind.WORKER
        and bool(case.filing.worker_id)
    )


@dataclass(frozen=True)
class Referral:
    """A worker's dispute referred to legal aid (法律援助): a labour dispute under 员工制, civil under
    中介制; a centre takes it by ``deadline``."""

    case_id: uuid.UUID
    labour_dispute: bool
    deadline: datetime
    created_at: datetime
    accepted_at: datetime | None = None
    overdue: bool = False


def refer_to_legal_aid(case: Case, now: datetime, calendar: WorkingCalendar) -> Referral:
    if case.route is not EscalationRoute.LEGAL_AID:
        raise FailedPrecondition("only a case escalated to legal aid is referred")
    labour = bool(case.filing.employee_model)
    return Referral(case.case_id, labour, add_working_days(calendar, now, LEGAL_AID_WORKING_DAYS), now)
