"""Credit model 2026.1: each rule pinned with literal numbers (docs/credit-model.md)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.common.errors import InvalidArgument
from services.credit.model import (
    BEIJING,
    CompanyRecord,
    Fact,
    FactKind,
    Grade,
    Level,
    evaluate,
    grade_company,
    level_of,
    next_change,
)
from services.credit.model.v1 import rating_points

T0 = datetime(2025, 3, 10, 10, 0, tzinfo=BEIJING)
_ids = itertools.count()


def fact(kind: FactKind, when: datetime = T0, magnitude: int = 1, detail: str = "") -> Fact:
    if kind is FactKind.COMPLAINT_UPHELD and not detail:
        detail = "substantiated"
    return Fact(f"f-{next(_ids):04d}", "w-42", kind, when, magnitude, detail)


def score(facts: list[Fact], at: datetime) -> int:
    return evaluate(facts, at).score


def points(facts: list[Fact], at: datetime) -> list[int]:
    return [line.points for line in evaluate(facts, at).lines]


# -- the start and the levels ---------------------------------------------------------------


def test_a_worker_without_facts_starts_at_600_level_c() -> None:
    evaluation = evaluate([], T0)

    assert (evaluation.score, evaluation.level, evaluation.lines) == (600, Level.C, ())
    assert evaluation.model_version == "2026.1"


@pytest.mark.parametrize(
    ("score_", "level"),
    [
        (1000, Level.A),
        (800, Level.A),
        (799, Level.B),
        (650, Level.B),
        (649, Level.C),
        (500, Level.C),
        (499, Level.D),
        (0, Level.D),
    ],
)
def test_levels_at_the_thresholds(score_: int, level: Level) -> None:
    assert level_of(score_) is level


def test_every_gain_at_its_cap_reaches_level_a_at_exactly_800() -> None:
    facts = [fact(FactKind.ORDER_COMPLETED, T0 + timedelta(minutes=m)) for m in range(30)]
    facts += [fact(FactKind.CERTIFICATE_GRANTED, magnitude=4), fact(FactKind.AWARD, magnitude=3)]
    facts += [fact(FactKind.TRAINING_COMPLETED, magnitude=160)]

    evaluation = evaluate(facts, T0 + timedelta(hours=1))

    assert (evaluation.score, evaluation.level) == (800, Level.A)


def test_one_minor_complaint_takes_a_worker_at_800_down_to_b() -> None:
    facts = [fact(FactKind.ORDER_COMPLETED, T0 + timedelta(minutes=m)) for m in range(30)]
    facts += [fact(FactKind.CERTIFICATE_GRANTED, magnitude=4), fact(FactKind.AWARD, magnitude=3)]
    facts += [fact(FactKind.TRAINING_COMPLETED, magnitude=160), fact(FactKind.COMPLAINT_UPHELD, magnitude=1)]

    evaluation = evaluate(facts, T0 + timedelta(hours=1))

    assert (evaluation.score, evaluation.level) == (770, Level.B)


def test_the_score_is_clamped_at_0() -> None:
    facts = [fact(FactKind.COMPLAINT_UPHELD, T0 + timedelta(days=d), magnitude=3) for d in range(4)]

    assert sum(points(facts, T0 + timedelta(days=3))) < -600
    assert score(facts, T0 + timedelta(days=3)) == 0


# -- gains ----------------------------------------------------------------------------------


def test_completed_orders_earn_2_each_at_most_60_per_beijing_year() -> None:
    in_2025 = [fact(FactKind.ORDER_COMPLETED, T0 + timedelta(days=d)) for d in range(31)]
    # 16:30 UTC on New Year's Eve is already 2026 in Beijing: a new year's allowance.
    new_year = fact(FactKind.ORDER_COMPLETED, datetime(2025, 12, 31, 16, 30, tzinfo=UTC))
    at = datetime(2026, 1, 2, tzinfo=BEIJING)

    assert points(in_2025, at) == [2] * 30 + [0]
    assert score(in_2025, at) == 660
    assert score([*in_2025, new_year], at) == 662


def test_capped_order_says_so() -> None:
    orders = [fact(FactKind.ORDER_COMPLETED, T0 + timedelta(minutes=m)) for m in range(31)]

    last = evaluate(orders, T0 + timedelta(days=1)).lines[-1]

    assert last.reason == "order completed: +0, 60 of 60 in 2025"


@pytest.mark.parametrize(
    ("stars", "expected"),
    [([], 0), ([5], 5), ([5, 5], 9), ([5] * 5, 15), ([1], -15), ([1, 1], -26), ([4] * 20, 0), ([3], -5)],
)
def test_ratings_are_smoothed_with_a_prior_of_4_stars_weighing_5(stars: list[int], expected: int) -> None:
    facts = [fact(FactKind.RATING, T0 + timedelta(hours=i), magnitude=s) for i, s in enumerate(stars)]

    assert sum(points(facts, T0 + timedelta(days=2))) == expected


def test_rating_points_round_half_away_from_zero() -> None:
    # 30 × 1 / 12 = 2.5 and 30 × -1 / 12 = -2.5
    assert rating_points(4 * 7 + 1, 7) == 3
    assert rating_points(4 * 7 - 1, 7) == -3


def test_each_rating_line_is_what_it_moved_the_smoothed_mean() -> None:
    facts = [fact(FactKind.RATING, T0 + timedelta(hours=i), magnitude=5) for i in range(3)]

    lines = evaluate(facts, T0 + timedelta(days=1)).lines

    assert [line.points for line in lines] == [5, 4, 2]
    assert lines[1].reason == "rating, 5 stars: +4, smoothed mean 4.29 of 2"


def test_training_earns_1_per_8_hours_in_all_at_most_20() -> None:
    courses = [fact(FactKind.TRAINING_COMPLETED, T0 + timedelta(days=d), magnitude=4) for d in range(3)]
    long_course = fact(FactKind.TRAINING_COMPLETED, T0 + timedelta(days=5), magnitude=400)
    at = T0 + timedelta(days=10)

    assert points(courses, at) == [0, 1, 0]
    assert points([*courses, long_course], at) == [0, 1, 0, 19]


def test_only_the_highest_certificate_counts() -> None:
    level_1 = fact(FactKind.CERTIFICATE_GRANTED, T0, magnitude=1)
    level_3 = fact(FactKind.CERTIFICATE_GRANTED, T0 + timedelta(days=100), magnitude=3)
    level_2 = fact(FactKind.CERTIFICATE_GRANTED, T0 + timedelta(days=200), magnitude=2)

    lines = evaluate([level_1, level_3, level_2], T0 + timedelta(days=300)).lines

    assert [line.points for line in lines] == [15, 30, 0]
    assert lines[2].reason == "certificate 四级: +0, highest held 三级"


def test_awards_earn_20_per_tier_at_most_60() -> None:
    awards = [fact(FactKind.AWARD, T0 + timedelta(days=d), magnitude=2) for d in range(3)]

    assert points(awards, T0 + timedelta(days=5)) == [40, 20, 0]


def test_gains_do_not_fade() -> None:
    award = [fact(FactKind.AWARD, magnitude=1)]

    assert score(award, T0 + timedelta(days=2000)) == 620


# -- penalties and their fading -------------------------------------------------------------


def test_no_shows_escalate_within_28_days() -> None:
    no_shows = [fact(FactKind.NO_SHOW, T0 + timedelta(days=d)) for d in (0, 10, 20)]

    # faded 20, 10 and 0 days of 730: 40 × 710 // 730, 80 × 720 // 730, 120
    assert points(no_shows, T0 + timedelta(days=20)) == [-38, -78, -120]


def test_a_no_show_28_days_after_another_is_a_first_again() -> None:
    no_shows = [fact(FactKind.NO_SHOW, T0), fact(FactKind.NO_SHOW, T0 + timedelta(days=28))]
    just_within = [fact(FactKind.NO_SHOW, T0), fact(FactKind.NO_SHOW, T0 + timedelta(days=28, seconds=-1))]
    at = T0 + timedelta(days=28)

    assert evaluate(no_shows, at).lines[1].reason == "no-show, 1st within 28 days: -40, faded 0 %"
    assert evaluate(just_within, at).lines[1].reason == "no-show, 2nd within 28 days: -80, faded 0 %"


def test_the_reason_says_how_far_a_penalty_has_faded() -> None:
    no_shows = [fact(FactKind.NO_SHOW, T0), fact(FactKind.NO_SHOW, T0 + timedelta(days=1))]

    second = evaluate(no_shows, T0 + timedelta(days=1 + 183)).lines[1]

    assert second.reason == "no-show, 2nd within 28 days: -80, faded 25 %"
    assert second.points == -59  # 80 × 547 // 730


def test_a_severe_complaint_costs_200_and_half_after_12_months() -> None:
    severe = [fact(FactKind.COMPLAINT_UPHELD, magnitude=3)]

    assert points(severe, T0) == [-200]
    assert points(severe, datetime(2026, 3, 10, 10, 0, tzinfo=BEIJING)) == [-100]
    assert points(severe, datetime(2027, 3, 9, 23, 59, tzinfo=BEIJING)) == [0]


@pytest.mark.parametrize(
    ("severity", "detail", "expected"),
    [
        (1, "substantiated", -30),
        (2, "substantiated", -80),
        (3, "substantiated", -200),
        (1, "partly_substantiated", -15),
        (2, "partly_substantiated", -40),
        (3, "partly_substantiated", -100),
    ],
)
def test_complaints_by_severity_partly_substantiated_half(severity: int, detail: str, expected: int) -> None:
    assert points([fact(FactKind.COMPLAINT_UPHELD, magnitude=severity, detail=detail)], T0) == [expected]


def test_fading_counts_beijing_days_and_rounds_in_the_workers_favour() -> None:
    breach = [fact(FactKind.AGREEMENT_BREACHED, datetime(2025, 3, 10, 23, 0, tzinfo=BEIJING))]

    assert points(breach, datetime(2025, 3, 10, 23, 59, tzinfo=BEIJING)) == [-100]
    assert points(breach, datetime(2025, 3, 11, 0, 0, tzinfo=BEIJING)) == [-99]  # 100 × 729 // 730
    assert points(breach, datetime(2027, 3, 9, tzinfo=BEIJING)) == [0]  # day 729: 100 × 1 // 730


@pytest.mark.parametrize(("flags", "expected"), [(1, -150), (2, -300), (5, -300)])
def test_background_flags_cost_150_each_at_most_300(flags: int, expected: int) -> None:
    assert points([fact(FactKind.BACKGROUND_FLAGGED, magnitude=flags)], T0) == [expected]


@pytest.mark.parametrize(("fen", "expected"), [(0, -50), (99_999, -50), (250_000, -70), (5_000_000, -150)])
def test_at_fault_claims_cost_50_and_10_per_1000_yuan_at_most_150(fen: int, expected: int) -> None:
    assert points([fact(FactKind.CLAIM_PAID_AT_FAULT, magnitude=fen)], T0) == [expected]


# -- shown, not scored ----------------------------------------------------------------------


def test_suspension_requests_and_unknown_events_are_shown_with_0_points() -> None:
    unknown = Fact("e-9", "w-42", FactKind.UNSCORED, T0, source="jiazheng.workers.v1.HealthCheckPassed")
    suspension = fact(FactKind.SUSPENSION_REQUESTED)

    lines = {line.fact_id: line for line in evaluate([suspension, unknown], T0).lines}

    assert [line.points for line in lines.values()] == [0, 0]
    assert lines["e-9"].reason == "jiazheng.workers.v1.HealthCheckPassed: 0, not scored by model 2026.1"
    assert (
        lines[suspension.fact_id].reason == "suspension requested: 0, the upheld complaint carries the points"
    )


def test_facts_after_the_instant_are_ignored() -> None:
    later = fact(FactKind.COMPLAINT_UPHELD, T0 + timedelta(seconds=1), magnitude=3)

    assert evaluate([later], T0) == evaluate([], T0)
    assert score([later], T0 + timedelta(seconds=1)) == 400


def test_lines_come_oldest_first_whatever_the_order_given() -> None:
    a, b = fact(FactKind.AWARD, T0 + timedelta(days=1)), fact(FactKind.NO_SHOW, T0)

    lines = evaluate([a, b], T0 + timedelta(days=2)).lines

    assert [line.fact_id for line in lines] == [b.fact_id, a.fact_id]


def test_a_fact_given_twice_counts_once() -> None:
    award = fact(FactKind.AWARD)

    assert evaluate([award, award], T0) == evaluate([award], T0)


@pytest.mark.parametrize(
    "facts",
    [
        [Fact("x", "w-1", FactKind.AWARD, T0), Fact("x", "w-1", FactKind.NO_SHOW, T0)],
        [Fact("x", "w-1", FactKind.AWARD, T0), Fact("y", "w-2", FactKind.AWARD, T0)],
    ],
    ids=["conflicting ids", "two workers"],
)
def test_facts_must_be_one_workers_each_with_its_own_id(facts: list[Fact]) -> None:
    with pytest.raises(InvalidArgument):
        evaluate(facts, T0)


@pytest.mark.parametrize(
    ("kind", "magnitude", "detail"),
    [
        (FactKind.RATING, 6, ""),
        (FactKind.RATING, 0, ""),
        (FactKind.COMPLAINT_UPHELD, 4, "substantiated"),
        (FactKind.COMPLAINT_UPHELD, 1, "rumour"),
        (FactKind.CERTIFICATE_GRANTED, 5, ""),
        (FactKind.AWARD, 4, ""),
        (FactKind.TRAINING_COMPLETED, -1, ""),
    ],
)
def test_facts_out_of_range_are_refused(kind: FactKind, magnitude: int, detail: str) -> None:
    with pytest.raises(InvalidArgument):
        Fact("x", "w-1", kind, T0, magnitude, detail)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        Fact("x", "w-1", FactKind.AWARD, datetime(2025, 1, 1))
    with pytest.raises(InvalidArgument):
        evaluate([], datetime(2025, 1, 1))


# -- next_change ----------------------------------------------------------------------------


def test_next_change_finds_the_day_a_faded_penalty_lifts_d_to_c() -> None:
    facts = [fact(FactKind.COMPLAINT_UPHELD, magnitude=3), fact(FactKind.AGREEMENT_BREACHED)]
    at = T0 + timedelta(days=20)
    lifted = datetime(2026, 7, 5, tzinfo=BEIJING)  # day 482: 200 × 248 // 730 + 100 × 248 // 730 = 100

    assert evaluate(facts, at).level is Level.D
    assert next_change(facts, at) == lifted
    assert evaluate(facts, lifted - timedelta(microseconds=1)).score == 498  # 68 + 34 points still lost
    assert evaluate(facts, lifted).score == 500


def test_next_change_is_none_when_nothing_fades_across_a_level() -> None:
    assert next_change([fact(FactKind.AWARD), fact(FactKind.NO_SHOW)], T0) is None
    assert next_change([], T0) is None


def test_next_change_ignores_facts_after_the_instant() -> None:
    severe = fact(FactKind.COMPLAINT_UPHELD, magnitude=3)
    later = fact(FactKind.COMPLAINT_UPHELD, T0 + timedelta(days=30), magnitude=3)

    # day 362: 200 × 368 // 730 = 100 lost, C; the later complaint, if it counted, would hold D longer
    assert next_change([severe, later], T0 + timedelta(days=1)) == datetime(2026, 3, 7, tzinfo=BEIJING)


def test_the_worked_example_of_the_doc() -> None:
    stars = (5, 5, 4, 5, 3, 5, 5, 4, 5, 5, 4, 5)
    facts = [fact(FactKind.CERTIFICATE_GRANTED, _noon(2025, 3, 1), 3)]
    facts += [fact(FactKind.TRAINING_COMPLETED, _noon(2025, 3, 15), 24)]
    facts += [fact(FactKind.ORDER_COMPLETED, _noon(2025, 4, 1) + timedelta(days=7 * i)) for i in range(34)]
    facts += [fact(FactKind.ORDER_COMPLETED, _noon(2026, 1, 10) + timedelta(days=7 * i)) for i in range(5)]
    facts += [
        fact(FactKind.RATING, _noon(2025, 4, 2) + timedelta(days=30 * i), s) for i, s in enumerate(stars)
    ]
    facts += [fact(FactKind.NO_SHOW, _noon(2025, 9, 2)), fact(FactKind.NO_SHOW, _noon(2025, 9, 20))]
    facts += [fact(FactKind.COMPLAINT_UPHELD, _noon(2025, 11, 5), 2, "partly_substantiated")]
    at = _noon(2026, 6, 1)

    evaluation = evaluate(facts, at)

    by_kind = {kind: sum(line.points for line in evaluation.lines if line.kind is kind) for kind in FactKind}
    assert by_kind[FactKind.ORDER_COMPLETED] == 70
    assert by_kind[FactKind.RATING] == 12
    assert by_kind[FactKind.NO_SHOW] == -25 - 52
    assert by_kind[FactKind.COMPLAINT_UPHELD] == -28
    assert (evaluation.score, evaluation.level) == (625, Level.C)
    assert next_change(facts, at) == datetime(2026, 9, 21, tzinfo=BEIJING)


def _noon(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=BEIJING)


# -- companies ------------------------------------------------------------------------------

GOOD = CompanyRecord(
    complaints_received=10,
    complaints_resolved=9,
    median_response_hours=20,
    penalties=0,
    red_listed=False,
    black_listed=False,
    brand_designations=("北京市家政服务品牌",),
)


def test_a_company_is_graded_from_its_lines() -> None:
    grade = grade_company(GOOD, [720, 690, 810], T0)

    assert [(line.factor, line.points) for line in grade.lines] == [
        ("resolution", 27),
        ("response", 20),
        ("penalties", 0),
        ("designations", 5),
        ("red_list", 0),
        ("workers", 32),
    ]
    assert (grade.grade, grade.points, grade.graded_at) == (Grade.AA, 84, T0)


@pytest.mark.parametrize(
    ("changes", "expected_points", "expected"),
    [
        ({}, 88, Grade.AA),
        ({"brand_designations": ("北京市家政服务品牌", "领跑者", "巾帼家政")}, 93, Grade.AAA),
        ({"red_listed": True}, 98, Grade.AAA),
        ({"black_listed": True}, 88, Grade.C),
        ({"penalties": 2}, 58, Grade.B),
        ({"median_response_hours": 73, "complaints_resolved": 3}, 50, Grade.B),
        ({"median_response_hours": 48, "complaints_resolved": 6}, 69, Grade.A),
        ({"penalties": 7}, 0, Grade.C),
    ],
)
def test_lists_cap_designations_add_penalties_subtract(
    changes: dict[str, Any], expected_points: int, expected: Grade
) -> None:
    graded = grade_company(dataclasses.replace(GOOD, **changes), [770], T0)  # workers: 40 × 270 // 300 = 36

    assert (graded.points, graded.grade) == (expected_points, expected)


def test_workers_mean_score_counts() -> None:
    assert grade_company(GOOD, [800, 800], T0).points == 92
    assert grade_company(GOOD, [499], T0).points == 52
    assert grade_company(GOOD, [], T0).points == 52


def test_a_company_without_complaints_keeps_the_handling_points() -> None:
    quiet = CompanyRecord(0, 0, 0, 0, red_listed=False, black_listed=False)

    assert grade_company(quiet, [650], T0).points == 30 + 20 + 20


def test_more_resolved_than_received_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        CompanyRecord(1, 2, 0, 0, red_listed=False, black_listed=False)
