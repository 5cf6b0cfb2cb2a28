"""trace_id_of: the trace id the credit ledger records."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from libs.common.telemetry import current_traceparent, trace_id_of

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_valid_traceparent_gives_its_trace_id() -> None:
    assert trace_id_of(f"00-{TRACE_ID}-00f067aa0ba902b7-01") == TRACE_ID


def test_unsampled_traceparent_gives_its_trace_id() -> None:
    assert trace_id_of(f"00-{TRACE_ID}-00f067aa0ba902b7-00") == TRACE_ID


@pytest.mark.parametrize(
    "traceparent",
    [
        None,
        "",
        "garbage",
        "00-abc-def-01",
        f"00-{TRACE_ID}-00f067aa0ba902b7",  # no flags
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",
        f"00-{TRACE_ID}0-00f067aa0ba902b7-01",  # 33 characters
        f"00-{TRACE_ID[:-1]}-00f067aa0ba902b7-01",  # 31 characters
    ],
)
def test_absent_or_malformed_traceparent_gives_empty(traceparent: str | None) -> None:
    assert trace_id_of(traceparent) == ""


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-00f067aa0ba902b7-01",  # 32 characters, not hex
        "00-<script>alert(1)</script>xxxxxxx-00f067aa0ba902b7-01",  # 32 characters, not hex
    ],
)
def test_non_hex_trace_id_is_malformed(traceparent: str) -> None:
    # The docstring promises "the 32-hex trace id ... or '' when absent or malformed"; the
    # traceparent comes from a Kafka header any producer can set and ends up in the ledger.
    assert len(traceparent.split("-")[1]) == 32
    assert trace_id_of(traceparent) == ""


def test_trace_id_of_current_traceparent_matches_the_active_span() -> None:
    span_context = SpanContext(
        trace_id=int(TRACE_ID, 16), span_id=0x1, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )

    with trace.use_span(NonRecordingSpan(span_context)):
        traceparent = current_traceparent()

    assert trace_id_of(traceparent) == TRACE_ID
