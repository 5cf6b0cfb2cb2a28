"""Credit model 2026.1 (信用模型): a worker's score and level, and a company's grade, from facts.

A pure function of the ledger: the same facts, in any order, evaluated at the same instant give
the same ``Evaluation``; facts that occur after that instant are ignored. Every fact gets one
``Line`` saying how many points it is worth now and why; the score is 600 plus the lines'
points, clamped to 0..1000. All arithmetic is on integers. The weights and a worked example are
in docs/credit-model.md.

Each rule is one scorer giving every fact of its kind its points and the makings of its reason (a
template and its values). ``evaluate`` formats the reasons into lines; ``score_of`` only adds the
points up, for the callers that need no explanation (the rebuild, ``next_change``), so the two
cannot disagree.

Gains do not fade; penalties fade linearly to nothing over 730 days (24 months), counted in
Beijing calendar days, so with no new fact a worker's score can only rise, and only at a Beijing
midnight: ``next_change`` uses this to find when the level will next change.
"""

from __future__ import annotations

import bisect
import operator
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from libs.common.beijing import BEIJING
from libs.common.errors import InvalidArgument
from services.credit.model.facts import Fact, FactKind, Substantiation

MODEL_VERSION = "2026.1"

START_SCORE, MIN_SCORE, MAX_SCORE = 600, 0, 1000

ORDER_POINTS, ORDER_YEAR_CAP = 2, 60  # per completed order; per Beijing calendar year
RATING_PRIOR_STARS, RATING_PRIOR_WEIGHT = 4, 5  # as if rated 4 stars five times; 4 stars scores 0
RATING_POINTS_PER_STAR = 30
TRAINING_HOURS_PER_POINT, TRAINING_CAP = 8, 20
CERTIFICATE_POINTS_PER_LEVEL = 15  # the highest level held counts
AWARD_POINTS_PER_TIER, AWARD_CAP = 20, 60

FADE_DAYS = 730  # penalties fade linearly to 0 over 24 months
NO_SHOW_WINDOW, NO_SHOW_STEP = timedelta(days=28), 40  # the n-th no-show within 28 days costs 40 × n
COMPLAINT_PENALTIES = {1: ("minor", 30), 2: ("major", 80), 3: ("severe", 200)}  # partly: half
AGREEMENT_BREACH_PENALTY = 100
BACKGROUND_FLAG_PENALTY, BACKGROUND_CAP = 150, 300  # per background check
CLAIM_PENALTY, CLAIM_PENALTY_PER_1000_YUAN, CLAIM_CAP = 50, 10, 150  # per claim
FEN_PER_1000_YUAN = 100_000

CERTIFICATE_NAMES = {1: "五级", 2: "四级", 3: "三级", 4: "二级"}


class Level(StrEnum):
    """A worker's credit level (信用等级); D is not dispatched."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


LEVEL_FLOORS = ((Level.A, 800), (Level.B, 650), (Level.C, 500))  # below 500: D


@dataclass(frozen=True)
class Line:
    """What one fact is worth at the evaluation's instant (after fading), and why."""

    fact_id: str
    kind: FactKind
    occurred_at: datetime
    points: int
    reason: str


@dataclass(frozen=True)
class Evaluation:
    """A worker's score and level, with one line per fact counted, oldest first."""

    score: int
    level: Level
    lines: tuple[Line, ...]
    model_version: str = MODEL_VERSION


@dataclass(frozen=True)
class Standing:
    """A worker's score and level at an instant, as ``evaluate`` gives them, without the lines."""

    score: int
    level: Level
    model_version: str = MODEL_VERSION


def level_of(score: int) -> Level:
    for level, floor in LEVEL_FLOORS:
        if score >= floor:
            return level
    return Level.D


def evaluate(facts: Iterable[Fact], at: datetime) -> Evaluation:
    """The worker's record at ``at`` from the facts of one worker that occurred by then."""
    known = _known(facts, at)
    by_id = {
        fact.fact_id: Line(fact.fact_id, fact.kind, fact.occurred_at, points, template.format(*values))
        for fact, points, template, values in _scored(_by_kind(known), _beijing_date(at))
    }
    lines = tuple(by_id[fact.fact_id] for fact in known)
    score = _clamped(sum(line.points for line in lines))
    return Evaluation(score, level_of(score), lines)


def score_of(facts: Iterable[Fact], at: datetime) -> Standing:
    """``evaluate(facts, at)``'s score and level, with no line made and no reason formatted."""
    score = _score(_by_kind(_known(facts, at)), _beijing_date(at))
    return Standing(score, level_of(score))


def next_change(facts: Iterable[Fact], at: datetime) -> datetime | None:
    """The first Beijing midnight after ``at`` at which the level differs with no new fact, or
    None within 730 days (when every penalty known by ``at`` has faded).

    Fading only raises a score, so the level can only rise and the first changed day is found by
    bisecting the days instead of stepping through them.
    """
    by_kind = _by_kind(_known(facts, at))
    level = level_of(_score(by_kind, _beijing_date(at)))
    first = _beijing_date(at) + timedelta(days=1)

    def changed(day: int) -> bool:
        return level_of(_score(by_kind, first + timedelta(days=day))) is not level

    found = bisect.bisect_left(range(FADE_DAYS), True, key=changed)
    return datetime.combine(first + timedelta(days=found), time(), BEIJING) if found < FADE_DAYS else None


_CHRONOLOGICAL = operator.attrgetter("occurred_at", "fact_id")


def _known(facts: Iterable[Fact], at: datetime) -> list[Fact]:
    """One worker's distinct facts that occurred by ``at``, oldest first (ties by id)."""
    if at.tzinfo is None:
        raise InvalidArgument("at", "must carry a time zone")
    by_id: dict[str, Fact] = {}
    for fact in facts:
        seen = by_id.setdefault(fact.fact_id, fact)
        if seen is not fact and seen != fact:
            raise InvalidArgument("facts", f"two different facts have the id {fact.fact_id}")
    if len({fact.worker_id for fact in by_id.values()}) > 1:
        raise InvalidArgument("facts", "facts of more than one worker")
    known = [fact for fact in by_id.values() if fact.occurred_at <= at]
    known.sort(key=_CHRONOLOGICAL)
    return known


def _by_kind(facts: Iterable[Fact]) -> Mapping[FactKind, Sequence[Fact]]:
    """The facts of each kind, each kind's in the order given."""
    groups: defaultdict[FactKind, list[Fact]] = defaultdict(list)
    for fact in facts:
        groups[fact.kind].append(fact)
    return groups


# A fact, the points it is worth, and its reason: a ``str.format`` template and the values that fill
# it, formatted only when an evaluation is explained.
_Scored = tuple[Fact, int, str, tuple[object, ...]]
_POINTS = operator.itemgetter(1)


def _scored(by_kind: Mapping[FactKind, Sequence[Fact]], today: date) -> Iterator[_Scored]:
    """Every fact scored by its kind's rule on ``today``, the evaluation's Beijing date."""
    for kind, facts in by_kind.items():
        yield from SCORERS[kind](facts, today)


def _score(by_kind: Mapping[FactKind, Sequence[Fact]], today: date) -> int:
    return _clamped(sum(map(_POINTS, _scored(by_kind, today))))


def _clamped(points: int) -> int:
    return min(MAX_SCORE, max(MIN_SCORE, START_SCORE + points))


def _beijing_date(moment: datetime) -> date:
    if moment.tzinfo is UTC:  # as the ledger's instants are read: the same date, five times faster
        return (moment + _UTC_TO_BEIJING).date()
    return moment.astimezone(BEIJING).date()


_UTC_TO_BEIJING = timedelta(hours=8)


# -- gains: each fact's points are what it adds to its kind's capped total -------------------


def _orders(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    earned: dict[int, int] = {}  # points by Beijing year
    for fact in facts:
        year = _beijing_date(fact.occurred_at).year
        before = earned.get(year, 0)
        points = min(ORDER_POINTS, ORDER_YEAR_CAP - before)
        earned[year] = before + points
        reason = "order completed: +{}, {} of {} in {}"
        yield fact, points, reason, (points, earned[year], ORDER_YEAR_CAP, year)


def rating_points(total_stars: int, count: int) -> int:
    """30 × (the Bayesian mean of the stars − 4), rounded half away from zero; the prior is 4
    stars weighing as 5 ratings, so a worker with no rating scores 0."""
    numerator = RATING_POINTS_PER_STAR * (total_stars - RATING_PRIOR_STARS * count)
    denominator = RATING_PRIOR_WEIGHT + count
    rounded = (2 * abs(numerator) + denominator) // (2 * denominator)
    return rounded if numerator >= 0 else -rounded


def _ratings(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    stars = before = 0
    for count, fact in enumerate(facts, start=1):
        stars += fact.magnitude
        now = rating_points(stars, count)
        mean = (RATING_PRIOR_STARS * RATING_PRIOR_WEIGHT + stars) / (RATING_PRIOR_WEIGHT + count)
        reason = "rating, {} stars: {:+d}, smoothed mean {:.2f} of {}"
        yield fact, now - before, reason, (fact.magnitude, now - before, mean, count)
        before = now


def _running(
    facts: Sequence[Fact], combine: Callable[[int, int], int], points: Callable[[int], int]
) -> Iterator[tuple[Fact, int, int]]:
    """Each fact with the running value its magnitude makes (``combine``) and the points it adds."""
    value = 0
    for fact in facts:
        after = combine(value, fact.magnitude)
        yield fact, after, points(after) - points(value)
        value = after


def _training(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    def points(hours: int) -> int:
        return min(TRAINING_CAP, hours // TRAINING_HOURS_PER_POINT)

    for fact, hours, gained in _running(facts, operator.add, points):
        reason = "training, {} h: +{}, {} h in all (+1 per 8 h, at most +20)"
        yield fact, gained, reason, (fact.magnitude, gained, hours)


def _certificates(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    for fact, highest, gained in _running(facts, max, lambda level: CERTIFICATE_POINTS_PER_LEVEL * level):
        names = (CERTIFICATE_NAMES[fact.magnitude], gained, CERTIFICATE_NAMES[highest])
        yield fact, gained, "certificate {}: +{}, highest held {}", names


def _awards(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    def points(tiers: int) -> int:
        return min(AWARD_CAP, AWARD_POINTS_PER_TIER * tiers)

    for fact, _, gained in _running(facts, operator.add, points):
        yield fact, gained, "award, tier {}: +{} (at most +{} in all)", (fact.magnitude, gained, AWARD_CAP)


# -- penalties: each fades from its own occurrence ------------------------------------------


def _faded(fact: Fact, today: date, penalty: int, what: str, *values: object) -> _Scored:
    """``penalty`` points lost for ``fact``, less the part faded by ``today`` (rounded in the
    worker's favour), so a penalty never grows with time; the reason starts with ``what``, a
    template of ``values``."""
    elapsed = (today - _beijing_date(fact.occurred_at)).days
    remaining = max(0, FADE_DAYS - elapsed)
    faded = min(100, 100 * elapsed // FADE_DAYS)
    return fact, -(penalty * remaining // FADE_DAYS), what + ": -{}, faded {} %", (*values, penalty, faded)


def _no_shows(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    window: deque[datetime] = deque()
    for fact in facts:
        while window and window[0] <= fact.occurred_at - NO_SHOW_WINDOW:
            window.popleft()
        window.append(fact.occurred_at)
        nth = len(window)
        yield _faded(fact, today, NO_SHOW_STEP * nth, "no-show, {} within 28 days", _ordinal(nth))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _complaints(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    for fact in facts:
        severity, penalty = COMPLAINT_PENALTIES[fact.magnitude]
        partly = fact.detail == Substantiation.PARTLY_SUBSTANTIATED
        what = "complaint upheld, {}, partly substantiated (half)" if partly else "complaint upheld, {}"
        yield _faded(fact, today, penalty // 2 if partly else penalty, what, severity)


def _breaches(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    for fact in facts:
        yield _faded(fact, today, AGREEMENT_BREACH_PENALTY, "mediation agreement breached")


def _background(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    for fact in facts:
        penalty = min(BACKGROUND_CAP, BACKGROUND_FLAG_PENALTY * fact.magnitude)
        yield _faded(fact, today, penalty, "background check, {} flags", fact.magnitude)


def _claims(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    for fact in facts:
        per_1000 = CLAIM_PENALTY_PER_1000_YUAN * (fact.magnitude // FEN_PER_1000_YUAN)
        penalty = min(CLAIM_CAP, CLAIM_PENALTY + per_1000)
        yield _faded(fact, today, penalty, "at-fault claim paid, {} yuan", fact.magnitude // 100)


# -- shown, not scored -----------------------------------------------------------------------


def _suspensions(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    for fact in facts:
        yield fact, 0, "suspension requested: 0, the upheld complaint carries the points", ()


def _unscored(facts: Sequence[Fact], today: date) -> Iterator[_Scored]:
    for fact in facts:
        yield fact, 0, "{}: 0, not scored by model {}", (fact.source or "an event", MODEL_VERSION)


_Scorer = Callable[[Sequence[Fact], date], Iterator[_Scored]]
SCORERS: dict[FactKind, _Scorer] = {
    FactKind.ORDER_COMPLETED: _orders,
    FactKind.RATING: _ratings,
    FactKind.TRAINING_COMPLETED: _training,
    FactKind.CERTIFICATE_GRANTED: _certificates,
    FactKind.AWARD: _awards,
    FactKind.NO_SHOW: _no_shows,
    FactKind.COMPLAINT_UPHELD: _complaints,
    FactKind.AGREEMENT_BREACHED: _breaches,
    FactKind.BACKGROUND_FLAGGED: _background,
    FactKind.CLAIM_PAID_AT_FAULT: _claims,
    FactKind.SUSPENSION_REQUESTED: _suspensions,
    FactKind.UNSCORED: _unscored,
}


# -- companies -------------------------------------------------------------------------------

RESOLUTION_POINTS = 30  # × the share of complaints received that were resolved
RESPONSE_POINTS = ((24, 20), (72, 10))  # median first response within 24 h: 20, within 72 h: 10
PENALTY_POINTS = 15  # lost per administrative penalty
RED_LIST_POINTS = 10  # 红名单: the regulator's list of trusted companies (守信激励)
DESIGNATION_POINTS, DESIGNATION_CAP = 5, 10
WORKER_POINTS, WORKER_MEAN_FLOOR, WORKER_MEAN_SPAN = 40, 500, 300  # mean 500 → 0 ... 800 → 40
MAX_COMPANY_POINTS = 100


class Grade(StrEnum):
    """A household-service company's credit grade (企业信用等级), best first."""

    AAA = "AAA"
    AA = "AA"
    A = "A"
    B = "B"
    C = "C"


GRADE_FLOORS = ((Grade.AAA, 90), (Grade.AA, 75), (Grade.A, 60), (Grade.B, 40))  # below 40: C


@dataclass(frozen=True)
class CompanyRecord:
    """What credit knows of a company's own conduct: complaints it received and resolved, the
    median hours to its first response, administrative penalties, whether it is on the red list
    (a regulator's warning) or the black list (失信), and brand designations (品牌) it holds."""

    complaints_received: int
    complaints_resolved: int
    median_response_hours: int
    penalties: int
    red_listed: bool
    black_listed: bool
    brand_designations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.complaints_resolved <= self.complaints_received:
            raise InvalidArgument("complaints_resolved", "must be between 0 and the complaints received")
        if self.median_response_hours < 0 or self.penalties < 0:
            raise InvalidArgument("company", "response hours and penalties cannot be negative")


@dataclass(frozen=True)
class GradeLine:
    """One factor of a company's grade, its points and why."""

    factor: str
    points: int
    reason: str


@dataclass(frozen=True)
class CompanyGrade:
    """A company's grade at ``graded_at``: points 0..100 from its lines, then the lists' limits."""

    grade: Grade
    points: int
    lines: tuple[GradeLine, ...]
    graded_at: datetime
    model_version: str = MODEL_VERSION


def grade_company(own: CompanyRecord, worker_scores: Sequence[int], at: datetime) -> CompanyGrade:
    """The company's grade from its own record and its workers' scores: the red list (红名单,
    trusted) adds points; the black list (黑名单, 失信) makes it C whatever the points."""
    lines = (
        _resolution(own),
        _response(own),
        GradeLine("penalties", -PENALTY_POINTS * own.penalties, f"{own.penalties} penalties"),
        _designations(own.brand_designations),
        GradeLine(
            "red_list",
            RED_LIST_POINTS if own.red_listed else 0,
            "on the red list" if own.red_listed else "not on the red list",
        ),
        _workers(worker_scores),
    )
    points = min(MAX_COMPANY_POINTS, max(0, sum(line.points for line in lines)))
    grade = next((grade for grade, floor in GRADE_FLOORS if points >= floor), Grade.C)
    if own.black_listed:
        grade = Grade.C
    return CompanyGrade(grade, points, lines, at)


def _resolution(own: CompanyRecord) -> GradeLine:
    if not own.complaints_received:
        return GradeLine("resolution", RESOLUTION_POINTS, "no complaints received")
    points = RESOLUTION_POINTS * own.complaints_resolved // own.complaints_received
    reason = f"resolved {own.complaints_resolved} of {own.complaints_received} complaints"
    return GradeLine("resolution", points, reason)


def _response(own: CompanyRecord) -> GradeLine:
    if not own.complaints_received:
        return GradeLine("response", RESPONSE_POINTS[0][1], "no complaints to answer")
    hours = own.median_response_hours
    points = next((points for limit, points in RESPONSE_POINTS if hours <= limit), 0)
    return GradeLine("response", points, f"median first response in {hours} h")


def _designations(designations: tuple[str, ...]) -> GradeLine:
    distinct = sorted(set(designations))
    points = min(DESIGNATION_CAP, DESIGNATION_POINTS * len(distinct))
    return GradeLine("designations", points, ", ".join(distinct) or "no brand designation")


def _workers(scores: Sequence[int]) -> GradeLine:
    if not scores:
        return GradeLine("workers", 0, "no worker scored")
    mean = sum(scores) // len(scores)
    above = min(WORKER_MEAN_SPAN, max(0, mean - WORKER_MEAN_FLOOR))
    points = WORKER_POINTS * above // WORKER_MEAN_SPAN
    return GradeLine("workers", points, f"mean score {mean} of {len(scores)} workers")
