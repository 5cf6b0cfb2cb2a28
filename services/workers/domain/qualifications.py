"""What qualifies a worker: background checks, health checks (体检), training and skill
certificates, and the pay band a skill level maps to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import IntEnum, StrEnum

from libs.common.errors import InvalidArgument

DEFAULT_HEALTH_VALIDITY_MONTHS = 12  # our default; provinces require a report from the last year


class Trade(StrEnum):
    """The three trades of the national standard (家政服务员国家职业技能标准 2019)."""

    MATERNITY_NURSE = "maternity_nurse"  # 母婴护理员
    HOUSEKEEPER = "housekeeper"  # 家务服务员
    FAMILY_CARER = "family_carer"  # 家庭照护员


class SkillLevel(IntEnum):
    """National skill levels, from the lowest; a higher value is a higher level."""

    LEVEL_5 = 1  # 五级/初级
    LEVEL_4 = 2  # 四级/中级
    LEVEL_3 = 3  # 三级/高级
    LEVEL_2 = 4  # 二级/技师


class SpecialAbility(StrEnum):
    """Beijing's "北京家政" special abilities."""

    MATERNAL_INFANT_CARE = "maternal_infant_care"  # 母婴照护
    CHILD_CARE = "child_care"  # 幼儿照护
    ELDERLY_CARE = "elderly_care"  # 老年人照护
    PATIENT_CARE = "patient_care"  # 病人照护
    HOME_COOKING = "home_cooking"  # 家庭烹饪
    HOME_CLEANING = "home_cleaning"  # 家庭清洁
    APPLIANCE_CLEANING = "appliance_cleaning"  # 家电清洗


class HealthTier(IntEnum):
    """Health-check tiers (商服贸规函〔2020〕191号), least strict first: a higher tier satisfies a lower."""

    GENERAL = 1  # 一般
    LIVE_IN = 2  # 居家
    ELDERLY_CARE = 3  # 养老照护
    MATERNAL_INFANT = 4  # 母婴照护

    def satisfies(self, required: HealthTier) -> bool:
        return self >= required


@dataclass(frozen=True)
class BackgroundCheck:
    """The national background check (商务部 with 公安部), recorded by an operator."""

    identity_genuine: bool
    listed_crime_within_5_years: bool
    severe_mental_illness: bool
    drug_offence_within_3_years: bool
    checked_on: date

    @property
    def flags(self) -> tuple[str, ...]:
        """What the check found against the worker; empty when it passed."""
        found = {
            "identity_not_genuine": not self.identity_genuine,
            "listed_crime_within_5_years": self.listed_crime_within_5_years,
            "severe_mental_illness": self.severe_mental_illness,
            "drug_offence_within_3_years": self.drug_offence_within_3_years,
        }
        return tuple(flag for flag, present in found.items() if present)

    @property
    def passed(self) -> bool:
        return not self.flags


@dataclass(frozen=True)
class HealthCheck:
    tier: HealthTier
    issued_on: date
    valid_until: date  # the last day it is valid
    hospital: str
    certificate_no: str

    def valid_on(self, day: date) -> bool:
        return self.issued_on <= day <= self.valid_until


def record_health_check(
    tier: HealthTier,
    issued_on: date,
    hospital: str,
    certificate_no: str,
    today: date,
    validity_months: int = DEFAULT_HEALTH_VALIDITY_MONTHS,
) -> HealthCheck:
    if issued_on > today:
        raise InvalidArgument("issue_date", "must not be in the future")
    valid_until = _add_months(issued_on, validity_months)
    if valid_until < today:
        raise InvalidArgument("issue_date", f"the check expired on {valid_until.isoformat()}")
    _text("hospital", hospital)
    _text("certificate_number", certificate_no)
    return HealthCheck(tier, issued_on, valid_until, hospital.strip(), certificate_no.strip())


def _add_months(day: date, months: int) -> date:
    """The day before the same date ``months`` later (a 12-month check of 2024-03-01 ends 2025-02-28)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    try:
        anniversary = day.replace(year=year, month=month)
    except ValueError:  # 29-31 of a shorter month: the next month's first day
        anniversary = date(year + month // 12, month % 12 + 1, 1)
    return date.fromordinal(anniversary.toordinal() - 1)


@dataclass(frozen=True)
class Training:
    """A training course a worker took (retraining every 2 years is provincial practice)."""

    course: str
    provider: str
    hours: int
    completed_on: date
    exam_passed: bool


def record_training(training: Training, today: date) -> Training:
    _text("course", training.course)
    _text("provider", training.provider)
    if not 1 <= training.hours <= 2000:
        raise InvalidArgument("hours", "must be 1 to 2000")
    if training.completed_on > today:
        raise InvalidArgument("completion_date", "must not be in the future")
    return training


@dataclass(frozen=True)
class SkillCertificate:
    """A national skill certificate: a level in one trade, or a Beijing special ability."""

    trade: Trade
    level: SkillLevel
    certificate_no: str
    issued_on: date
    special_abilities: tuple[SpecialAbility, ...] = ()


def record_certificate(certificate: SkillCertificate, today: date) -> SkillCertificate:
    _text("certificate_number", certificate.certificate_no)
    if certificate.issued_on > today:
        raise InvalidArgument("issue_date", "must not be in the future")
    return certificate


@dataclass(frozen=True)
class PayBand:
    """Hourly pay guidance for a skill level (policy part 6), in fen."""

    level: SkillLevel
    min_fen_per_hour: int
    max_fen_per_hour: int


# Our default bands (configurable); they order with the levels and do not overlap.
DEFAULT_PAY_BANDS = (
    PayBand(SkillLevel.LEVEL_5, 3_000, 4_500),
    PayBand(SkillLevel.LEVEL_4, 4_500, 6_000),
    PayBand(SkillLevel.LEVEL_3, 6_000, 8_000),
    PayBand(SkillLevel.LEVEL_2, 8_000, 12_000),
)


def check_pay_bands(bands: tuple[PayBand, ...]) -> tuple[PayBand, ...]:
    """A configured table: one band per level, each within itself and above the level below."""
    ordered = tuple(sorted(bands, key=lambda b: b.level))
    if [b.level for b in ordered] != list(SkillLevel):
        raise ValueError("pay bands: exactly one band per skill level")
    for lower, band in zip((None, *ordered), ordered, strict=False):
        if band.min_fen_per_hour > band.max_fen_per_hour or band.min_fen_per_hour < 0:
            raise ValueError(f"pay band {band.level.name}: min must be 0..max")
        if lower is not None and band.min_fen_per_hour < lower.max_fen_per_hour:
            raise ValueError(f"pay band {band.level.name} overlaps the level below")
    return ordered


def _text(field: str, value: str, max_len: int = 100) -> None:
    if not 1 <= len(value.strip()) <= max_len:
        raise InvalidArgument(field, f"must be 1 to {max_len} characters")
