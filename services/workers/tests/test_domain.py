"""Workers domain rules: check characters, ages, companies, health checks, the card colour."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from libs.common.errors import FailedPrecondition, InvalidArgument
from services.workers import domain as d

NOW = datetime(2026, 11, 30, 9, tzinfo=UTC)
TODAY = NOW.date()
# The examples printed in GB 11643-1999 itself.
ID_1949 = "11010519491231002X"
ID_1880 = "440524188001010014"
# Unified social credit codes of registered companies (public records).
USCC = ("91350100M000100Y43", "91110108551385082Q", "911100001000044477")


def id_born(born: date) -> str:
    """A resident ID number with a correct check character for a Beijing 朝阳 birth on ``born``."""
    first17 = f"110105{born:%Y%m%d}123"
    return first17 + d.identity.id_check_character(first17)


@pytest.mark.parametrize("number", [ID_1949, ID_1949.lower(), ID_1880])
def test_resident_ids_from_the_standard_are_accepted(number: str) -> None:
    assert d.resident_id(number).number == number.upper()


def test_resident_id_birth_date_is_read_from_digits_7_to_14() -> None:
    assert d.resident_id(ID_1949).birth_date == date(1949, 12, 31)


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("110105194912310021", "check character"),
        ("11010519491231002", "17 digits"),
        ("1101051949123100XX", "17 digits"),
        ("110105194902300023", "birth date"),  # 30 February, check character correct
        ("", "17 digits"),
    ],
)
def test_bad_resident_ids_name_the_field_and_the_reason(number: str, why: str) -> None:
    if why == "birth date":
        number = number[:17] + d.identity.id_check_character(number[:17])
    with pytest.raises(InvalidArgument) as err:
        d.resident_id(number)
    assert err.value.field == "id_number"
    assert why in err.value.description


@pytest.mark.parametrize("code", USCC)
def test_real_social_credit_codes_pass_the_gb_32100_check(code: str) -> None:
    assert d.social_credit_code(code.lower()) == code


@pytest.mark.parametrize("code", ["91350100M000100Y44", "91350100M000100Y4", "91350100M0001I0Y43"])
def test_bad_social_credit_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        d.social_credit_code(code)
    assert err.value.field == "social_credit_code"


@pytest.mark.parametrize(
    ("mobile", "ok"), [("13800138000", True), ("12800138000", False), ("1380013800", False)]
)
def test_mobile_numbers(mobile: str, ok: bool) -> None:
    if ok:
        assert d.mobile_number(mobile) == mobile
    else:
        with pytest.raises(InvalidArgument):
            d.mobile_number(mobile)


def company_draft(**changes: object) -> d.CompanyDraft:
    fields: dict[str, object] = {
        "social_credit_code": USCC[0],
        "name": "北京好家政有限公司",
        "premises_m2": 50,
        "outlets": (d.Outlet("望京社区网点", "110105"),),
        "employment_model": d.EmploymentModel.EMPLOYEE,
    }
    return d.CompanyDraft(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_company_with_50_square_metres_registers() -> None:
    company = d.register_company(company_draft(), NOW)
    assert (company.premises_m2, company.outlets[0].district_code) == (50, "110105")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"premises_m2": 49}, "premises_m2"),
        ({"name": "  "}, "name"),
        ({"outlets": (d.Outlet("网点", "110103"),)}, "outlets[0].district_code"),
        ({"social_credit_code": "91350100M000100Y44"}, "social_credit_code"),
    ],
)
def test_company_rules(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        d.register_company(company_draft(**changes), NOW)
    assert err.value.field == field


def worker_draft(**changes: object) -> d.WorkerDraft:
    fields: dict[str, object] = {
        "id_number": id_born(date(1980, 5, 17)),
        "name": "王芳",
        "mobile": "13800138000",
        "photo_ref": "photos/abc.jpg",
        "service_districts": ("110108", "110105", "110108"),
        "trades": (d.Trade.HOUSEKEEPER,),
    }
    return d.WorkerDraft(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_worker_registers_with_districts_deduplicated_and_one_employment() -> None:
    company = uuid.uuid4()
    worker = d.register_worker(worker_draft(), company, NOW)
    assert worker.service_districts == ("110105", "110108")
    assert worker.company_id == company
    assert worker.employments == (d.Employment(company, NOW),)


@pytest.mark.parametrize(
    ("born", "ok"),
    [
        (date(2010, 11, 30), True),  # 16 today
        (date(2010, 12, 1), False),  # 16 tomorrow
        (date(1956, 12, 1), True),  # 70 until tomorrow
        (date(1955, 11, 30), False),  # 71 today
    ],
)
def test_workers_are_16_to_70_on_the_day_they_register(born: date, ok: bool) -> None:
    draft = worker_draft(id_number=id_born(born))
    if ok:
        assert d.register_worker(draft, uuid.uuid4(), NOW).identity.birth_date == born
    else:
        with pytest.raises(InvalidArgument, match="16 to 70"):
            d.register_worker(draft, uuid.uuid4(), NOW)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"service_districts": ()}, "service_districts"),
        ({"service_districts": ("110105", "120101")}, "service_districts[1]"),
        ({"trades": ()}, "trades"),
        ({"mobile": "02012345678"}, "mobile"),
        ({"origin_province": "5100"}, "origin_province"),
        ({"photo_ref": "a b"}, "photo_ref"),
    ],
)
def test_worker_rules(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        d.register_worker(worker_draft(**changes), uuid.uuid4(), NOW)
    assert err.value.field == field


def test_a_move_keeps_the_employment_history() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    worker = d.register_worker(worker_draft(), first, NOW)
    later = NOW + timedelta(days=30)
    moved = d.move_worker(worker, second, later)
    assert moved.employments == (d.Employment(first, NOW, later), d.Employment(second, later))
    with pytest.raises(FailedPrecondition):
        d.move_worker(moved, second, later)


@pytest.mark.parametrize(
    ("issued", "valid_until"),
    [
        (date(2026, 3, 1), date(2027, 2, 28)),
        (date(2026, 1, 31), date(2027, 1, 30)),
        (date(2024, 2, 29), date(2025, 2, 28)),  # no 29 February next year: ends the day before 1 March
    ],
)
def test_a_health_check_is_valid_for_12_months(issued: date, valid_until: date) -> None:
    today = max(issued, date(2025, 2, 1))
    check = d.record_health_check(d.HealthTier.LIVE_IN, issued, "北京协和医院", "TJ-1", today)
    assert check.valid_until == valid_until
    assert check.valid_on(valid_until)
    assert not check.valid_on(valid_until + timedelta(days=1))


def test_a_health_check_expired_or_in_the_future_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="expired on 2025-11-29"):
        d.record_health_check(d.HealthTier.GENERAL, date(2024, 11, 30), "医院", "TJ-1", TODAY)
    with pytest.raises(InvalidArgument, match="future"):
        d.record_health_check(d.HealthTier.GENERAL, TODAY + timedelta(days=1), "医院", "TJ-1", TODAY)


def test_a_higher_health_tier_satisfies_a_lower_one() -> None:
    assert d.HealthTier.MATERNAL_INFANT.satisfies(d.HealthTier.ELDERLY_CARE)
    assert not d.HealthTier.GENERAL.satisfies(d.HealthTier.LIVE_IN)


def test_pay_bands_must_cover_every_level_without_overlap() -> None:
    assert [b.level for b in d.check_pay_bands(d.DEFAULT_PAY_BANDS)] == list(d.SkillLevel)
    overlapping = (*d.DEFAULT_PAY_BANDS[:3], d.PayBand(d.SkillLevel.LEVEL_2, 7_000, 9_000))
    with pytest.raises(ValueError, match="overlaps"):
        d.check_pay_bands(overlapping)
    with pytest.raises(ValueError, match="one band per"):
        d.check_pay_bands(d.DEFAULT_PAY_BANDS[:3])


PASSED = d.BackgroundCheck(True, False, False, False, date(2026, 1, 5))
HEALTHY = (d.HealthCheck(d.HealthTier.LIVE_IN, date(2026, 1, 10), date(2027, 1, 9), "医院", "TJ-1"),)


def inputs(**changes: object) -> d.CardStatusInputs:
    fields: dict[str, object] = {
        "background_check": PASSED,
        "health_checks": HEALTHY,
        "insured_until": date(2027, 6, 30),
    }
    return d.CardStatusInputs(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "colour", "reasons"),
    [
        ({}, d.CardColour.GREEN, ()),
        ({"health_checks": ()}, d.CardColour.YELLOW, (d.Reason.HEALTH_CHECK_MISSING,)),
        ({"insured_until": date(2026, 11, 29)}, d.CardColour.YELLOW, (d.Reason.INSURANCE_EXPIRED,)),
        ({"insured_until": None}, d.CardColour.YELLOW, (d.Reason.INSURANCE_MISSING,)),
        ({"background_check": None}, d.CardColour.YELLOW, (d.Reason.BACKGROUND_CHECK_PENDING,)),
        (
            {"background_check": d.BackgroundCheck(True, True, False, False, date(2026, 1, 5))},
            d.CardColour.RED,
            (d.Reason.BACKGROUND_CHECK_FAILED,),
        ),
        (
            {"background_check": d.BackgroundCheck(False, False, False, False, date(2026, 1, 5))},
            d.CardColour.RED,
            (d.Reason.IDENTITY_NOT_GENUINE,),
        ),
        (
            {"revoked": True, "health_checks": ()},
            d.CardColour.RED,
            (d.Reason.CARD_REVOKED, d.Reason.HEALTH_CHECK_MISSING),
        ),
        ({"credit_level": "D"}, d.CardColour.RED, (d.Reason.CREDIT_LEVEL_D,)),
        ({"credit_level": "C"}, d.CardColour.GREEN, ()),
        ({"suspended": True}, d.CardColour.RED, (d.Reason.SUSPENDED,)),
    ],
)
def test_card_colour_follows_the_anxin_rule(
    changes: dict[str, object], colour: d.CardColour, reasons: tuple[d.Reason, ...]
) -> None:
    assert d.card_status(inputs(**changes), TODAY) == (colour, reasons)


def test_a_card_turns_yellow_the_day_after_its_health_check_lapses() -> None:
    lapses = HEALTHY[0].valid_until
    assert d.card_status(inputs(), lapses)[0] is d.CardColour.GREEN
    assert d.card_status(inputs(), lapses + timedelta(days=1)) == (
        d.CardColour.YELLOW,
        (d.Reason.HEALTH_CHECK_EXPIRED,),
    )


def test_a_consent_grant_lasts_24_hours_unless_revoked() -> None:
    grant = d.grant_consent(uuid.uuid4(), "demo-platform", "consumer-42", NOW)
    assert grant.active(NOW + timedelta(hours=23, minutes=59))
    assert not grant.active(NOW + timedelta(hours=24))
    revoked = d.revoke_consent(grant, NOW + timedelta(hours=1))
    assert not revoked.active(NOW + timedelta(hours=2))
    with pytest.raises(FailedPrecondition):
        d.revoke_consent(revoked, NOW + timedelta(hours=3))
    with pytest.raises(InvalidArgument):
        d.grant_consent(uuid.uuid4(), "p", "c", NOW, timedelta(days=31))


def test_the_next_lapse_is_the_day_after_the_first_validity_to_end() -> None:
    assert d.next_lapse(inputs(), TODAY) == date(2027, 1, 10)  # health ends 2027-01-09
    assert d.next_lapse(inputs(insured_until=TODAY), TODAY) == TODAY + timedelta(days=1)
    assert d.next_lapse(inputs(health_checks=(), insured_until=None), TODAY) is None
