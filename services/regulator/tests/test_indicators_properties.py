"""Properties of the indicators over generated days of activity: no count is negative, medians
lie within their samples, and redelivered events change nothing."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as s

from jiazheng.complaints.events.v1 import events_pb2 as complaints
from jiazheng.credit.events.v1 import events_pb2 as credit
from jiazheng.orders.events.v1 import events_pb2 as orders
from jiazheng.workers.events.v1 import events_pb2 as workers
from libs.common.protoutil import timestamp
from services.regulator.domain.indicators import DistrictDay, RegulatorEvent, district_day, observe
from services.regulator.tests.indicator_events import DAY, GRACE, NOW, MemoryStore, at, event

DISTRICTS = ("110101", "110105")
WORKERS = ("w-1", "w-2", "w-3")


@s.composite
def _order(draw: s.DrawFn, n: int) -> list[RegulatorEvent]:
    district, worker = draw(s.sampled_from(DISTRICTS)), draw(s.sampled_from(WORKERS))
    hour = draw(s.floats(0, 23))
    order = f"o-{n}"
    steps = [
        event(orders.OrderCreated(order_id=order, district_code=district), at(hour)),
        event(orders.OrderAssigned(order_id=order, worker_id=worker, district_code=district), at(hour + 0.5)),
        event(orders.OrderCompleted(order_id=order, district_code=district), at(hour + 0.9)),
    ]
    return steps[: draw(s.integers(1, 3))]


@s.composite
def _case(draw: s.DrawFn, n: int) -> list[RegulatorEvent]:
    district, hour = draw(s.sampled_from(DISTRICTS)), draw(s.floats(0, 20))
    case, filed, answered = f"k-{n}", at(hour), draw(s.integers(0, 3 * 3600))
    resolved = filed + timedelta(seconds=answered + draw(s.integers(0, 3600)))
    steps = [
        event(complaints.CaseFiled(case_id=case, district_code=district, file_time=timestamp(filed)), filed),
        event(
            complaints.CaseAnswered(case_id=case, response_seconds=answered),
            filed + timedelta(seconds=answered),
        ),
        event(complaints.CaseEscalatedToMediation(case_id=case), filed + timedelta(seconds=answered)),
        event(
            complaints.CaseResolved(case_id=case, file_time=timestamp(filed), time=timestamp(resolved)),
            resolved,
        ),
    ]
    return steps[: draw(s.integers(1, 4))]


@s.composite
def _worker(draw: s.DrawFn, worker: str) -> list[RegulatorEvent]:
    districts = draw(s.lists(s.sampled_from(DISTRICTS), min_size=1, max_size=2, unique=True))
    changes = draw(s.lists(s.tuples(s.floats(0, 23), s.sampled_from([1, 2, 3, 4])), max_size=3))
    return [
        event(workers.WorkerRegistered(worker_id=worker, service_districts=districts), at(0)),
        *(event(credit.CreditLevelChanged(worker_id=worker, level=lv), at(h)) for h, lv in changes),  # type: ignore[arg-type]
        *(event(workers.CardStatusChanged(worker_id=worker, colour=lv % 4), at(h)) for h, lv in changes),  # type: ignore[arg-type]
    ]


@s.composite
def _activity(draw: s.DrawFn) -> list[RegulatorEvent]:
    """A day's events; each aggregate's in order (as one partition keeps them), topics interleaved."""
    streams = [draw(_order(n)) for n in range(draw(s.integers(0, 8)))]
    streams += [draw(_case(n)) for n in range(draw(s.integers(0, 5)))]
    streams += [draw(_worker(w)) for w in WORKERS]
    merged: list[RegulatorEvent] = []
    while any(streams):
        stream = draw(s.sampled_from([st for st in streams if st]))
        merged.append(stream.pop(0))
    return merged


def _figures(events: list[RegulatorEvent]) -> list[DistrictDay]:
    store = MemoryStore()
    for e in events:
        observe(e, store, NOW, GRACE)
    return [district_day(store, d, DAY) for d in DISTRICTS]


def _counts(day: DistrictDay) -> list[float]:
    figures = [getattr(day, f.name) for f in dataclasses.fields(day)]
    levels = [c.workers for c in day.credit_levels] + [c.workers for c in day.certified_workers]
    return [v for v in figures if isinstance(v, int | float)] + levels


@settings(max_examples=60, deadline=None)
@given(_activity())
def test_no_figure_is_negative_and_shares_stay_within_their_whole(events: list[RegulatorEvent]) -> None:
    for day in _figures(events):
        assert min(_counts(day)) >= 0
        assert day.dispatched_green <= day.orders_dispatched
        assert sum(c.workers for c in day.credit_levels) <= len(WORKERS)


@settings(max_examples=60, deadline=None)
@given(_activity())
def test_medians_lie_within_their_samples(events: list[RegulatorEvent]) -> None:
    answers = [e.integer("response_seconds") for e in events if e.type.endswith("CaseAnswered")]
    resolutions = [
        (e.moment("time") - e.moment("file_time")).seconds for e in events if e.type.endswith("Resolved")
    ]

    for day in _figures(events):
        if day.median_first_response_seconds:
            assert min(answers) <= day.median_first_response_seconds <= max(answers)
        if day.median_resolution_seconds:
            assert min(resolutions) <= day.median_resolution_seconds <= max(resolutions)


@settings(max_examples=60, deadline=None)
@given(_activity(), s.data())
def test_redelivered_events_change_nothing(events: list[RegulatorEvent], data: s.DataObject) -> None:
    copies = data.draw(s.lists(s.integers(0, max(len(events) - 1, 0)), max_size=10)) if events else []
    redelivered = list(events)
    for index in sorted(copies, reverse=True):
        redelivered.insert(index + 1, events[index])  # a copy right after, or after a restart: later

    assert _figures(redelivered) == _figures(events)
