"""Credit model 2026.1: properties that hold for any ledger of random facts over three years."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import astuple, replace
from datetime import UTC, datetime, time, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from services.credit.model import (
    BEIJING,
    Fact,
    FactKind,
    Standing,
    Substantiation,
    evaluate,
    level_of,
    next_change,
    score_of,
)
from services.credit.model.v1 import FADE_DAYS

START = datetime(2024, 1, 1, tzinfo=BEIJING)
THREE_YEARS = 3 * 365 * 24 * 60  # minutes

MAGNITUDES: dict[FactKind, st.SearchStrategy[int]] = {
    FactKind.ORDER_COMPLETED: st.just(1),
    FactKind.RATING: st.integers(1, 5),
    FactKind.NO_SHOW: st.just(1),
    FactKind.COMPLAINT_UPHELD: st.integers(1, 3),
    FactKind.AGREEMENT_BREACHED: st.just(1),
    FactKind.SUSPENSION_REQUESTED: st.just(1),
    FactKind.TRAINING_COMPLETED: st.integers(0, 40),
    FactKind.CERTIFICATE_GRANTED: st.integers(1, 4),
    FactKind.BACKGROUND_FLAGGED: st.integers(0, 3),
    FactKind.CLAIM_PAID_AT_FAULT: st.integers(0, 3_000_000),
    FactKind.AWARD: st.integers(1, 3),
    FactKind.UNSCORED: st.integers(0, 5),
}
GAINS = (FactKind.ORDER_COMPLETED, FactKind.TRAINING_COMPLETED, FactKind.CERTIFICATE_GRANTED, FactKind.AWARD)
PENALTIES = (
    FactKind.NO_SHOW,
    FactKind.COMPLAINT_UPHELD,
    FactKind.AGREEMENT_BREACHED,
    FactKind.BACKGROUND_FLAGGED,
    FactKind.CLAIM_PAID_AT_FAULT,
)
NEUTRAL = (FactKind.SUSPENSION_REQUESTED, FactKind.UNSCORED)

PROPERTIES = settings(max_examples=100, deadline=None, database=None)

ZONES = (BEIJING, UTC, timezone(timedelta(hours=-5)))  # the ledger is read in UTC; callers give any zone
instants = st.builds(
    lambda minutes, zone: (START + timedelta(minutes=minutes)).astimezone(zone),
    st.integers(0, THREE_YEARS),
    st.sampled_from(ZONES),
)


@st.composite
def facts(draw: st.DrawFn, fact_id: str, kinds: Collection[FactKind] = tuple(FactKind)) -> Fact:
    kind = draw(st.sampled_from(sorted(kinds)))
    detail = draw(st.sampled_from(sorted(Substantiation))) if kind is FactKind.COMPLAINT_UPHELD else ""
    return Fact(fact_id, "w-42", kind, draw(instants), draw(MAGNITUDES[kind]), detail, "test")


@st.composite
def ledgers(draw: st.DrawFn, max_size: int = 40) -> list[Fact]:
    size = draw(st.integers(0, max_size))
    return [draw(facts(f"f-{i}")) for i in range(size)]


# A 5-star rating never lowers the smoothed mean, a 1-star rating never raises it.
gains = st.one_of(facts("gain", GAINS), facts("gain", [FactKind.RATING]).filter(lambda f: f.magnitude == 5))
penalties = st.one_of(
    facts("penalty", PENALTIES), facts("penalty", [FactKind.RATING]).filter(lambda f: f.magnitude == 1)
)


@PROPERTIES
@given(ledgers(max_size=80), instants)
def test_the_score_stays_within_0_and_1000(ledger: list[Fact], at: datetime) -> None:
    evaluation = evaluate(ledger, at)

    assert 0 <= evaluation.score <= 1000
    assert evaluation.level is level_of(evaluation.score)


@PROPERTIES
@given(ledgers(), instants)
def test_the_score_is_600_plus_the_lines_clamped(ledger: list[Fact], at: datetime) -> None:
    evaluation = evaluate(ledger, at)

    assert evaluation.score == min(1000, max(0, 600 + sum(line.points for line in evaluation.lines)))


@PROPERTIES
@given(ledgers(), instants)
def test_each_fact_by_the_instant_has_one_line_oldest_first(ledger: list[Fact], at: datetime) -> None:
    lines = evaluate(ledger, at).lines

    assert sorted(line.fact_id for line in lines) == sorted(f.fact_id for f in ledger if f.occurred_at <= at)
    assert [line.occurred_at for line in lines] == sorted(line.occurred_at for line in lines)


@PROPERTIES
@given(ledgers(), instants, st.data())
def test_order_does_not_matter(ledger: list[Fact], at: datetime, data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(ledger))

    assert evaluate(shuffled, at) == evaluate(ledger, at)


@PROPERTIES
@given(ledgers(), instants, gains)
def test_a_gain_never_lowers_the_score(ledger: list[Fact], at: datetime, gain: Fact) -> None:
    assert evaluate([*ledger, gain], at).score >= evaluate(ledger, at).score


@PROPERTIES
@given(ledgers(), instants, penalties)
def test_a_penalty_never_raises_the_score(ledger: list[Fact], at: datetime, penalty: Fact) -> None:
    assert evaluate([*ledger, penalty], at).score <= evaluate(ledger, at).score


@PROPERTIES
@given(ledgers(), instants, facts("neutral", NEUTRAL))
def test_suspensions_and_unscored_facts_score_0(ledger: list[Fact], at: datetime, neutral: Fact) -> None:
    assert evaluate([*ledger, neutral], at).score == evaluate(ledger, at).score


@PROPERTIES
@given(ledgers(), instants, instants)
def test_a_penalty_never_grows_as_time_passes(ledger: list[Fact], first: datetime, second: datetime) -> None:
    earlier, later = sorted((first, second))
    before = {line.fact_id: line.points for line in evaluate(ledger, earlier).lines}
    after = {line.fact_id: line.points for line in evaluate(ledger, later).lines}

    for fact in ledger:
        if fact.kind in PENALTIES and fact.fact_id in before:
            assert before[fact.fact_id] <= after[fact.fact_id] <= 0


@PROPERTIES
@given(ledgers(), instants, st.lists(st.integers(1, THREE_YEARS), max_size=5))
def test_facts_after_the_instant_change_nothing(ledger: list[Fact], at: datetime, delays: list[int]) -> None:
    severe = FactKind.COMPLAINT_UPHELD
    future = [
        Fact(f"later-{i}", "w-42", severe, at + timedelta(minutes=delay), 3, "substantiated")
        for i, delay in enumerate(delays)
    ]

    assert evaluate([*ledger, *future], at) == evaluate(ledger, at)


@PROPERTIES
@given(ledgers(), instants, st.integers(0, 2 * FADE_DAYS))
def test_with_no_new_fact_the_score_never_falls(ledger: list[Fact], at: datetime, days: int) -> None:
    known = [fact for fact in ledger if fact.occurred_at <= at]

    assert evaluate(known, at + timedelta(days=days)).score >= evaluate(known, at).score


def _next_change_day_by_day(ledger: list[Fact], at: datetime) -> datetime | None:
    """The reference: every Beijing midnight after ``at`` for 730 days, in turn."""
    known = [fact for fact in ledger if fact.occurred_at <= at]
    level = evaluate(known, at).level
    first = datetime.combine(at.astimezone(BEIJING).date() + timedelta(days=1), time(), BEIJING)
    midnights = (first + timedelta(days=day) for day in range(FADE_DAYS))
    return next((m for m in midnights if evaluate(known, m).level is not level), None)


@settings(max_examples=40, deadline=None, database=None)
@given(ledgers(max_size=12), instants)
def test_next_change_is_the_first_midnight_the_level_changes(ledger: list[Fact], at: datetime) -> None:
    assert next_change(ledger, at) == _next_change_day_by_day(ledger, at)


@PROPERTIES
@given(ledgers(max_size=80), instants)
def test_score_of_gives_the_score_and_level_evaluate_gives(ledger: list[Fact], at: datetime) -> None:
    evaluation = evaluate(ledger, at)

    assert score_of(ledger, at) == Standing(evaluation.score, evaluation.level, evaluation.model_version)


@PROPERTIES
@given(ledgers(), instants, st.sampled_from(ZONES), st.sampled_from(ZONES))
def test_the_zone_an_instant_is_given_in_changes_nothing(
    ledger: list[Fact], at: datetime, facts_zone: timezone, at_zone: timezone
) -> None:
    moved = [replace(fact, occurred_at=fact.occurred_at.astimezone(facts_zone)) for fact in ledger]

    assert evaluate(moved, at.astimezone(at_zone)) == evaluate(ledger, at)
    assert next_change(moved, at.astimezone(at_zone)) == next_change(ledger, at)


@PROPERTIES
@given(ledgers())
def test_a_fact_read_from_the_ledger_is_the_fact_that_was_written(ledger: list[Fact]) -> None:
    for fact in ledger:
        read = Fact.from_ledger(*astuple(fact))

        assert (read, hash(read), repr(read)) == (fact, hash(fact), repr(fact))
