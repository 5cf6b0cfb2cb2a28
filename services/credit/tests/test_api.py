"""Protobuf mapping of the CreditService API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from jiazheng.credit.v1 import credit_pb2
from services.credit.api import entry_to_proto
from services.credit.domain import RULE_VERSION, LedgerEntry, order_booked
from services.credit.queries import RecordedEntry

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
