"""Orders domain rules: booking window and request fingerprints."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from libs.common.errors import InvalidArgument
from services.orders.domain import DEFAULT_CATALOGUE, OrderDraft, OrderState, ServiceType, create_order

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _draft(**changes: Any) -> OrderDraft:
    draft = OrderDraft(
        service_type=ServiceType.MATERNITY,
        district_code="110105",
        consumer_ref="c-123",
        worker_id="w-42",
        scheduled_start=NOW + timedelta(days=3),
        duration_hours=26 * 24,
    )
    return dataclasses.replace(draft, **changes)


def test_valid_draft_creates_an_order_in_created_state() -> None:
    draft = _draft()

    order = create_order(draft, "p-meituan", NOW, DEFAULT_CATALOGUE)

    assert order.state is OrderState.CREATED
    assert order.platform_id == "p-meituan"
    assert order.draft == draft
    assert order.created_at == NOW
    assert isinstance(order.order_id, uuid.UUID)
    assert order.order_id.version == 4


def test_each_order_gets_its_own_id() -> None:
    draft = _draft()

    assert (
        create_order(draft, "p", NOW, DEFAULT_CATALOGUE).order_id
        != create_order(draft, "p", NOW, DEFAULT_CATALOGUE).order_id
    )


@pytest.mark.parametrize(
    "start",
    [
        NOW - timedelta(hours=1),  # tolerance boundary, inclusive
        NOW - timedelta(minutes=59),
        NOW,
        NOW + timedelta(hours=2),
        NOW + timedelta(days=365),
        NOW + timedelta(days=366),  # booking window boundary, inclusive
    ],
)
def test_start_inside_the_booking_window_is_accepted(start: datetime) -> None:
    order = create_order(_draft(scheduled_start=start), "p", NOW, DEFAULT_CATALOGUE)

    assert order.draft.scheduled_start == start


@pytest.mark.parametrize(
    "start",
    [
        NOW - timedelta(hours=1, microseconds=1),
        NOW - timedelta(hours=2),
        NOW - timedelta(days=30),
    ],
)
def test_start_more_than_an_hour_in_the_past_is_rejected(start: datetime) -> None:
    with pytest.raises(InvalidArgument) as caught:
        create_order(_draft(scheduled_start=start), "p", NOW, DEFAULT_CATALOGUE)

    assert caught.value.field == "order.scheduled_start_time"
    assert "past" in caught.value.description


@pytest.mark.parametrize(
    "start",
    [
        NOW + timedelta(days=366, microseconds=1),
        NOW + timedelta(days=400),
        NOW + timedelta(days=3 * 365),
    ],
)
def test_start_more_than_a_year_ahead_is_rejected(start: datetime) -> None:
    with pytest.raises(InvalidArgument) as caught:
        create_order(_draft(scheduled_start=start), "p", NOW, DEFAULT_CATALOGUE)

    assert caught.value.field == "order.scheduled_start_time"
    assert "366 days" in caught.value.description


def test_booking_window_compares_instants_across_time_zones() -> None:
    beijing = timezone(timedelta(hours=8))

    # 19:30 in Beijing is 11:30 UTC, half an hour before NOW: accepted.
    assert create_order(
        _draft(scheduled_start=datetime(2024, 6, 1, 19, 30, tzinfo=beijing)), "p", NOW, DEFAULT_CATALOGUE
    )
    # 18:00 in Beijing is 10:00 UTC, two hours before NOW, though its wall clock is later: rejected.
    with pytest.raises(InvalidArgument):
        create_order(
            _draft(scheduled_start=datetime(2024, 6, 1, 18, 0, tzinfo=beijing)), "p", NOW, DEFAULT_CATALOGUE
        )


def test_equal_drafts_have_equal_fingerprints() -> None:
    assert _draft().fingerprint() == _draft().fingerprint()


def test_fingerprint_is_sha256_hex() -> None:
    fingerprint = _draft().fingerprint()

    assert len(fingerprint) == 64
    assert int(fingerprint, 16) >= 0


@pytest.mark.parametrize(
    "changes",
    [
        {"service_type": ServiceType.INFANT_CARE},
        {"district_code": "110108"},
        {"consumer_ref": "c-124"},
        {"worker_id": "w-43"},
        {"worker_id": None},
        {"scheduled_start": NOW + timedelta(days=3, seconds=1)},
        {"scheduled_start": NOW + timedelta(days=3, microseconds=1)},
        {"duration_hours": 26 * 24 + 1},
    ],
)
def test_changing_any_field_changes_the_fingerprint(changes: dict[str, Any]) -> None:
    assert _draft(**changes).fingerprint() != _draft().fingerprint()


def test_fingerprints_of_all_service_types_are_distinct() -> None:
    fingerprints = {_draft(service_type=t).fingerprint() for t in ServiceType}

    assert len(fingerprints) == len(ServiceType)
