"""A claim (理赔) from filing to payment, and the adjudication rules (核赔) of docs/insurance.md.

filed ─adjudicate─► adjudicated (approved or partly) ─pay─► paid
  └──────────────► denied ─contest─► contested

Each step is a function from the claim to the next claim; a step the state does not allow raises
``FailedPrecondition`` naming the state. A retry of a step with the request id that made it
returns the claim itself (the same object), so the caller knows nothing changed.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import IntEnum, StrEnum

from libs.common.beijing import beijing_day
from libs.common.errors import FailedPrecondition, InvalidArgument
from services.insurance.domain.cover import Cover, CoverKind, CoverTerms, Exclusion, find_cover
from services.insurance.domain.orders import Order
from services.insurance.domain.vocabulary import ServiceType

LATE_REPORT = timedelta(hours=48)  # DOMAIN §8 asks for a report within 24-48 h; later ones are flagged


class ClaimState(StrEnum):
    FILED = "filed"
    ADJUDICATED = "adjudicated"
    DENIED = "denied"
    PAID = "paid"
    CONTESTED = "contested"


class Decision(IntEnum):
    """An insurer's decision; values as jiazheng.insurance.v1.ClaimDecision."""

    APPROVED = 1
    PARTLY_APPROVED = 2
    DENIED = 3


def yuan(fen: int) -> str:
    """An amount in words for reasons: ¥1234.50 (integers only, no floating point)."""
    whole, cents = divmod(fen, 100)
    return f"¥{whole}.{cents:02d}"


@dataclass(frozen=True)
class ClaimFiling:
    """What a claim asks for. ``description`` is personal data (the store seals it);
    ``circumstances`` are what the filer declares of the incident that a product may exclude (the
    insurer confirms or not at adjudication). ``incident_time`` is None only for an automatic
    claim whose order's check-in insurance did not know."""

    order_id: str
    kind: CoverKind
    incident_time: datetime | None
    claimed_fen: int
    description: str
    circumstances: frozenset[Exclusion] = frozenset()


@dataclass(frozen=True)
class CompensationAward:
    """A complaint's outcome that awards compensation (complaints' ``CaseResolved``), from which
    an automatic professional-liability claim is filed."""

    case_id: str
    order_id: str
    worker_id: str
    company_id: str
    compensation_fen: int
    worker_at_fault: bool
    file_time: datetime


@dataclass(frozen=True)
class Assessment:
    """The insurer's findings: the assessed loss (at most the amount claimed), the exclusions it
    found to apply, and whether the worker was at fault (None: as filed)."""

    assessed_fen: int
    exclusions: frozenset[Exclusion] = frozenset()
    worker_at_fault: bool | None = None


@dataclass(frozen=True)
class Standing:
    """What a claim is judged against: the cover (None: no policy lists the worker), its
    product's terms and exclusions, and how much of the limit earlier approved or paid claims of
    the same policy, worker and kind have used."""

    cover: Cover | None
    terms: Mapping[CoverKind, CoverTerms]
    exclusions: frozenset[Exclusion]
    used_fen: int = 0


@dataclass(frozen=True)
class Adjudication:
    """The decision, what will be paid and every reason, in words."""

    decision: Decision
    assessed_fen: int
    exclusions: frozenset[Exclusion]
    payable_fen: int
    reasons: tuple[str, ...]
    at: datetime
    request_id: uuid.UUID


@dataclass(frozen=True)
class Contest:
    """The company's contest of a denial (申诉), which the complaints workflow takes up."""

    reason: str
    at: datetime
    request_id: uuid.UUID


@dataclass(frozen=True)
class Claim:
    """A claim on the cover of an order's worker. ``policy_id``, ``product_id`` and ``insurer``
    name the cover it was filed against (empty when none); ``case_id`` the complaints case it
    came from; ``defect`` what made an automatic claim unfit (its order or check-in unknown),
    for which adjudication denies it."""

    claim_id: uuid.UUID
    filing: ClaimFiling
    worker_id: str
    company_id: str
    service_type: ServiceType | None
    policy_id: uuid.UUID | None
    product_id: str
    insurer: str
    filed_by: str
    report_time: datetime
    filed_at: datetime
    state: ClaimState = ClaimState.FILED
    case_id: str = ""
    worker_at_fault: bool = False
    defect: str = ""
    adjudication: Adjudication | None = None
    paid_at: datetime | None = None
    payment_request: uuid.UUID | None = None
    contest: Contest | None = None

    @property
    def name(self) -> str:
        return f"claims/{self.claim_id}"

    @property
    def late_report(self) -> bool:
        """Reported more than 48 hours after the incident: accepted, and flagged."""
        incident = self.filing.incident_time
        return incident is not None and self.report_time - incident > LATE_REPORT

    @property
    def payable_fen(self) -> int:
        return self.adjudication.payable_fen if self.adjudication else 0

    def require(self, *states: ClaimState, doing: str) -> None:
        if self.state not in states:
            raise FailedPrecondition(f"cannot {doing} a claim that is {self.state}")


# -- which cover a claim is judged against ---------------------------------------------------


def _days_outside(cover: Cover, day: date) -> int:
    if day < cover.insured.start:
        return (cover.insured.start - day).days
    return max(0, (day - cover.insured.end).days)


def cover_for(
    covers: Iterable[Cover], service_type: ServiceType | None, day: date, policy_id: uuid.UUID | None = None
) -> Cover | None:
    """The cover a claim on ``day`` is judged against: one insuring the service that day (on the
    order's recorded policy first), else the worker's cover nearest that day, so that a denial
    can say when it began or ended; None when no policy lists the worker."""
    every = list(covers)
    if service_type is not None:
        for pool in ([c for c in every if c.insured.policy_id == policy_id], every):
            found = find_cover(pool, service_type, day)
            if isinstance(found, Cover):
                return found
    nearest = sorted(every, key=lambda c: (_days_outside(c, day), c.policy_expired, str(c.insured.policy_id)))
    return nearest[0] if nearest else None


# -- filing ----------------------------------------------------------------------------------


def _validate(filing: ClaimFiling) -> None:
    if filing.claimed_fen <= 0:
        raise InvalidArgument("claimed_fen", "must be more than zero")
    if not filing.description.strip():
        raise InvalidArgument("description", "is required")


def _named(cover: Cover | None) -> tuple[uuid.UUID | None, str, str]:
    """The policy, product and insurer a claim is filed against."""
    if cover is None:
        return None, "", ""
    return cover.insured.policy_id, cover.product_id, cover.insurer


def file_claim(
    claim_id: uuid.UUID, filing: ClaimFiling, order: Order, cover: Cover | None, filed_by: str, now: datetime
) -> Claim:
    """A claim filed through the API, reported now: the order must have a check-in and the
    incident must lie inside its service window."""
    _validate(filing)
    window = order.window
    if window is None:
        raise FailedPrecondition(f"{order.name} has no check-in: nothing happened under cover yet")
    incident = filing.incident_time
    if incident is None or not order.within_window(incident) or incident > now:
        start, end = window
        raise InvalidArgument(
            "incident_time", f"must lie inside the service window {start.isoformat()} to {end.isoformat()}"
        )
    policy_id, product_id, insurer = _named(cover)
    return Claim(
        claim_id=claim_id,
        filing=filing,
        worker_id=order.worker_id,
        company_id=order.company_id,
        service_type=order.service_type,
        policy_id=policy_id,
        product_id=product_id,
        insurer=insurer,
        filed_by=filed_by,
        report_time=now,
        filed_at=now,
    )


def file_from_award(
    claim_id: uuid.UUID, award: CompensationAward, order: Order | None, cover: Cover | None, now: datetime
) -> Claim:
    """The automatic professional-liability claim for a complaint's compensation: the incident is
    the order's check-in, the report the complaint's filing. An unknown order or check-in does not
    stop it: the claim is filed with that defect, for which adjudication denies it."""
    check_in = order.check_in if order else None
    defect = (
        "" if check_in else f"orders/{award.order_id} " + ("has no check-in" if order else "is not known")
    )
    filing = ClaimFiling(
        order_id=award.order_id,
        kind=CoverKind.PROFESSIONAL_LIABILITY,
        incident_time=check_in,
        claimed_fen=award.compensation_fen,
        description=f"compensation awarded by complaint case {award.case_id}",
    )
    policy_id, product_id, insurer = _named(cover)
    return Claim(
        claim_id=claim_id,
        filing=filing,
        worker_id=award.worker_id or (order.worker_id if order else ""),
        company_id=award.company_id or (order.company_id if order else ""),
        service_type=order.service_type if order else None,
        policy_id=policy_id,
        product_id=product_id,
        insurer=insurer,
        filed_by=f"cases/{award.case_id}",
        report_time=award.file_time,
        filed_at=now,
        case_id=award.case_id,
        worker_at_fault=award.worker_at_fault,
        defect=defect,
    )


# -- adjudication (核赔) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    payable_fen: int
    reasons: tuple[str, ...]


def _denied(*reasons: str) -> Verdict:
    return Verdict(Decision.DENIED, 0, reasons)


def _cover_denial(claim: Claim, cover: Cover | None) -> str | None:
    """Rules 1 and 2 (and a defect before them): why the cover does not answer for the incident."""
    if claim.defect:
        return claim.defect
    incident = claim.filing.incident_time
    if cover is None or incident is None or claim.service_type is None:
        return "no cover"
    day = beijing_day(incident)
    if day < cover.insured.start:
        return f"cover not yet effective on {day} (starts {cover.insured.start})"
    if day > cover.insured.end:
        return f"cover ended on {cover.insured.end}"
    # The dates hold: what else may keep this cover from the service is its types and job class
    # (a policy that expired since covered the incident's day all the same).
    why = dataclasses.replace(cover, policy_expired=False).why_not(claim.service_type, day)
    return None if why is None else f"no cover: {why}"


def _payable(claim: Claim, assessed_fen: int, terms: CoverTerms, used_fen: int) -> Verdict:
    """Rules 5 and 6: the deductible, then the remaining limit; each adjustment in words."""
    if assessed_fen <= terms.deductible_fen:
        return _denied(
            f"within the deductible: assessed {yuan(assessed_fen)}, deductible {yuan(terms.deductible_fen)}"
        )
    reasons = [f"deductible {yuan(terms.deductible_fen)} taken"]
    partly = assessed_fen < claim.filing.claimed_fen
    if partly:
        reasons.append(f"assessed {yuan(assessed_fen)} of the {yuan(claim.filing.claimed_fen)} claimed")
    payable = assessed_fen - terms.deductible_fen
    remaining = max(0, terms.limit_fen - used_fen)
    if payable > remaining:
        if remaining == 0:
            return _denied(f"limit {yuan(terms.limit_fen)} used up by earlier claims")
        reasons.append(
            f"capped at the remaining limit {yuan(remaining)} of {yuan(terms.limit_fen)}"
            f" ({yuan(used_fen)} used by earlier claims)"
        )
        payable, partly = remaining, True
    return Verdict(Decision.PARTLY_APPROVED if partly else Decision.APPROVED, payable, tuple(reasons))


def decide(claim: Claim, assessment: Assessment, standing: Standing) -> Verdict:
    """The decision from the rules of docs/insurance.md, in their order."""
    denial = _cover_denial(claim, standing.cover)
    if denial is not None:
        return _denied(denial)
    kind = claim.filing.kind
    terms = standing.terms.get(kind)
    if terms is None:
        return _denied(
            f"product {standing.cover and standing.cover.product_id} does not offer {kind.name.lower()}"
        )
    excluded = sorted(assessment.exclusions & standing.exclusions)
    if excluded:
        return _denied(*(f"excluded: {e.name.lower()}" for e in excluded))
    return _payable(claim, assessment.assessed_fen, terms, standing.used_fen)


def adjudicate(
    claim: Claim, assessment: Assessment, standing: Standing, request_id: uuid.UUID, now: datetime
) -> Claim:
    """The insurer's decision on a filed claim (once): approved and partly approved claims await
    payment, denied ones may be contested."""
    if claim.adjudication is not None and claim.adjudication.request_id == request_id:
        return claim
    claim.require(ClaimState.FILED, doing="adjudicate")
    if not 0 <= assessment.assessed_fen <= claim.filing.claimed_fen:
        limits = f"must be from 0 to the {claim.filing.claimed_fen} fen claimed"
        raise InvalidArgument("assessed_fen", limits)
    verdict = decide(claim, assessment, standing)
    denied = verdict.decision is Decision.DENIED
    return dataclasses.replace(
        claim,
        state=ClaimState.DENIED if denied else ClaimState.ADJUDICATED,
        worker_at_fault=claim.worker_at_fault
        if assessment.worker_at_fault is None
        else assessment.worker_at_fault,
        adjudication=Adjudication(
            verdict.decision,
            assessment.assessed_fen,
            assessment.exclusions,
            verdict.payable_fen,
            verdict.reasons,
            now,
            request_id,
        ),
    )


def pay(claim: Claim, request_id: uuid.UUID, now: datetime) -> Claim:
    """The payout of an approved or partly approved claim, once."""
    if claim.payment_request == request_id:
        return claim
    claim.require(ClaimState.ADJUDICATED, doing="pay")
    return dataclasses.replace(claim, state=ClaimState.PAID, paid_at=now, payment_request=request_id)


def contest(claim: Claim, reason: str, request_id: uuid.UUID, now: datetime) -> Claim:
    """The company contests a denial, once."""
    if claim.contest is not None and claim.contest.request_id == request_id:
        return claim
    claim.require(ClaimState.DENIED, doing="contest")
    if not reason.strip():
        raise InvalidArgument("reason", "is required")
    return dataclasses.replace(claim, state=ClaimState.CONTESTED, contest=Contest(reason, now, request_id))
