"""Claims (domain/claims.py and domain/orders.py): filing checks, the adjudication rules of
docs/insurance.md in their order with their reasons, paying once and contesting a denial."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.errors import FailedPrecondition, InvalidArgument
from services.insurance.domain import claims as c
from services.insurance.domain.cover import Cover, CoverKind, CoverTerms, Exclusion, InsuredWorker
from services.insurance.domain.orders import Order, cover_order
from services.insurance.domain.vocabulary import ServiceType

POLICY = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
CHECK_IN = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing, 2 December
NOW = CHECK_IN + timedelta(hours=5)
PL = CoverTerms(CoverKind.PROFESSIONAL_LIABILITY, limit_fen=100_000_00, deductible_fen=500_00)
TERMS = {CoverKind.PROFESSIONAL_LIABILITY: PL}
EXCLUDED = frozenset({Exclusion.INTOXICATION, Exclusion.INTENTIONAL_ACT})
REQUEST = uuid.UUID("00000000-0000-0000-0000-0000000000f1")


def order(**changes: object) -> Order:
    base = Order(
        order_id="o-1",
        platform_id="p-1",
        company_id="co-1",
        worker_id="w-1",
        service_type=ServiceType.CLEANING,
        district_code="110105",
        scheduled_start=CHECK_IN,
        scheduled_end=CHECK_IN + timedelta(hours=4),
        check_in=CHECK_IN,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def cover(
    start: date = date(2026, 12, 1), end: date = date(2027, 11, 30), policy: uuid.UUID = POLICY
) -> Cover:
    insured = InsuredWorker(policy, "w-1", 2, frozenset({ServiceType.CLEANING}), start, end)
    return Cover(insured, "pl-1", "demo-insurer", "co-1", policy_expired=False)


def filing(
    incident: datetime | None = CHECK_IN + timedelta(hours=1), claimed: int = 3_000_00
) -> c.ClaimFiling:
    return c.ClaimFiling("o-1", CoverKind.PROFESSIONAL_LIABILITY, incident, claimed, "a vase broken")


def filed(claimed: int = 3_000_00, the_cover: Cover | None = None, now: datetime = NOW) -> c.Claim:
    return c.file_claim(uuid.uuid4(), filing(claimed=claimed), order(), the_cover or cover(), "co-1", now)


def standing(the_cover: Cover | None = None, used: int = 0) -> c.Standing:
    return c.Standing(the_cover or cover(), TERMS, EXCLUDED, used)


# -- the service window and order coverage ---------------------------------------------------


def test_the_window_runs_from_check_in_to_check_out_or_the_scheduled_end() -> None:
    assert order(check_in=None).window is None
    assert order().window == (CHECK_IN, CHECK_IN + timedelta(hours=4))
    assert order(check_out=CHECK_IN + timedelta(hours=6)).window == (CHECK_IN, CHECK_IN + timedelta(hours=6))
    late = CHECK_IN + timedelta(hours=5)
    assert order(check_in=late).window == (late, late)


def test_the_service_day_is_the_beijing_date_of_the_scheduled_start() -> None:
    evening_utc = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # 01:00 on 2 December in Beijing
    assert order(scheduled_start=evening_utc).service_day == date(2026, 12, 2)


def test_cover_order_records_the_policy_or_the_reason() -> None:
    covered = cover_order(order(), [cover()], NOW).coverage
    assert covered is not None
    assert (covered.covered, covered.policy_id, covered.insurer, covered.reason) == (
        True,
        POLICY,
        "demo-insurer",
        "",
    )
    uncovered = cover_order(order(), [cover(start=date(2026, 12, 3))], NOW).coverage
    assert uncovered is not None
    assert not uncovered.covered
    assert uncovered.reason == "cover not yet effective on 2026-12-02 (starts 2026-12-03)"


# -- filing ----------------------------------------------------------------------------------


def test_a_claim_is_filed_against_the_cover_with_the_order_s_parties() -> None:
    claim = filed()
    assert (claim.state, claim.policy_id, claim.insurer, claim.product_id) == (
        c.ClaimState.FILED,
        POLICY,
        "demo-insurer",
        "pl-1",
    )
    assert (claim.worker_id, claim.company_id, claim.service_type) == ("w-1", "co-1", ServiceType.CLEANING)
    assert claim.report_time == NOW
    assert not claim.late_report


def test_a_claim_needs_a_check_in() -> None:
    with pytest.raises(FailedPrecondition, match="no check-in"):
        c.file_claim(uuid.uuid4(), filing(), order(check_in=None), cover(), "co-1", NOW)


@pytest.mark.parametrize(
    "incident", [CHECK_IN - timedelta(seconds=1), CHECK_IN + timedelta(hours=4, seconds=1), None]
)
def test_the_incident_must_lie_inside_the_service_window(incident: datetime | None) -> None:
    with pytest.raises(InvalidArgument) as error:
        c.file_claim(uuid.uuid4(), filing(incident), order(), cover(), "co-1", NOW)
    assert error.value.field == "incident_time"


@pytest.mark.parametrize(("field", "bad"), [("claimed_fen", 0), ("description", "  ")])
def test_a_filing_names_the_bad_field(field: str, bad: object) -> None:
    bad_filing = dataclasses.replace(filing(), **{field: bad})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as error:
        c.file_claim(uuid.uuid4(), bad_filing, order(), cover(), "co-1", NOW)
    assert error.value.field == field


@pytest.mark.parametrize(("hours", "late"), [(48, False), (49, True)])
def test_a_report_more_than_48_hours_after_the_incident_is_flagged(hours: int, late: bool) -> None:
    incident = CHECK_IN + timedelta(hours=1)
    claim = filed(now=incident + timedelta(hours=hours))
    assert claim.late_report is late


def award(**changes: object) -> c.CompensationAward:
    base = c.CompensationAward("case-1", "o-1", "w-1", "co-1", 2_000_00, True, CHECK_IN + timedelta(hours=72))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_an_automatic_claim_takes_the_check_in_as_incident_and_the_complaint_as_report() -> None:
    claim = c.file_from_award(uuid.uuid4(), award(), order(), cover(), NOW)
    assert claim.filing.kind is CoverKind.PROFESSIONAL_LIABILITY
    assert (claim.filing.incident_time, claim.report_time, claim.filing.claimed_fen) == (
        CHECK_IN,
        CHECK_IN + timedelta(hours=72),
        2_000_00,
    )
    assert (claim.case_id, claim.worker_at_fault, claim.defect) == ("case-1", True, "")
    assert claim.late_report


@pytest.mark.parametrize(
    ("the_order", "defect"),
    [(None, "orders/o-1 is not known"), (order(check_in=None), "orders/o-1 has no check-in")],
)
def test_an_automatic_claim_without_its_order_or_check_in_is_filed_and_denied(
    the_order: Order | None, defect: str
) -> None:
    claim = c.file_from_award(uuid.uuid4(), award(), the_order, cover(), NOW)
    assert claim.defect == defect
    assert claim.filing.incident_time is None
    decided = c.adjudicate(claim, c.Assessment(1_000_00), standing(), REQUEST, NOW)
    assert decided.state is c.ClaimState.DENIED
    assert decided.adjudication is not None
    assert decided.adjudication.reasons == (defect,)


# -- which cover a claim is judged against -----------------------------------------------------


def test_cover_for_prefers_the_order_s_recorded_policy_among_those_that_insure() -> None:
    other = cover(policy=uuid.UUID(int=2), end=date(2027, 12, 31))
    assert c.cover_for([other, cover()], ServiceType.CLEANING, date(2026, 12, 2), POLICY) == cover()
    assert c.cover_for([other, cover()], ServiceType.CLEANING, date(2026, 12, 2), None) == other


def test_cover_for_falls_back_to_the_nearest_cover_to_explain_a_denial() -> None:
    past = cover(start=date(2025, 1, 1), end=date(2025, 12, 31), policy=uuid.UUID(int=3))
    future = cover(start=date(2026, 12, 10))
    assert c.cover_for([past, future], ServiceType.CLEANING, date(2026, 12, 2)) == future
    assert c.cover_for([], ServiceType.CLEANING, date(2026, 12, 2)) is None


# -- adjudication, rule by rule --------------------------------------------------------------


def decided(claim: c.Claim, assessment: c.Assessment, the_standing: c.Standing) -> c.Adjudication:
    adjudication = c.adjudicate(claim, assessment, the_standing, REQUEST, NOW).adjudication
    assert adjudication is not None
    return adjudication


def test_rule_1_no_cover_is_denied() -> None:
    result = decided(filed(), c.Assessment(1_000_00), c.Standing(None, TERMS, EXCLUDED))
    assert (result.decision, result.reasons) == (c.Decision.DENIED, ("no cover",))


def test_rule_1_a_cover_that_does_not_insure_the_service_is_no_cover() -> None:
    elderly = order(service_type=ServiceType.ELDERLY_CARE)
    claim = c.file_claim(uuid.uuid4(), filing(), elderly, cover(), "co-1", NOW)
    assert decided(claim, c.Assessment(1_000_00), standing()).reasons == (
        "no cover: not insured for elderly_care",
    )


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (date(2026, 12, 3), date(2027, 12, 2), "cover not yet effective on 2026-12-02 (starts 2026-12-03)"),
        (date(2025, 12, 2), date(2026, 12, 1), "cover ended on 2026-12-01"),
    ],
)
def test_rule_2_an_incident_outside_the_cover_s_days_is_denied(start: date, end: date, reason: str) -> None:
    outside = cover(start=start, end=end)
    result = decided(filed(the_cover=outside), c.Assessment(1_000_00), standing(outside))
    assert (result.decision, result.reasons) == (c.Decision.DENIED, (reason,))


def test_rule_2_a_policy_expired_since_still_answers_for_an_incident_inside_its_days() -> None:
    expired = dataclasses.replace(cover(), policy_expired=True)
    assert decided(filed(), c.Assessment(3_000_00), standing(expired)).decision is c.Decision.APPROVED


def test_rule_3_a_kind_the_product_does_not_offer_is_denied() -> None:
    result = decided(filed(), c.Assessment(1_000_00), c.Standing(cover(), {}, EXCLUDED))
    assert result.reasons == ("product pl-1 does not offer professional_liability",)
    assert result.decision is c.Decision.DENIED


def test_rule_4_an_exclusion_the_product_lists_is_denied_by_name_others_do_not_count() -> None:
    found = frozenset({Exclusion.INTOXICATION, Exclusion.INTENTIONAL_ACT, Exclusion.WAR_OR_NUCLEAR})
    result = decided(filed(), c.Assessment(1_000_00, found), standing())
    assert result.reasons == ("excluded: intentional_act", "excluded: intoxication")
    unlisted = decided(filed(), c.Assessment(1_000_00, frozenset({Exclusion.WAR_OR_NUCLEAR})), standing())
    assert unlisted.decision is c.Decision.PARTLY_APPROVED


def test_rule_5_a_loss_within_the_deductible_is_denied() -> None:
    result = decided(filed(), c.Assessment(500_00), standing())
    assert result.decision is c.Decision.DENIED
    assert result.reasons == ("within the deductible: assessed ¥500.00, deductible ¥500.00",)


def test_rule_6_approved_when_only_the_deductible_was_taken() -> None:
    result = decided(filed(), c.Assessment(3_000_00), standing())
    assert (result.decision, result.payable_fen, result.reasons) == (
        c.Decision.APPROVED,
        2_500_00,
        ("deductible ¥500.00 taken",),
    )


def test_rule_6_partly_approved_when_assessed_below_the_claim() -> None:
    result = decided(filed(), c.Assessment(2_000_00), standing())
    assert (result.decision, result.payable_fen) == (c.Decision.PARTLY_APPROVED, 1_500_00)
    assert result.reasons[1] == "assessed ¥2000.00 of the ¥3000.00 claimed"


def test_rule_6_a_claim_over_the_remaining_limit_is_capped_with_the_reason() -> None:
    claim = filed(claimed=200_000_00)
    result = decided(claim, c.Assessment(200_000_00), standing(used=40_000_00))
    assert (result.decision, result.payable_fen) == (c.Decision.PARTLY_APPROVED, 60_000_00)
    assert (
        result.reasons[-1]
        == "capped at the remaining limit ¥60000.00 of ¥100000.00 (¥40000.00 used by earlier claims)"
    )


def test_rule_6_a_used_up_limit_is_denied() -> None:
    result = decided(filed(), c.Assessment(3_000_00), standing(used=PL.limit_fen))
    assert (result.decision, result.reasons) == (
        c.Decision.DENIED,
        ("limit ¥100000.00 used up by earlier claims",),
    )


def test_the_rules_apply_in_order_the_first_that_denies_gives_the_reason() -> None:
    ended = cover(start=date(2025, 12, 2), end=date(2026, 12, 1))
    everything_wrong = c.Standing(ended, {}, EXCLUDED, used_fen=PL.limit_fen)
    result = decided(filed(the_cover=ended), c.Assessment(100, EXCLUDED), everything_wrong)
    assert result.reasons == ("cover ended on 2026-12-01",)


@given(
    claimed=st.integers(1, 10**9),
    assessed_share=st.fractions(0, 1),
    deductible=st.integers(0, 10**6),
    limit=st.integers(0, 10**9),
    used=st.integers(0, 10**9),
)
def test_payable_never_exceeds_assessed_less_deductible_nor_the_remaining_limit_and_caps_are_said(
    claimed: int, assessed_share: object, deductible: int, limit: int, used: int
) -> None:
    assessed = int(claimed * assessed_share)  # type: ignore[operator]
    terms = {
        CoverKind.PROFESSIONAL_LIABILITY: CoverTerms(CoverKind.PROFESSIONAL_LIABILITY, limit, deductible)
    }
    result = decided(
        filed(claimed=claimed), c.Assessment(assessed), c.Standing(cover(), terms, EXCLUDED, used)
    )
    assert 0 <= result.payable_fen <= max(0, assessed - deductible)
    assert result.payable_fen <= max(0, limit - used)
    assert (result.decision is c.Decision.DENIED) == (result.payable_fen == 0)
    assert result.reasons
    if 0 < result.payable_fen < assessed - deductible:
        assert any(reason.startswith("capped at the remaining limit") for reason in result.reasons)
    if result.decision is c.Decision.APPROVED:
        assert result.payable_fen == assessed - deductible == claimed - deductible


@pytest.mark.parametrize("assessed", [-1, 3_000_01])
def test_the_assessment_lies_between_zero_and_the_claimed_amount(assessed: int) -> None:
    with pytest.raises(InvalidArgument) as error:
        c.adjudicate(filed(), c.Assessment(assessed), standing(), REQUEST, NOW)
    assert error.value.field == "assessed_fen"


def test_the_insurer_s_finding_of_fault_replaces_the_filed_one() -> None:
    claim = c.file_from_award(uuid.uuid4(), award(), order(), cover(), NOW)
    kept = c.adjudicate(claim, c.Assessment(1_000_00), standing(), REQUEST, NOW)
    overruled = c.adjudicate(claim, c.Assessment(1_000_00, worker_at_fault=False), standing(), REQUEST, NOW)
    assert (kept.worker_at_fault, overruled.worker_at_fault) == (True, False)


# -- once: adjudicate, pay, contest ------------------------------------------------------------


def test_a_claim_is_adjudicated_once_a_retry_returns_it_unchanged() -> None:
    claim = c.adjudicate(filed(), c.Assessment(3_000_00), standing(), REQUEST, NOW)
    assert c.adjudicate(claim, c.Assessment(1), standing(), REQUEST, NOW) is claim
    with pytest.raises(FailedPrecondition, match="adjudicate a claim that is adjudicated"):
        c.adjudicate(claim, c.Assessment(3_000_00), standing(), uuid.uuid4(), NOW)


def test_a_claim_is_paid_once_a_retry_returns_it_unchanged() -> None:
    paid = c.pay(c.adjudicate(filed(), c.Assessment(3_000_00), standing(), REQUEST, NOW), REQUEST, NOW)
    assert (paid.state, paid.paid_at, paid.payable_fen) == (c.ClaimState.PAID, NOW, 2_500_00)
    assert c.pay(paid, REQUEST, NOW) is paid
    with pytest.raises(FailedPrecondition, match="pay a claim that is paid"):
        c.pay(paid, uuid.uuid4(), NOW)
    with pytest.raises(FailedPrecondition, match="adjudicate a claim that is paid"):
        c.adjudicate(paid, c.Assessment(3_000_00), standing(), uuid.uuid4(), NOW)


def test_a_filed_or_denied_claim_cannot_be_paid() -> None:
    with pytest.raises(FailedPrecondition, match="filed"):
        c.pay(filed(), REQUEST, NOW)
    denied = c.adjudicate(filed(), c.Assessment(100), standing(), REQUEST, NOW)
    with pytest.raises(FailedPrecondition, match="denied"):
        c.pay(denied, uuid.uuid4(), NOW)


def test_only_a_denial_may_be_contested_once() -> None:
    approved = c.adjudicate(filed(), c.Assessment(3_000_00), standing(), REQUEST, NOW)
    with pytest.raises(FailedPrecondition, match="adjudicated"):
        c.contest(approved, "unfair", REQUEST, NOW)
    denied = c.adjudicate(filed(), c.Assessment(100), standing(), REQUEST, NOW)
    with pytest.raises(InvalidArgument, match="reason"):
        c.contest(denied, " ", REQUEST, NOW)
    contested = c.contest(denied, "the loss was higher", REQUEST, NOW)
    assert contested.state is c.ClaimState.CONTESTED
    assert c.contest(contested, "again", REQUEST, NOW) is contested
    with pytest.raises(FailedPrecondition, match="contested"):
        c.contest(contested, "again", uuid.uuid4(), NOW)
