"""The indicators write a batch's changes as one (indicators.py, ``Batch``, ``TableStore``;
versioned.py): whichever of a batch's writes land before a crash, the batch delivered again to
the restarted process gives exactly the figures and state of a run without the crash."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as s

from jiazheng.complaints.events.v1 import events_pb2 as complaints
from jiazheng.orders.events.v1 import events_pb2 as orders
from jiazheng.type.v1 import service_type_pb2 as st
from libs.common.protoutil import timestamp
from services.regulator.domain.indicators import DistrictDay, EventChanges, RegulatorEvent, district_day
from services.regulator.indicators import Batch, TableStore
from services.regulator.tests.indicator_events import DAY, GRACE, NOW, at, event
from services.regulator.versioned import Batches

CHAOYANG, HAIDIAN = "110105", "110108"


class Tables:
    """The indicators' tables as dictionaries, each write also kept in order (a changelog)."""

    def __init__(self) -> None:
        self.cells: dict[str, dict[Any, Any]] = {"counted": {}, "days": {}, "records": {}, "commits": {}}
        self.log: list[tuple[str, Any, Any]] = []

    def landed(self, writes: list[tuple[str, Any, Any]]) -> Tables:
        """These tables as a restart recovers them when only ``writes`` of the log's tail landed."""
        recovered = Tables()
        recovered.cells = copy.deepcopy(self.cells)
        for name, key, value in writes:
            recovered.cells[name][key] = copy.deepcopy(value)
        return recovered


class LoggedCells:
    """One of the tables: its writes land at once, and are logged."""

    def __init__(self, tables: Tables, name: str) -> None:
        self.tables, self.name = tables, name

    def get(self, key: Any) -> Any:
        return copy.deepcopy(self.tables.cells[self.name].get(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        self.tables.log.append((self.name, key, value))
        self.tables.cells[self.name][key] = copy.deepcopy(value)


class Process:
    """One run of the indicators over ``tables``: a new epoch, then batches."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.batches = Batches(LoggedCells(tables, "commits"))
        cells = (LoggedCells(tables, name) for name in ("counted", "days", "records"))
        self.store = TableStore(self.batches, *cells)
        self.batches.open_epoch()

    def batch(self, events: list[RegulatorEvent]) -> list[DistrictDay]:
        """Writes the batch's changes (they land at once here); the commit is left to the caller."""
        batch = Batch(EventChanges(self.store))
        for e in events:
            batch.count(e, NOW, GRACE)
        return batch.write()

    def figures(self, district: str) -> DistrictDay:
        return district_day(self.store, district, DAY)


def _first() -> list[RegulatorEvent]:
    return [
        event(
            orders.OrderCreated(
                order_id="o-1", district_code=CHAOYANG, service_type=st.SERVICE_TYPE_CLEANING
            ),
            at(8),
            "e-1",
        ),
        event(orders.OrderAssigned(order_id="o-1", worker_id="w-1", district_code=CHAOYANG), at(8.5), "e-2"),
        event(
            complaints.CaseFiled(case_id="c-1", district_code=CHAOYANG, file_time=timestamp(at(9))),
            at(9),
            "e-3",
        ),
    ]


def _second() -> list[RegulatorEvent]:
    """Events that read what the batch itself and the one before wrote."""
    return [
        event(
            orders.OrderCreated(
                order_id="o-2", district_code=HAIDIAN, service_type=st.SERVICE_TYPE_ELDERLY_CARE
            ),
            at(10),
            "e-4",
        ),
        event(complaints.CaseAnswered(case_id="c-1", response_seconds=600), at(10.5), "e-5"),
        event(complaints.CaseAnswered(case_id="c-1", response_seconds=900), at(10.6), "e-6"),
        event(
            complaints.CaseFiled(case_id="c-2", district_code=HAIDIAN, file_time=timestamp(at(11))),
            at(11),
            "e-7",
        ),
        event(complaints.CaseEscalatedToMediation(case_id="c-2"), at(12), "e-8"),
        event(
            complaints.CaseResolved(case_id="c-1", file_time=timestamp(at(9)), time=timestamp(at(13))),
            at(13),
            "e-9",
        ),
        event(
            orders.OrderCompleted(order_id="o-1", district_code=CHAOYANG), at(14), "e-1"
        ),  # a copy: same id
    ]


def _without_a_crash() -> Tables:
    tables = Tables()
    process = Process(tables)
    process.batch(_first())
    process.batches.commit()
    process.batch(_second())
    process.batches.commit()
    return tables


@settings(max_examples=200, deadline=None)
@given(s.data())
def test_whatever_part_of_a_batch_landed_before_a_crash_the_batch_again_gives_the_same_figures(
    data: s.DataObject,
) -> None:
    tables = Tables()
    process = Process(tables)
    process.batch(_first())
    process.batches.commit()
    durable = tables.landed([])
    start = len(tables.log)
    process.batch(_second())  # the process dies before the commit: some of these writes landed
    writes = tables.log[start:]
    kept = data.draw(s.lists(s.booleans(), min_size=len(writes), max_size=len(writes)))
    landed = [write for write, lands in zip(writes, kept, strict=True) if lands]
    restarted = Process(durable.landed(landed))

    restarted.batch(_second())
    restarted.batches.commit()

    straight = Process(_without_a_crash())
    for district in (CHAOYANG, HAIDIAN):
        assert restarted.figures(district) == straight.figures(district)
    assert {e.id for e in _second()} <= {
        k for k in restarted.tables.cells["counted"] if restarted.store.counted(k)
    }


def test_without_a_commit_nothing_of_the_batch_is_seen() -> None:
    tables = Tables()
    process = Process(tables)
    process.batch(_first())

    assert Process(tables).figures(CHAOYANG).orders_placed == 0
    process.batches.commit()
    assert Process(tables).figures(CHAOYANG).orders_placed == 1


def test_the_figures_without_a_crash_count_each_event_once() -> None:
    figures = Process(_without_a_crash()).figures(CHAOYANG)

    assert (figures.orders_placed, figures.orders_completed, figures.complaints_filed) == (1, 0, 1)
    assert (figures.median_first_response_seconds, figures.orders_dispatched) == (600, 1)
    assert figures.median_resolution_seconds == 4 * 3600
    assert Process(_without_a_crash()).figures(HAIDIAN).mediation_backlog == 1
