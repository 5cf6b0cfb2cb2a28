"""Credit domain: the ledger is the source of truth; every entry names the event that caused it.

Pure rules, no I/O. Scores are a versioned function of the ledger (RULE_VERSION), so a record
can be explained line by line and rebuilt by replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

RULE_VERSION = "2024.1"


@dataclass(frozen=True)
class LedgerEntry:
    """One line of a worker's credit record (信用记录)."""

    worker_id: str
    event_id: str
    event_type: str
    score_delta: int
    reason: str
    rule_version: str
    trace_id: str
    occurred_at: datetime


def order_booked(
    worker_id: str, order_id: str, event_id: str, event_type: str, trace_id: str, occurred_at: datetime
) -> LedgerEntry:
    """A booking is recorded as activity; it moves no score (completion and ratings will)."""
    return LedgerEntry(
        worker_id=worker_id,
        event_id=event_id,
        event_type=event_type,
        score_delta=0,
        reason=f"booked for order {order_id}",
        rule_version=RULE_VERSION,
        trace_id=trace_id,
        occurred_at=occurred_at,
    )
