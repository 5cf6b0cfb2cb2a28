"""One event's changes held apart and written at once (domain/indicators.py, ``EventChanges``),
and why applying them again after a partial write completes it and counts nothing twice."""

from __future__ import annotations

from datetime import datetime

from jiazheng.complaints.events.v1 import events_pb2 as complaints
from jiazheng.orders.events.v1 import events_pb2 as orders
from jiazheng.type.v1 import service_type_pb2 as st
from libs.common.protoutil import timestamp
from services.regulator.domain.indicators import (
    EventChanges,
    RegulatorEvent,
    district_day,
    observe,
)
from services.regulator.tests.indicator_events import DAY, GRACE, NOW, MemoryStore, at, event

CHAOYANG = "110105"


def _day(store: MemoryStore) -> MemoryStore:
    """Orders, a dispatch and complaints of one day in Chaoyang, counted straight into ``store``."""
    for e in _events():
        observe(e, store, NOW, GRACE)
    return store


def _events() -> list[RegulatorEvent]:
    """The same events, ids included, at every call."""
    created = orders.OrderCreated(
        order_id="o-1", district_code=CHAOYANG, service_type=st.SERVICE_TYPE_ELDERLY_CARE
    )
    assigned = orders.OrderAssigned(order_id="o-1", worker_id="w-1", district_code=CHAOYANG)
    moments = [at(9), at(9.5), at(10), at(11)]
    messages = [created, assigned] + [
        complaints.CaseFiled(case_id=f"c-{n}", district_code=CHAOYANG, file_time=timestamp(moments[2 + n]))
        for n in range(2)
    ]
    return [event(m, moment, f"e-{n}") for n, (m, moment) in enumerate(zip(messages, moments, strict=True))]


def _changes(store: MemoryStore, e: RegulatorEvent, now: datetime = NOW) -> EventChanges:
    changes = EventChanges(store)
    observe(e, changes, now, GRACE)
    return changes


def _nothing(changes: EventChanges) -> bool:
    return not (changes.counted_ids or changes.days or changes.records)


def test_an_events_changes_reach_the_store_only_when_applied_and_then_as_if_counted_straight() -> None:
    store, straight = MemoryStore(), _day(MemoryStore())
    for e in _events():
        changes = _changes(store, e)
        assert store.counted(e.id) is False
        assert changes.counted(e.id) is True
        changes.apply()

    assert (store.ids, store.days, store.records) == (straight.ids, straight.days, straight.records)


def test_reads_see_the_events_own_changes_before_the_store_underneath() -> None:
    store = _day(MemoryStore())
    changes = _changes(store, event(complaints.CaseFiled(case_id="c-9", district_code=CHAOYANG), at(15)))

    assert district_day(changes, CHAOYANG, DAY).complaints_filed == 3
    assert district_day(store, CHAOYANG, DAY).complaints_filed == 2


def test_a_crash_after_some_of_an_events_changes_were_written_is_repaired_by_applying_all_again() -> None:
    """The day's count landed and the case and the counted id did not: applying the changes
    again (twice, even) gives exactly what one whole application gives, and the event
    delivered once more counts nothing."""
    filed = event(complaints.CaseFiled(case_id="c-9", district_code=CHAOYANG), at(15), "e-9")
    whole, crashed = _day(MemoryStore()), _day(MemoryStore())
    _changes(whole, filed).apply()
    changes = _changes(crashed, filed)
    for (district, day), facts in changes.days.items():
        crashed.put_day(district, day, facts)

    changes.apply()
    changes.apply()

    assert (crashed.ids, crashed.days, crashed.records) == (whole.ids, whole.days, whole.records)
    assert district_day(crashed, CHAOYANG, DAY).complaints_filed == 3
    assert _nothing(_changes(crashed, filed))


def test_an_event_no_rule_reads_changes_nothing() -> None:
    store = _day(MemoryStore())
    unknown = RegulatorEvent(id="x", type="jiazheng.nowhere.v1.Unknown", time=at(12), data={})

    assert _nothing(_changes(store, unknown))
