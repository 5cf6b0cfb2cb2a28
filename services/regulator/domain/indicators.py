"""The indicators regulators watch (DOMAIN §11), per district and Beijing day, from the regulator
topics' events: the rules that turn one event into updates of the day it happened on, the state
those rules need, and the figures of a district's day (``DistrictDay``). Pure: the store is a
port (faust tables in production, a dictionary in the tests) and ``now`` is a parameter.

Two kinds of figure: **flows** (orders placed, complaints filed, ...) count events in the day of
their ``ce_time``, kept per district and day (the windows); **stocks** (credit levels, certified
workers, the mediation backlog) are what holds at the end of the day, computed from each
worker's and case's history, so an event changes every later day's stock too. The exact
definitions are in docs/regulators.md, "Indicators".

Events are read as the projection writes them: protobuf's JSON mapping (a parser accepts the
lowerCamelCase JSON name and the proto field name alike; enums by name; int64 as strings;
timestamps RFC 3339) with pseudonymous ids, which join events across topics as real ids would.
"""

from __future__ import annotations

import bisect
import dataclasses
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Protocol, Self, TypeVar

from libs.common.beijing import beijing_day, beijing_midnight

CREDIT_LEVELS = ("A", "B", "C", "D")
# National skill levels, 五级 (entry) to 二级 (技师).
SKILL_LEVELS = (5, 4, 3, 2)
_SKILL_LEVEL = {"SKILL_LEVEL_5": 5, "SKILL_LEVEL_4": 4, "SKILL_LEVEL_3": 3, "SKILL_LEVEL_2": 2}
GREEN = "CARD_COLOUR_GREEN"
ELDERLY_CARE = "SERVICE_TYPE_ELDERLY_CARE"
AGE_FRIENDLY = "SERVICE_TYPE_AGE_FRIENDLY_ADAPTATION"

DistrictDate = tuple[str, date]
"""A district's GB/T 2260 code and a Beijing day: what one figure is about."""


@dataclass(frozen=True)
class LevelCount:
    """How many workers hold a credit level (A to D)."""

    level: str
    workers: int


@dataclass(frozen=True)
class SkillLevelCount:
    """How many certified workers hold a national skill level (5 五级 to 2 二级) as their highest."""

    skill_level: int
    workers: int


@dataclass(frozen=True)
class DistrictDay:
    """What regulators watch for one district on one Beijing day: the fields of the contract's
    ``jiazheng.regulator.v1.DistrictDay``; ``date`` is YYYY-MM-DD."""

    district_code: str
    date: str
    orders_placed: int = 0
    orders_completed: int = 0
    orders_dispatched: int = 0
    dispatched_green: int = 0
    complaints_filed: int = 0
    complaints_per_thousand_orders: float = 0.0
    median_first_response_seconds: int = 0
    median_resolution_seconds: int = 0
    mediation_backlog: int = 0
    sla_breaches: int = 0
    orders_insured: int = 0
    orders_uninsured: int = 0
    elderly_care_orders: int = 0
    age_friendly_orders: int = 0
    credit_levels: tuple[LevelCount, ...] = ()
    certified_workers: tuple[SkillLevelCount, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DistrictDay:
        return cls(
            **{
                **raw,
                "credit_levels": tuple(LevelCount(**c) for c in raw["credit_levels"]),
                "certified_workers": tuple(SkillLevelCount(**c) for c in raw["certified_workers"]),
            }
        )


@dataclass(frozen=True)
class RegulatorEvent:
    """One record of a regulator topic as the indicators read it: ``ce_id``, ``ce_type``,
    ``ce_time`` and the JSON payload."""

    id: str
    type: str
    time: datetime
    data: Mapping[str, Any]

    def text(self, name: str) -> str:
        """A string or enum field by its proto name ("" when absent, as protobuf's default)."""
        value = self.data.get(_json_name(name), self.data.get(name, ""))
        return str(value)

    def texts(self, name: str) -> tuple[str, ...]:
        return tuple(str(v) for v in self.data.get(_json_name(name), self.data.get(name, ())))

    def moment(self, name: str) -> datetime:
        return datetime.fromisoformat(self.text(name).replace("Z", "+00:00"))

    def integer(self, name: str) -> int:
        return int(self.text(name) or 0)


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _thaw(value: Any) -> Any:
    """JSON's lists back to the tuples the records hold."""
    return tuple(_thaw(v) for v in value) if isinstance(value, list | tuple) else value


class Record:
    """State kept between events, stored as JSON under ``<PREFIX>/<id>``."""

    PREFIX: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload,no-any-return]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Self:
        return cls(**{k: _thaw(v) for k, v in (raw or {}).items()})


Timeline = tuple[tuple[float, str], ...]
"""Values with the epoch seconds they took effect, in time order."""


def _with(timeline: Timeline, at: datetime, value: str) -> Timeline:
    entries = list(timeline)
    bisect.insort(entries, (at.timestamp(), value))
    return tuple(entries)


def _at(timeline: Timeline, moment: float) -> str | None:
    """The value in effect at ``moment`` (set at or before it), None before the first."""
    index = bisect.bisect_right(timeline, (moment, "\uffff"))
    return timeline[index - 1][1] if index else None


@dataclass(frozen=True)
class DayFacts(Record):
    """The flows of one district's day: the counts, each dispatch (when, and which worker, for
    the card colour then), and the durations the medians are taken of."""

    PREFIX: ClassVar[str] = "day"
    placed: int = 0
    completed: int = 0
    filed: int = 0
    sla_breaches: int = 0
    insured: int = 0
    uninsured: int = 0
    elderly_care: int = 0
    age_friendly: int = 0
    dispatches: tuple[tuple[float, str], ...] = ()
    response_seconds: tuple[int, ...] = ()
    resolution_seconds: tuple[int, ...] = ()

    def plus(self, **counts: int) -> DayFacts:
        return dataclasses.replace(self, **{k: getattr(self, k) + n for k, n in counts.items()})


@dataclass(frozen=True)
class WorkerFacts(Record):
    """A worker as the indicators know them: the districts they serve (they count in each), the
    histories of their card colour, credit level and highest skill level, and the district days
    they were dispatched on (whose green share a late colour change revises)."""

    PREFIX: ClassVar[str] = "worker"
    districts: tuple[str, ...] = ()
    colours: Timeline = ()
    levels: Timeline = ()
    skills: Timeline = ()
    dispatched: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CaseFacts(Record):
    """A complaint case (投诉): its district and whether its first response was counted."""

    PREFIX: ClassVar[str] = "case"
    district: str = ""
    answered: bool = False


@dataclass(frozen=True)
class OrderFacts(Record):
    """An order: its district, and the times of cover recorded before its district was known."""

    PREFIX: ClassVar[str] = "order"
    district: str = ""
    pending_cover: tuple[float, ...] = ()


@dataclass(frozen=True)
class DistrictFacts(Record):
    """A district's stocks: the workers serving it, and each case's time in mediation (case,
    entered, left or None while it is still there)."""

    PREFIX: ClassVar[str] = "district"
    workers: tuple[str, ...] = ()
    mediation: tuple[tuple[str, float, float | None], ...] = ()


R = TypeVar("R", bound=Record)


class IndicatorStore(Protocol):
    """Where the indicators keep their state: the ids already counted, each district day's flows
    (the windows) and the records."""

    def counted(self, event_id: str) -> bool: ...

    def count(self, event_id: str) -> None: ...

    def day(self, district: str, day: date) -> DayFacts: ...

    def put_day(self, district: str, day: date, facts: DayFacts) -> None: ...

    def load(self, kind: type[R], key: str) -> R: ...

    def save(self, key: str, record: Record) -> None: ...


@dataclass
class EventChanges:
    """What counting one event changes, held apart from the store underneath (reads see these
    changes first) and written to it together by ``apply``: a rule that fails midway leaves
    nothing half-written. The values are absolute, not increments, so applying them again after a
    partial write completes it and counts nothing twice."""

    store: IndicatorStore
    counted_ids: list[str] = field(default_factory=list)
    days: dict[DistrictDate, DayFacts] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)

    def counted(self, event_id: str) -> bool:
        return event_id in self.counted_ids or self.store.counted(event_id)

    def count(self, event_id: str) -> None:
        self.counted_ids.append(event_id)

    def day(self, district: str, day: date) -> DayFacts:
        changed = self.days.get((district, day))
        return changed if changed is not None else self.store.day(district, day)

    def put_day(self, district: str, day: date, facts: DayFacts) -> None:
        self.days[(district, day)] = facts

    def load(self, kind: type[R], key: str) -> R:
        changed = self.records.get(key)
        return changed if isinstance(changed, kind) else self.store.load(kind, key)

    def save(self, key: str, record: Record) -> None:
        self.records[key] = record

    def apply(self) -> None:
        """Write every change to the store underneath; twice is as once."""
        for (district, day), facts in self.days.items():
            self.store.put_day(district, day, facts)
        for key, record in self.records.items():
            self.store.save(key, record)
        for event_id in self.counted_ids:
            self.store.count(event_id)


def first_open_day(now: datetime, grace: timedelta) -> date:
    """The oldest day whose window still takes events: a day is kept until ``grace`` after it ends."""
    return beijing_day(now - grace)


@dataclass(frozen=True)
class _Context:
    """One event being counted, with the store and the days still open."""

    event: RegulatorEvent
    store: IndicatorStore
    now: datetime
    grace: timedelta
    day: date = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "day", beijing_day(self.event.time))

    def is_open(self, day: date) -> bool:
        return day >= first_open_day(self.now, self.grace)

    def add(self, district: str, day: date | None = None, **counts: int) -> set[DistrictDate]:
        """Adds counts to a district's day (the event's by default) while its window is open."""
        day = day or self.day
        if not district or not self.is_open(day):
            return set()
        self.store.put_day(district, day, self.store.day(district, day).plus(**counts))
        return {(district, day)}

    def change_day(self, district: str, change: Callable[[DayFacts], DayFacts]) -> set[DistrictDate]:
        if not district or not self.is_open(self.day):
            return set()
        self.store.put_day(district, self.day, change(self.store.day(district, self.day)))
        return {(district, self.day)}

    def stock_days(self, districts: Iterable[str], since: float) -> set[DistrictDate]:
        """The days whose end-of-day stock a change at ``since`` alters: from its day to today."""
        first = max(_day_of(since), first_open_day(self.now, self.grace))
        last = max(beijing_day(self.now), self.day)
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return {(d, day) for d in districts if d for day in days}

    def load(self, kind: type[R], key: str) -> R:
        return _load(self.store, kind, key)

    def save(self, key: str, record: Record) -> None:
        self.store.save(f"{record.PREFIX}/{key}", record)


def _load(store: IndicatorStore, kind: type[R], key: str) -> R:
    return store.load(kind, f"{kind.PREFIX}/{key}")


Rule = Callable[[_Context], set[DistrictDate]]


def _order_located(c: _Context, district: str) -> set[DistrictDate]:
    """Remembers an order's district, and counts the cover recorded before it was known."""
    order = c.load(OrderFacts, c.event.text("order_id"))
    c.save(c.event.text("order_id"), OrderFacts(district=district))
    return set().union(*(c.add(district, _day_of(t), insured=1) for t in order.pending_cover))


def _day_of(moment: float) -> date:
    return beijing_day(datetime.fromtimestamp(moment, UTC))


def _order_created(c: _Context) -> set[DistrictDate]:
    district, service = c.event.text("district_code"), c.event.text("service_type")
    elderly, age_friendly = int(service == ELDERLY_CARE), int(service == AGE_FRIENDLY)
    counted = c.add(district, placed=1, elderly_care=elderly, age_friendly=age_friendly)
    return counted | _order_located(c, district)


def _order_assigned(c: _Context) -> set[DistrictDate]:
    district, worker_id = c.event.text("district_code"), c.event.text("worker_id")
    dispatch = (c.event.time.timestamp(), worker_id)
    touched = c.change_day(district, lambda f: dataclasses.replace(f, dispatches=(*f.dispatches, dispatch)))
    if touched:
        worker = c.load(WorkerFacts, worker_id)
        days = (*worker.dispatched, (district, c.day.isoformat()))
        c.save(worker_id, dataclasses.replace(worker, dispatched=days))
    return touched | _order_located(c, district)


def _order_completed(c: _Context) -> set[DistrictDate]:
    return c.add(c.event.text("district_code"), completed=1)


def _coverage_recorded(c: _Context) -> set[DistrictDate]:
    order_id = c.event.text("order_id")
    order = c.load(OrderFacts, order_id)
    if order.district:
        return c.add(order.district, insured=1)
    c.save(
        order_id, dataclasses.replace(order, pending_cover=(*order.pending_cover, c.event.time.timestamp()))
    )
    return set()


def _order_uncovered(c: _Context) -> set[DistrictDate]:
    return c.add(c.event.text("district_code"), uninsured=1)


def _worker_registered(c: _Context) -> set[DistrictDate]:
    worker_id, districts = c.event.text("worker_id"), c.event.texts("service_districts")
    worker = c.load(WorkerFacts, worker_id)
    c.save(worker_id, dataclasses.replace(worker, districts=districts))
    for code in districts:
        here = c.load(DistrictFacts, code)
        if worker_id not in here.workers:
            c.save(code, dataclasses.replace(here, workers=(*here.workers, worker_id)))
    # Where the worker counts is timeless: every day they held a level or a skill changes.
    since = min((t for t, _ in (*worker.levels, *worker.skills)), default=None)
    return set() if since is None else c.stock_days(districts, since)


def _worker_history(attribute: str, value: Callable[[RegulatorEvent], str]) -> Rule:
    """A rule adding the event's value to one of the worker's histories (a stock: every later day
    of the worker's districts changes)."""

    def rule(c: _Context) -> set[DistrictDate]:
        worker_id = c.event.text("worker_id")
        worker = c.load(WorkerFacts, worker_id)
        changes: dict[str, Any] = {attribute: _with(getattr(worker, attribute), c.event.time, value(c.event))}
        c.save(worker_id, dataclasses.replace(worker, **changes))
        return c.stock_days(worker.districts, c.event.time.timestamp())

    return rule


def _card_status_changed(c: _Context) -> set[DistrictDate]:
    """A colour change revises the green share of the worker's dispatches on its day or later."""
    _worker_history("colours", lambda e: e.text("colour"))(c)
    worker = c.load(WorkerFacts, c.event.text("worker_id"))
    days = {(d, date.fromisoformat(day)) for d, day in worker.dispatched}
    return {(d, day) for d, day in days if day >= c.day and c.is_open(day)}


def _level_letter(event: RegulatorEvent) -> str:
    return event.text("level").removeprefix("CREDIT_LEVEL_")


def _skill_level(event: RegulatorEvent) -> str:
    return str(_SKILL_LEVEL.get(event.text("highest_level"), 0))


def _case_filed(c: _Context) -> set[DistrictDate]:
    district = c.event.text("district_code")
    c.save(c.event.text("case_id"), CaseFacts(district=district))
    return c.add(district, filed=1)


def _case_answered(c: _Context) -> set[DistrictDate]:
    """Only a case's first answer is its first response."""
    case_id = c.event.text("case_id")
    case = c.load(CaseFacts, case_id)
    if case.answered:
        return set()
    c.save(case_id, dataclasses.replace(case, answered=True))
    seconds = c.event.integer("response_seconds")
    return c.change_day(
        case.district, lambda f: dataclasses.replace(f, response_seconds=(*f.response_seconds, seconds))
    )


def _case_resolved(c: _Context) -> set[DistrictDate]:
    district = c.load(CaseFacts, c.event.text("case_id")).district
    seconds = int((c.event.moment("time") - c.event.moment("file_time")).total_seconds())
    touched = c.change_day(
        district, lambda f: dataclasses.replace(f, resolution_seconds=(*f.resolution_seconds, seconds))
    )
    return touched | _mediation_left(c)


def _sla_breached(c: _Context) -> set[DistrictDate]:
    return c.add(c.load(CaseFacts, c.event.text("case_id")).district, sla_breaches=1)


def _mediation_entered(c: _Context) -> set[DistrictDate]:
    case_id = c.event.text("case_id")
    district = c.load(CaseFacts, case_id).district
    here = c.load(DistrictFacts, district)
    if not district or any(case == case_id for case, _, _ in here.mediation):
        return set()
    entered = c.event.time.timestamp()
    c.save(district, dataclasses.replace(here, mediation=(*here.mediation, (case_id, entered, None))))
    return c.stock_days([district], entered)


def _mediation_left(c: _Context) -> set[DistrictDate]:
    """The case leaves the backlog (agreement, resolution, outside route, withdrawal), once."""
    case_id = c.event.text("case_id")
    district = c.load(CaseFacts, case_id).district
    here = c.load(DistrictFacts, district)
    left = c.event.time.timestamp()
    stays = tuple(entry for entry in here.mediation if entry[0] != case_id or entry[2] is not None)
    if not district or len(stays) == len(here.mediation):
        return set()
    entered = next(e for case, e, end in here.mediation if case == case_id and end is None)
    c.save(district, dataclasses.replace(here, mediation=(*stays, (case_id, entered, left))))
    return c.stock_days([district], left)


def _rules() -> dict[str, Rule]:
    rules: dict[str, Rule] = {
        "orders.events.v1.OrderCreated": _order_created,
        "orders.events.v1.OrderAssigned": _order_assigned,
        "orders.events.v1.OrderCompleted": _order_completed,
        "insurance.events.v1.OrderCoverageRecorded": _coverage_recorded,
        "insurance.events.v1.OrderUncovered": _order_uncovered,
        "workers.events.v1.WorkerRegistered": _worker_registered,
        "workers.events.v1.CardStatusChanged": _card_status_changed,
        "workers.events.v1.SkillCertificateRecorded": _worker_history("skills", _skill_level),
        "credit.events.v1.CreditLevelChanged": _worker_history("levels", _level_letter),
        "complaints.events.v1.CaseFiled": _case_filed,
        "complaints.events.v1.CaseAnswered": _case_answered,
        "complaints.events.v1.CaseResolved": _case_resolved,
        "complaints.events.v1.SlaBreached": _sla_breached,
        "complaints.events.v1.CaseEscalatedToMediation": _mediation_entered,
        "complaints.events.v1.AgreementReached": _mediation_left,
        "complaints.events.v1.CaseEscalatedExternally": _mediation_left,
        "complaints.events.v1.CaseWithdrawn": _mediation_left,
    }
    return {f"jiazheng.{name}": rule for name, rule in rules.items()}


RULES: Mapping[str, Rule] = _rules()
"""The event types that move an indicator, by ``ce_type``; every other type is ignored."""


def observe(
    event: RegulatorEvent, store: IndicatorStore, now: datetime, grace: timedelta
) -> set[DistrictDate]:
    """Counts ``event`` once however often it is delivered, and says which district days' figures
    it changed (only days whose window is still open: a day is final ``grace`` after it ends)."""
    rule = RULES.get(event.type)
    if rule is None or store.counted(event.id):
        return set()
    touched = rule(_Context(event, store, now, grace))
    store.count(event.id)
    return touched


def _median(samples: tuple[int, ...]) -> int:
    return int(statistics.median(samples)) if samples else 0


def _stocks(store: IndicatorStore, district: str, day: date) -> dict[str, Any]:
    """The district's stocks at the end of ``day``."""
    end = beijing_midnight(day + timedelta(days=1)).timestamp()
    here = _load(store, DistrictFacts, district)
    workers = [_load(store, WorkerFacts, w) for w in here.workers]
    levels = [_at(w.levels, end - 1e-6) for w in workers]
    skills = [_at(w.skills, end - 1e-6) for w in workers]
    return {
        "mediation_backlog": sum(
            1 for _, entered, left in here.mediation if entered < end and (left is None or left >= end)
        ),
        "credit_levels": tuple(LevelCount(level, levels.count(level)) for level in CREDIT_LEVELS),
        "certified_workers": tuple(SkillLevelCount(s, skills.count(str(s))) for s in SKILL_LEVELS),
    }


def _green(store: IndicatorStore, dispatches: tuple[tuple[float, str], ...]) -> int:
    """How many dispatches went to a worker whose card was GREEN at that moment."""
    colours = (_at(_load(store, WorkerFacts, w).colours, t) for t, w in dispatches)
    return sum(1 for colour in colours if colour == GREEN)


def district_day(store: IndicatorStore, district: str, day: date) -> DistrictDay:
    """The figures of ``district`` on ``day`` as the store knows them now."""
    facts = store.day(district, day)
    return DistrictDay(
        district_code=district,
        date=day.isoformat(),
        orders_placed=facts.placed,
        orders_completed=facts.completed,
        orders_dispatched=len(facts.dispatches),
        dispatched_green=_green(store, facts.dispatches),
        complaints_filed=facts.filed,
        complaints_per_thousand_orders=facts.filed * 1000 / facts.placed if facts.placed else 0.0,
        median_first_response_seconds=_median(facts.response_seconds),
        median_resolution_seconds=_median(facts.resolution_seconds),
        sla_breaches=facts.sla_breaches,
        orders_insured=facts.insured,
        orders_uninsured=facts.uninsured,
        elderly_care_orders=facts.elderly_care,
        age_friendly_orders=facts.age_friendly,
        **_stocks(store, district, day),
    )
