"""The indicators' faust side without Kafka: Beijing days in faust's epoch-aligned windows, the
records of the indicators topic, and regulator records read back."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from faust.windows import TumblingWindow
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as s

from jiazheng.complaints.events.v1 import events_pb2 as complaints
from jiazheng.regulator.v1 import regulator_pb2 as pb
from libs.common.beijing import BEIJING, beijing_day, beijing_midnight
from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope
from libs.common.protoutil import timestamp
from services.regulator.domain.indicators import DistrictDay, LevelCount, RegulatorEvent, SkillLevelCount
from services.regulator.indicators import counted, indicators_record, regulator_event, window_time
from services.regulator.tests.indicator_events import DAY, GRACE, NOW, MemoryStore, at, event

DAY_WINDOW = TumblingWindow(timedelta(days=1).total_seconds())
FIGURES = DistrictDay(
    district_code="110105",
    date="2026-11-29",
    orders_placed=3,
    complaints_filed=1,
    complaints_per_thousand_orders=333.3333333333333,
    median_resolution_seconds=10_800,
    credit_levels=(LevelCount("A", 2), LevelCount("B", 0), LevelCount("C", 1), LevelCount("D", 0)),
    certified_workers=(
        SkillLevelCount(5, 1),
        SkillLevelCount(4, 0),
        SkillLevelCount(3, 0),
        SkillLevelCount(2, 0),
    ),
)


@given(s.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=s.just(BEIJING)))
def test_a_beijing_moment_shifted_eight_hours_is_in_its_beijing_days_window(
    moment: datetime,
) -> None:
    shifted = moment.timestamp() + timedelta(hours=8).total_seconds()

    assert DAY_WINDOW.current(shifted) == DAY_WINDOW.current(window_time(beijing_day(moment)))


def test_a_beijing_day_has_its_own_window_from_midnight_to_midnight() -> None:
    day = date(2026, 11, 29)
    start, end = DAY_WINDOW.current(window_time(day))

    assert start == datetime(2026, 11, 29, tzinfo=UTC).timestamp()
    assert end - start < timedelta(days=1).total_seconds()
    assert DAY_WINDOW.current(window_time(day + timedelta(days=1)))[0] > end
    assert beijing_midnight(day).timestamp() + timedelta(hours=8).total_seconds() == start


def test_the_indicators_record_is_the_contracts_district_day_in_json_keyed_by_district_and_date() -> None:
    record = indicators_record(FIGURES, datetime(2026, 11, 30, tzinfo=UTC))

    message = json_format.Parse(record.data, pb.DistrictDay())
    assert (message.district_code, message.date, message.orders_placed) == ("110105", "2026-11-29", 3)
    assert (message.credit_levels[0].level, message.credit_levels[0].workers) == ("A", 2)
    assert "ordersPlaced" in json.loads(record.data)
    assert record.key == b"110105/2026-11-29"
    assert dict(record.headers())["content-type"] == "application/json"
    assert record.type == "jiazheng.regulator.v1.DistrictDay"


def test_the_same_figures_have_the_same_id_and_changed_figures_another() -> None:
    later = datetime(2026, 12, 1, tzinfo=UTC)
    first = indicators_record(FIGURES, datetime(2026, 11, 30, tzinfo=UTC))

    again = indicators_record(FIGURES, later)
    changed = indicators_record(DistrictDay(**{**FIGURES.to_json(), "orders_placed": 4}), later)

    assert first.id == again.id != changed.id


def _envelope(data: bytes) -> EventEnvelope:
    moment = datetime(2026, 11, 29, 1, tzinfo=UTC)
    return EventEnvelope(
        "e-1", "jiazheng.orders.events.v1.OrderCreated", "/jiazheng/regulator", "orders/o-1", moment, data
    )


def test_a_regulator_record_is_read_with_its_id_type_time_and_json_data() -> None:
    event = regulator_event(_envelope(b'{"districtCode": "110105"}'))

    assert (event.id, event.text("district_code")) == ("e-1", "110105")
    assert event.time == datetime(2026, 11, 29, 1, tzinfo=UTC)


@pytest.mark.parametrize("data", [b"[1, 2]", b"not json", b'"text"'])
def test_a_payload_that_is_not_a_json_object_is_refused(data: bytes) -> None:
    with pytest.raises((ValueError, PermanentEventError)):
        regulator_event(_envelope(data))


def test_a_payload_the_rules_cannot_read_is_not_counted_and_stops_nothing() -> None:
    """A CaseResolved with an empty filing time (a poison message) is logged and skipped; the
    next event is counted as usual."""
    store = MemoryStore()
    resolved = event(complaints.CaseResolved(case_id="k-1", time=timestamp(at(11))), at(11))
    malformed = RegulatorEvent(resolved.id, resolved.type, resolved.time, {**resolved.data, "fileTime": ""})
    assert counted(malformed, store, NOW, GRACE) == set()
    filed = complaints.CaseFiled(case_id="k-2", district_code="110105", file_time=timestamp(at(8)))
    assert counted(event(filed, at(8)), store, NOW, GRACE) == {("110105", DAY)}
