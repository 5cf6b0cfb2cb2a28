"""A seeded Beijing day of household-service orders, as the calls a driver makes (bench/beijing_day.py).

Pure Python, no I/O. Times are day seconds in Asia/Shanghai (0 = midnight; a step may fall after
86,400, the next morning). Each order is a *chain*: its calls in time order, from CreateOrder to
its ratings, and, for some, a complaint with the company's response, a decision, an outcome (by
the company or in mediation) and an insurance claim from the compensation awarded.

The rates are assumptions of ours, stated here so that they can be argued with: orders created
on a diurnal curve with a morning (8–11) and an evening (19–22) peak; districts by resident
population; service types mostly hourly cleaning; 3 % cancelled before check-in, 1 % no-shows
(immediate orders: a no-show is reported after the start), about 1.5 % of completed orders
complained of, 40 % of the complaints mediated, a third of the upheld ones with compensation,
which insurance claims automatically and the insurer pays.

A worker works one order at a time (scheduled windows never overlap, with 30 minutes to travel).
A worker whose order is complained of, or who does not show up, takes no order after it, and
such a chain is only planned for a worker with no order starting later (else the consumer is the
one who did not show up, or there is no complaint): an upheld complaint or a no-show costs credit
points (a severe complaint makes the card RED), and the worker's later orders would then fail
their check-in, which is the system working, not the load we want.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.type.v1 import service_type_pb2 as st
from jiazheng.workers.v1 import workers_pb2 as w

K = TypeVar("K")
HOUR = 3600.0
DAY = 24 * HOUR
TRAVEL_S = 1800.0

# Resident population by district, in 10,000 (rounded, 2020 census): where orders come from.
DISTRICT_WEIGHTS: dict[str, float] = {
    "110101": 71, "110102": 110, "110105": 345, "110106": 202, "110107": 57, "110108": 313,
    "110109": 39, "110111": 131, "110112": 184, "110113": 132, "110114": 227, "110115": 199,
    "110116": 44, "110117": 46, "110118": 53, "110119": 35,
}  # fmt: skip


@dataclass(frozen=True)
class ServiceKind:
    """A service type of the catalogue, its share of orders, the trade it needs and the hours booked
    (the catalogue's default); a long one is still under way at the end of the day."""

    service_type: int
    weight: float
    trade: int
    hours: int
    long: bool = False


SERVICES = (
    ServiceKind(st.SERVICE_TYPE_CLEANING, 52, w.TRADE_HOUSEKEEPER, 3),
    ServiceKind(st.SERVICE_TYPE_APPLIANCE_CLEANING, 10, w.TRADE_HOUSEKEEPER, 2),
    ServiceKind(st.SERVICE_TYPE_ORGANISING, 6, w.TRADE_HOUSEKEEPER, 4),
    ServiceKind(st.SERVICE_TYPE_ELDERLY_CARE, 13, w.TRADE_FAMILY_CARER, 4),
    ServiceKind(st.SERVICE_TYPE_AGE_FRIENDLY_ADAPTATION, 2, w.TRADE_FAMILY_CARER, 4),
    ServiceKind(st.SERVICE_TYPE_PATIENT_CARE, 2, w.TRADE_FAMILY_CARER, 24, long=True),
    ServiceKind(st.SERVICE_TYPE_LIVE_IN_HOUSEKEEPER, 2, w.TRADE_HOUSEKEEPER, 624, long=True),
    ServiceKind(st.SERVICE_TYPE_MATERNITY, 1.5, w.TRADE_MATERNITY_NURSE, 624, long=True),
    ServiceKind(st.SERVICE_TYPE_INFANT_CARE, 1.5, w.TRADE_MATERNITY_NURSE, 624, long=True),
)
# Orders created per hour of the day (relative): a morning and an evening peak.
CREATE_CURVE = (1, 0.5, 0.3, 0.2, 0.2, 0.5, 2, 5, 9, 10, 9, 7, 6, 5, 5, 5, 6, 7, 8, 9, 10, 8, 5, 2)
# Services start in working hours (8:00–20:00), this long after the order at the least.
EARLIEST_START_H, LATEST_START_H, MIN_LEAD_S = 8, 20, HOUR

CANCELLED, NO_SHOW, COMPLAINT = 0.03, 0.01, 0.016
MEDIATED, COMPENSATED = 0.4, 0.35
RATED_BY_CONSUMER, RATED_BY_WORKER = 0.65, 0.3


@dataclass(frozen=True)
class Complaint:
    """A consumer's complaint about a completed order and the outcome it will get."""

    against_worker: bool
    severity: int  # complaints' Severity
    mediated: bool
    result: int  # complaints' OutcomeResult
    at_fault: int  # complaints' PartyKind
    compensation_fen: int

    @property
    def upheld(self) -> bool:
        return self.result in (c.OUTCOME_RESULT_SUBSTANTIATED, c.OUTCOME_RESULT_PARTLY_SUBSTANTIATED)

    @property
    def suspends(self) -> bool:
        """Severe, substantiated, the worker at fault: credit level D and a RED card follow."""
        return (
            self.severity == c.SEVERITY_SEVERE
            and self.result == c.OUTCOME_RESULT_SUBSTANTIATED
            and self.at_fault == c.PARTY_KIND_WORKER
        )


@dataclass(frozen=True)
class Step:
    """One step of a chain: a call (or three: mediation claims the case, records the agreement and
    its performance)."""

    at: float  # day seconds
    chain: int
    name: str


@dataclass
class Chain:
    """One order and what follows it."""

    index: int
    district: str
    kind: ServiceKind
    worker: int
    created: float
    start: float
    immediate: bool  # scheduled at once (no-shows only: reported after the start)
    fate: str  # completed, cancelled, no_show, in_service
    no_show_by_worker: bool = False
    cancelled_by_worker: bool = False
    consumer_stars: int = 0
    worker_stars: int = 0
    complaint: Complaint | None = None
    steps: list[Step] = field(default_factory=list)


@dataclass
class WorkerPool:
    """The workers, by (trade, district), each with the windows they are booked for in one pass,
    and the ones retired for the rest of the run."""

    trades: list[tuple[int, str]] = field(default_factory=list)  # worker index → (trade, district)
    retired: set[int] = field(default_factory=set)
    _booked: dict[int, list[tuple[float, float]]] = field(default_factory=dict)

    def new_pass(self) -> None:
        """A pass books another day: no window of an earlier pass is in the way."""
        self._booked = {}

    def take(self, trade: int, district: str, start: float, end: float) -> int:
        """A worker of ``trade`` serving ``district`` free from ``start`` to ``end``, a new one if none."""
        for index, key in enumerate(self.trades):
            if key == (trade, district) and index not in self.retired and self._free(index, start, end):
                break
        else:
            index = len(self.trades)
            self.trades.append((trade, district))
        windows = self._booked.setdefault(index, [])
        bisect.insort(windows, (start, end + TRAVEL_S))
        return index

    def _free(self, index: int, start: float, end: float) -> bool:
        return all(e <= start or s >= end + TRAVEL_S for s, e in self._booked.get(index, []))

    def starts_later(self, index: int, start: float) -> bool:
        return any(s > start for s, _ in self._booked.get(index, []))


def _weighted(rng: random.Random, weights: Mapping[K, float]) -> K:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _create_time(rng: random.Random) -> float:
    hour = rng.choices(range(24), weights=CREATE_CURVE)[0]
    return hour * HOUR + rng.uniform(0, HOUR)


def _start_time(rng: random.Random, created: float) -> float:
    """Hourly services mostly the same day, 1 to 6 hours ahead, in working hours."""
    start = created + MIN_LEAD_S + rng.expovariate(1 / (2 * HOUR))
    day_start = (start // DAY) * DAY
    if start - day_start < EARLIEST_START_H * HOUR:
        start = day_start + EARLIEST_START_H * HOUR + rng.uniform(0, 3 * HOUR)
    elif start - day_start > LATEST_START_H * HOUR:
        start = day_start + DAY + EARLIEST_START_H * HOUR + rng.uniform(0, 3 * HOUR)
    return round(start / 900) * 900  # on the quarter hour, as booked


def _complaint(rng: random.Random) -> Complaint:
    against_worker = rng.random() < 0.7
    severity = rng.choices([c.SEVERITY_MINOR, c.SEVERITY_MAJOR, c.SEVERITY_SEVERE], [50, 35, 15])[0]
    result = rng.choices(
        [
            c.OUTCOME_RESULT_SUBSTANTIATED,
            c.OUTCOME_RESULT_PARTLY_SUBSTANTIATED,
            c.OUTCOME_RESULT_NOT_SUBSTANTIATED,
        ],
        [45, 25, 30],
    )[0]
    upheld = result != c.OUTCOME_RESULT_NOT_SUBSTANTIATED
    at_fault = (
        (c.PARTY_KIND_WORKER if against_worker else c.PARTY_KIND_COMPANY)
        if upheld
        else c.PARTY_KIND_UNSPECIFIED
    )
    compensation = rng.randrange(20_000, 300_000, 100) if upheld and rng.random() < COMPENSATED else 0
    return Complaint(against_worker, severity, rng.random() < MEDIATED, result, at_fault, compensation)


def plan_day(seed: int, day_orders: int, pool: WorkerPool, first_index: int = 0) -> list[Chain]:
    """``day_orders`` chains of one day, their workers taken from ``pool``."""
    rng = random.Random(seed)
    created = sorted(_create_time(rng) for _ in range(day_orders))
    kinds: dict[ServiceKind, float] = {k: k.weight for k in SERVICES}
    chains = []
    for n, at in enumerate(created):
        kind = _weighted(rng, kinds)
        district = _weighted(rng, DISTRICT_WEIGHTS)
        chains.append(_chain(rng, pool, first_index + n, kind, district, at))
    return chains


def _chain(
    rng: random.Random, pool: WorkerPool, index: int, kind: ServiceKind, district: str, at: float
) -> Chain:
    immediate = not kind.long and rng.random() < NO_SHOW
    start = at + rng.uniform(600, 1800) if immediate else _start_time(rng, at)
    end = start + kind.hours * HOUR if not kind.long else start + 30 * DAY
    worker = pool.take(kind.trade, district, start, end)
    fate = "in_service" if kind.long else "completed"
    if immediate:
        fate = "no_show"
    elif rng.random() < CANCELLED:
        fate = "cancelled"
    chain = Chain(index, district, kind, worker, at, start, immediate, fate)
    # The worker at fault only if they have no later order: a no-show costs credit points.
    chain.no_show_by_worker = immediate and rng.random() < 0.6 and not pool.starts_later(worker, start)
    chain.cancelled_by_worker = rng.random() < 0.15
    if fate == "completed":
        chain.consumer_stars = (
            rng.choices([5, 4, 3, 2, 1], [70, 20, 6, 2, 2])[0] if rng.random() < RATED_BY_CONSUMER else 0
        )
        chain.worker_stars = rng.choices([5, 4, 3], [85, 12, 3])[0] if rng.random() < RATED_BY_WORKER else 0
        if rng.random() < COMPLAINT and not pool.starts_later(worker, start):
            chain.complaint = _complaint(rng)
    if chain.complaint is not None or (fate == "no_show" and chain.no_show_by_worker):
        pool.retired.add(worker)
    chain.steps = list(_steps(rng, chain))
    return chain


def _steps(rng: random.Random, ch: Chain) -> Iterator[Step]:
    u = rng.uniform
    t = ch.created
    yield Step(t, ch.index, "create")
    t += u(60, 300)
    yield Step(t, ch.index, "match")
    t += u(5, 30)
    yield Step(t, ch.index, "offer")
    t += u(60, 480)
    yield Step(t, ch.index, "accept")
    if ch.fate == "no_show":
        yield Step(max(t, ch.start) + u(900, 1800), ch.index, "no_show")
        return
    if ch.fate == "cancelled":
        yield Step(u(t + 60, max(t + 120, ch.start - 600)), ch.index, "cancel")
        return
    t = max(t + 60, ch.start + u(-600, 600))
    yield Step(t, ch.index, "check_in")
    if ch.fate == "in_service":
        return
    t = ch.start + ch.kind.hours * HOUR + u(-300, 600)
    yield Step(t, ch.index, "check_out")
    if ch.consumer_stars:
        yield Step(t + u(600, 3 * HOUR), ch.index, "rate_consumer")
    if ch.worker_stars:
        yield Step(t + u(300, 2 * HOUR), ch.index, "rate_worker")
    if ch.complaint is not None:
        yield from _case_steps(rng, ch, t)


def _case_steps(rng: random.Random, ch: Chain, done: float) -> Iterator[Step]:
    assert ch.complaint is not None
    u = rng.uniform
    t = done + u(HOUR, 6 * HOUR)
    yield Step(t, ch.index, "file")
    t += u(HOUR / 2, 3 * HOUR)
    yield Step(t, ch.index, "respond")
    t += u(HOUR / 2, 4 * HOUR)
    yield Step(t, ch.index, "decide")
    t += u(HOUR, 4 * HOUR)
    yield Step(t, ch.index, "mediate" if ch.complaint.mediated else "resolve")
    if ch.complaint.compensation_fen:
        t += u(2 * HOUR, 6 * HOUR)
        yield Step(t, ch.index, "adjudicate")
        t += u(HOUR / 2, 2 * HOUR)
        yield Step(t, ch.index, "pay")


def busiest_window(chains: list[Chain], minutes: float, grid_s: float = 900) -> tuple[float, float]:
    """The ``minutes`` of the day (on a quarter-hour grid) with the most steps."""
    times = sorted(s.at for ch in chains for s in ch.steps)
    span = minutes * 60
    best, best_start = -1, 0.0
    start = 0.0
    while start + span <= DAY:
        n = bisect.bisect_left(times, start + span) - bisect.bisect_left(times, start)
        if n > best:
            best, best_start = n, start
        start += grid_s
    return best_start, best_start + span


def split(chains: list[Chain], window: tuple[float, float]) -> tuple[list[Step], list[Step]]:
    """The steps of the chains that reach into ``window``: those before it (the preparation) and
    those in it (the replay), each in time order. Steps after it are not made."""
    w0, w1 = window
    before: list[Step] = []
    inside: list[Step] = []
    for ch in chains:
        if not any(w0 <= s.at < w1 for s in ch.steps):
            continue
        before += [s for s in ch.steps if s.at < w0]
        inside += [s for s in ch.steps if w0 <= s.at < w1]
    return sorted(before, key=lambda s: s.at), sorted(inside, key=lambda s: s.at)
