"""Credit domain: the ledger is the source of truth; every entry names the event that caused it.

Pure rules, no I/O. An entry records a fact (what happened: its kind, magnitude and detail, free
of any model); scores are a versioned function of the facts (services/credit/model), so a record
is explained line by line and rebuilt by replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.credit.model import MODEL_VERSION, Fact, FactKind

RULE_VERSION = MODEL_VERSION  # the model in force when an entry was recorded


@dataclass(frozen=True)
class LedgerEntry:
    """One line of a worker's credit record (信用记录). ``score_delta`` is kept for the record
    format of before; the points a fact gives come from the model at evaluation time."""

    worker_id: str
    event_id: str
    event_type: str
    score_delta: int
    reason: str
    rule_version: str
    trace_id: str
    occurred_at: datetime
    kind: FactKind = FactKind.UNSCORED
    magnitude: int = 1
    detail: str = ""

    def fact(self) -> Fact:
        return Fact(
            self.event_id,
            self.worker_id,
            self.kind,
            self.occurred_at,
            self.magnitude,
            self.detail,
            self.event_type,
        )


def recorded(
    worker_id: str,
    kind: FactKind,
    reason: str,
    source: tuple[str, str, str, datetime],
    magnitude: int = 1,
    detail: str = "",
) -> LedgerEntry:
    """An entry for a fact; ``source`` is the event's (id, type, trace id, time)."""
    event_id, event_type, trace_id, occurred_at = source
    return LedgerEntry(
        worker_id,
        event_id,
        event_type,
        0,
        reason,
        RULE_VERSION,
        trace_id,
        occurred_at,
        kind,
        magnitude,
        detail,
    )


def order_booked(
    worker_id: str, order_id: str, event_id: str, event_type: str, trace_id: str, occurred_at: datetime
) -> LedgerEntry:
    """A booking is recorded as activity; it moves no score (completion and ratings do)."""
    source = (event_id, event_type, trace_id, occurred_at)
    return recorded(worker_id, FactKind.UNSCORED, f"booked for order {order_id}", source)
