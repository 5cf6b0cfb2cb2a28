"""Credit facts (信用事实): what the ledger records about a worker, free of any scoring model.

A fact says what happened and when, with one number (its magnitude) and, for complaints, how
far the complaint was substantiated. Models (``v1`` ...) turn the same facts into points; a new
model version rescores the same ledger without rewriting it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum

from libs.common.errors import InvalidArgument


class FactKind(StrEnum):
    """What a fact records, and what its magnitude counts."""

    ORDER_COMPLETED = "order_completed"  # magnitude 1
    RATING = "rating"  # the consumer's stars, 1..5
    NO_SHOW = "no_show"  # the worker at fault; magnitude 1
    COMPLAINT_UPHELD = "complaint_upheld"  # severity 1 minor, 2 major, 3 severe; detail: how substantiated
    AGREEMENT_BREACHED = "agreement_breached"  # the worker (or their company) broke a mediation agreement
    SUSPENSION_REQUESTED = "suspension_requested"  # kept and shown; the complaint behind it is what scores
    TRAINING_COMPLETED = "training_completed"  # hours of a course whose exam was passed
    CERTIFICATE_GRANTED = "certificate_granted"  # skill level 1 (五级) .. 4 (二级)
    BACKGROUND_FLAGGED = "background_flagged"  # the number of flags a background check raised
    CLAIM_PAID_AT_FAULT = "claim_paid_at_fault"  # fen an insurer paid for damage the worker caused
    AWARD = "award"  # operators: awards, skills-competition results; rank tier 1..3
    UNSCORED = "unscored"  # an event of a type no model knows yet: kept, scores nothing


class Substantiation(StrEnum):
    """How far mediation or an operator found an upheld complaint true (属实 / 部分属实)."""

    SUBSTANTIATED = "substantiated"
    PARTLY_SUBSTANTIATED = "partly_substantiated"


# The magnitudes a fact of each kind may carry, both ends included; other kinds: any count >= 0.
MAGNITUDE_RANGES: Mapping[FactKind, tuple[int, int]] = {
    FactKind.RATING: (1, 5),
    FactKind.COMPLAINT_UPHELD: (1, 3),
    FactKind.CERTIFICATE_GRANTED: (1, 4),
    FactKind.AWARD: (1, 3),
}


@dataclass(frozen=True, slots=True)
class Fact:
    """One entry of a worker's credit ledger (信用记录): an event that happened to their record.

    ``fact_id`` is stable (the source event's id, or the operator entry's); ``source`` names the
    source event's type, or "operator".
    """

    fact_id: str
    worker_id: str
    kind: FactKind
    occurred_at: datetime
    magnitude: int = 1
    detail: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise InvalidArgument("occurred_at", "must carry a time zone")
        low, high = MAGNITUDE_RANGES.get(self.kind, (0, sys.maxsize))
        if not low <= self.magnitude <= high:
            raise InvalidArgument("magnitude", f"{self.magnitude} is out of range for {self.kind}")
        if self.kind is FactKind.COMPLAINT_UPHELD and self.detail not in set(Substantiation):
            raise InvalidArgument("detail", f"an upheld complaint is {' or '.join(Substantiation)}")

    @classmethod
    def from_ledger(
        cls,
        fact_id: str,
        worker_id: str,
        kind: FactKind,
        occurred_at: datetime,
        magnitude: int,
        detail: str,
        source: str,
    ) -> Fact:
        """A fact read back from the ledger, not checked again: every fact the ledger holds was
        built, and so checked, in the transaction that wrote it (live scoring reads it back there).
        For reading the ledger in bulk (the rebuild); a fact from anywhere else is made with ``Fact``.
        """
        fact = object.__new__(cls)
        _set_fact_id(fact, fact_id)
        _set_worker_id(fact, worker_id)
        _set_kind(fact, kind)
        _set_occurred_at(fact, occurred_at)
        _set_magnitude(fact, magnitude)
        _set_detail(fact, detail)
        _set_source(fact, source)
        return fact


# Each slot's own setter: the way in past the frozen ``__setattr__`` (the dataclass's ``__init__`` goes
# through ``object.__setattr__``); unpacking them fails at import if a field is added and not here.
_set_fact_id, _set_worker_id, _set_kind, _set_occurred_at, _set_magnitude, _set_detail, _set_source = (
    Fact.__dict__[field.name].__set__ for field in fields(Fact)
)
