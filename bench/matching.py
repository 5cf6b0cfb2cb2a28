"""Matching among N generated workers, in-process: the index against a plain-Python linear scan.

Workers (seeded) spread over the 16 districts by population, with trades, levels, health tiers,
colours, credit levels, ratings, loads, weekly schedules, bookings and leave in realistic
proportions; requests (seeded) for every service type, mostly cleaning, within the next two
weeks. The linear scan runs a sample of the same requests (it takes ~100 ms each at 100,000
workers) and must give the same answers; then the index takes mixed colour, credit and load updates.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from typing import Any

from bench.common import Target, figure, percentile_ms
from libs.common.beijing import BEIJING
from services.orders.domain import (
    DEFAULT_CATALOGUE,
    CardColour,
    CreditLevel,
    HealthTier,
    Interval,
    MatchingIndex,
    MatchRequest,
    MatchResult,
    ServiceType,
    SkillLevel,
    Trade,
    WeeklySlot,
    WorkerEligibility,
    linear_match,
)
from services.orders.domain.districts import NEIGHBOURS

SEED = 20_241_130
NOW = datetime(2024, 12, 2, tzinfo=BEIJING)  # a Monday
# Resident population in units of 10,000 (2020 census, rounded): where workers live and orders are.
POPULATION = {
    "110101": 71, "110102": 110, "110105": 345, "110106": 202, "110107": 57, "110108": 313,
    "110109": 39, "110111": 131, "110112": 184, "110113": 132, "110114": 227, "110115": 199,
    "110116": 44, "110117": 46, "110118": 53, "110119": 35,
}  # fmt: skip
SCHEDULES = (  # (days, start hour, end hour), weights
    ((range(1, 6), 8, 18), 30),
    ((range(1, 8), 8, 20), 25),
    ((range(1, 8), 0, 24), 20),  # live-in and maternity workers
    ((range(1, 7), 7, 19), 15),
    ((range(6, 8), 9, 21), 10),
)
SERVICE_WEIGHTS = {
    ServiceType.CLEANING: 40, ServiceType.LIVE_IN_HOUSEKEEPER: 8, ServiceType.MATERNITY: 8,
    ServiceType.INFANT_CARE: 8, ServiceType.ELDERLY_CARE: 12, ServiceType.PATIENT_CARE: 6,
    ServiceType.APPLIANCE_CLEANING: 8, ServiceType.ORGANISING: 6, ServiceType.AGE_FRIENDLY_ADAPTATION: 4,
}  # fmt: skip
LEVELS = {SkillLevel.LEVEL_5: 40, SkillLevel.LEVEL_4: 35, SkillLevel.LEVEL_3: 20, SkillLevel.LEVEL_2: 5}
TIERS = {
    None: 5, HealthTier.GENERAL: 40, HealthTier.LIVE_IN: 20, HealthTier.ELDERLY_CARE: 15,
    HealthTier.MATERNAL_INFANT: 20,
}  # fmt: skip
COLOURS = {CardColour.GREEN: 85, CardColour.YELLOW: 10, CardColour.RED: 5}
CREDITS = {None: 10, CreditLevel.A: 25, CreditLevel.B: 40, CreditLevel.C: 20, CreditLevel.D: 5}


def _pick(rng: random.Random, weighted: dict[Any, int]) -> Any:
    return rng.choices(list(weighted), weights=list(weighted.values()))[0]


def _slots(rng: random.Random) -> tuple[WeeklySlot, ...]:
    days, start, end = rng.choices([s for s, _ in SCHEDULES], weights=[w for _, w in SCHEDULES])[0]
    return tuple(WeeklySlot(d, start * 60, end * 60) for d in days)


def _busy(rng: random.Random, count: int, longest_h: int) -> tuple[Interval, ...]:
    starts = (NOW + timedelta(days=rng.randint(0, 13), hours=rng.randint(7, 18)) for _ in range(count))
    return tuple(Interval(s, s + timedelta(hours=rng.randint(2, longest_h))) for s in starts)


def _trades(rng: random.Random) -> frozenset[Trade]:
    first = _pick(rng, {Trade.HOUSEKEEPER: 60, Trade.MATERNITY_NURSE: 22, Trade.FAMILY_CARER: 18})
    return frozenset({first, rng.choice(list(Trade))} if rng.random() < 0.15 else {first})


def generate_worker(rng: random.Random, n: int) -> WorkerEligibility:
    home = _pick(rng, POPULATION)
    count = rng.choice([0, 0, 1, 3, 8, 20, 60])
    return WorkerEligibility(
        worker_id=f"w{n:07}",
        home_district=home,
        districts=frozenset({home, *(d for d in NEIGHBOURS[home] if rng.random() < 0.25)}),
        trades=_trades(rng),
        skill_level=_pick(rng, LEVELS),
        health_tier=_pick(rng, TIERS),
        card_colour=_pick(rng, COLOURS),
        credit_level=_pick(rng, CREDITS),
        rating_total=round(count * rng.uniform(3.5, 5.0)),
        rating_count=count,
        load=rng.randint(0, 5),
        weekly_slots=_slots(rng),
        leaves=_busy(rng, 1, 72) if rng.random() < 0.05 else (),
        bookings=_busy(rng, rng.randint(1, 4), 6) if rng.random() < 0.4 else (),
    )


def generate_request(rng: random.Random) -> MatchRequest:
    service_type = _pick(rng, SERVICE_WEIGHTS)
    start = NOW + timedelta(days=rng.randint(0, 13), hours=rng.randint(7, 18), minutes=rng.choice([0, 30]))
    hours = DEFAULT_CATALOGUE.entry(service_type).default_hours
    return MatchRequest(service_type, _pick(rng, POPULATION), start, start + timedelta(hours=hours))


def _timed(match: Any, requests: list[MatchRequest]) -> tuple[list[float], list[MatchResult]]:
    seconds, results = [], []
    for request in requests:
        began = time.perf_counter()
        results.append(match(request))
        seconds.append(time.perf_counter() - began)
    return sorted(seconds), results


def _updates_per_s(index: MatchingIndex, rng: random.Random, workers: int, updates: int) -> float:
    ids = [f"w{rng.randrange(workers):07}" for _ in range(updates)]
    began = time.perf_counter()
    for n, worker_id in enumerate(ids):
        if n % 3 == 0:
            index.set_card_colour(worker_id, CardColour.YELLOW if n % 2 else CardColour.GREEN)
        elif n % 3 == 1:
            index.set_credit_level(worker_id, CreditLevel.B if n % 2 else CreditLevel.D)
        else:
            index.set_load(worker_id, n % 6)
    return updates / (time.perf_counter() - began)


def _run_summary(what: str, seconds: list[float]) -> dict[str, object]:
    return {
        "what": what,
        "matches": len(seconds),
        "calls_per_s": len(seconds) / sum(seconds),
        "p50_ms": percentile_ms(seconds, 50),
        "p99_ms": percentile_ms(seconds, 99),
    }


def run(workers: int, requests: int, baseline_requests: int, updates: int) -> dict[str, Any]:
    """Build the index over ``workers``, time ``requests`` matches with it and the first
    ``baseline_requests`` with the linear scan, check they agree, then time ``updates``."""
    rng = random.Random(SEED)
    records = [generate_worker(rng, n) for n in range(workers)]
    wanted = [generate_request(rng) for _ in range(requests)]
    began = time.perf_counter()
    index = MatchingIndex(records)
    build_s = time.perf_counter() - began
    indexed, indexed_results = _timed(lambda r: index.match(r, DEFAULT_CATALOGUE), wanted)
    sample = wanted[:baseline_requests]
    linear, linear_results = _timed(lambda r: linear_match(records, r, DEFAULT_CATALOGUE), sample)
    agree = indexed_results[: len(sample)] == linear_results
    rate = _updates_per_s(index, rng, workers, updates)
    return {
        "workers": workers,
        "build_s": round(build_s, 2),
        "mean_eligible": sum(r.eligible for r in indexed_results) / len(indexed_results),
        "figures": [
            figure(
                "match p99, index",
                "ms",
                percentile_ms(indexed, 99),
                percentile_ms(linear, 99),
                Target(at_most=10),
            ),
            figure("match p50, index", "ms", percentile_ms(indexed, 50), percentile_ms(linear, 50)),
            figure("index updates", "updates/s", rate, target=Target(at_least=5_000)),
            figure(
                f"index = linear scan on {len(sample)} requests",
                "yes/no",
                agree,
                target=Target(holds="same candidates, order and counts"),
            ),
        ],
        "runs": [_run_summary("index", indexed), _run_summary("linear scan (baseline)", linear)],
    }
