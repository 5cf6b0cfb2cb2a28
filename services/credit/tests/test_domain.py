"""Credit ledger rules."""

from __future__ import annotations

from datetime import UTC, datetime

from services.credit.domain import RULE_VERSION, LedgerEntry, order_booked

WHEN = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_order_booked_records_activity_without_moving_the_score() -> None:
    entry = order_booked(
        worker_id="w-42",
        order_id="0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c",
        event_id="evt-1",
        event_type="jiazheng.orders.events.v1.OrderCreated",
        trace_id=TRACE_ID,
        occurred_at=WHEN,
    )

    assert entry == LedgerEntry(
        worker_id="w-42",
        event_id="evt-1",
        event_type="jiazheng.orders.events.v1.OrderCreated",
        score_delta=0,
        reason="booked for order 0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c",
        rule_version=RULE_VERSION,
        trace_id=TRACE_ID,
        occurred_at=WHEN,
    )
    assert entry.rule_version == RULE_VERSION


def test_order_booked_names_the_order_in_its_reason() -> None:
    a = order_booked("w", "order-a", "e1", "t", "", WHEN)
    b = order_booked("w", "order-b", "e2", "t", "", WHEN)

    assert "order-a" in a.reason
    assert "order-b" in b.reason
    assert a.reason != b.reason
    assert a.score_delta == b.score_delta == 0
