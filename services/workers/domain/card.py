"""The electronic home-visit service card (居家上门服务证) and its status colour.

The colour follows the Zhejiang 安心码 rule adopted in DOMAIN §4: GREEN when identity and
background check passed and health check and insurance are valid; YELLOW when identity passed but
the health check or insurance is missing or expired (or the background check is still pending);
RED when identity or the background check failed, the card is revoked or the worker is suspended
(credit level D counts as suspended). Only GREEN workers are dispatched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from services.workers.domain.qualifications import BackgroundCheck, HealthCheck


class CardColour(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class Reason(StrEnum):
    """Why a card is not GREEN, in terms a consumer at the door can be told."""

    BACKGROUND_CHECK_PENDING = "background_check_pending"
    BACKGROUND_CHECK_FAILED = "background_check_failed"
    IDENTITY_NOT_GENUINE = "identity_not_genuine"
    HEALTH_CHECK_MISSING = "health_check_missing"
    HEALTH_CHECK_EXPIRED = "health_check_expired"
    INSURANCE_MISSING = "insurance_missing"
    INSURANCE_EXPIRED = "insurance_expired"
    CARD_REVOKED = "card_revoked"
    SUSPENDED = "suspended"
    CREDIT_LEVEL_D = "credit_level_d"


_RED = frozenset(
    {
        Reason.BACKGROUND_CHECK_FAILED,
        Reason.IDENTITY_NOT_GENUINE,
        Reason.CARD_REVOKED,
        Reason.SUSPENDED,
        Reason.CREDIT_LEVEL_D,
    }
)


@dataclass(frozen=True)
class CardStatusInputs:
    """Everything the colour depends on, as the workers service knows it."""

    background_check: BackgroundCheck | None
    health_checks: tuple[HealthCheck, ...]
    insured_until: date | None  # from insurance coverage events; None: never covered
    revoked: bool = False
    suspended: bool = False
    credit_level: str | None = None


def card_status(inputs: CardStatusInputs, today: date) -> tuple[CardColour, tuple[Reason, ...]]:
    """The card's colour on ``today`` and every reason it is not GREEN (RED reasons first)."""
    reasons = [*_red_reasons(inputs), *_yellow_reasons(inputs, today)]
    if any(r in _RED for r in reasons):
        return CardColour.RED, tuple(reasons)
    return (CardColour.YELLOW if reasons else CardColour.GREEN), tuple(reasons)


def _red_reasons(inputs: CardStatusInputs) -> list[Reason]:
    reasons = []
    check = inputs.background_check
    if check is not None and not check.identity_genuine:
        reasons.append(Reason.IDENTITY_NOT_GENUINE)
    if check is not None and check.identity_genuine and not check.passed:
        reasons.append(Reason.BACKGROUND_CHECK_FAILED)
    if inputs.revoked:
        reasons.append(Reason.CARD_REVOKED)
    if inputs.suspended:
        reasons.append(Reason.SUSPENDED)
    if inputs.credit_level == "D":
        reasons.append(Reason.CREDIT_LEVEL_D)
    return reasons


def _yellow_reasons(inputs: CardStatusInputs, today: date) -> list[Reason]:
    reasons = []
    if inputs.background_check is None:
        reasons.append(Reason.BACKGROUND_CHECK_PENDING)
    if not inputs.health_checks:
        reasons.append(Reason.HEALTH_CHECK_MISSING)
    elif not any(h.valid_on(today) for h in inputs.health_checks):
        reasons.append(Reason.HEALTH_CHECK_EXPIRED)
    if inputs.insured_until is None:
        reasons.append(Reason.INSURANCE_MISSING)
    elif inputs.insured_until < today:
        reasons.append(Reason.INSURANCE_EXPIRED)
    return reasons


def next_lapse(inputs: CardStatusInputs, today: date) -> date | None:
    """The first day after ``today`` on which the health check or the insurance valid today has
    lapsed: the colour changes then with no event, so a timer re-evaluates it."""
    valid_health = [h.valid_until for h in inputs.health_checks if h.valid_on(today)]
    ends = [max(valid_health)] if valid_health else []
    if inputs.insured_until is not None and inputs.insured_until >= today:
        ends.append(inputs.insured_until)
    return date.fromordinal(min(ends).toordinal() + 1) if ends else None
