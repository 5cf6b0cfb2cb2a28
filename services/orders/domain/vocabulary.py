"""The words orders shares with the workers and credit contracts, as orders' own enums.

Services own their domains, so orders does not import the workers service's code: these enums
repeat the names and numbers of ``jiazheng.workers.v1`` (Trade, SkillLevel, HealthTier, CardColour)
and ``jiazheng.credit.events.v1`` (CreditLevel), and a unit test fails when they drift apart.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ServiceType(StrEnum):
    """Kinds of household service (家政服务类型) from the Beijing model contract."""

    CLEANING = "cleaning"  # 保洁/钟点工
    LIVE_IN_HOUSEKEEPER = "live_in_housekeeper"  # 住家保姆
    MATERNITY = "maternity"  # 月嫂
    INFANT_CARE = "infant_care"  # 育儿嫂
    ELDERLY_CARE = "elderly_care"  # 养老护理
    PATIENT_CARE = "patient_care"  # 病患护理
    APPLIANCE_CLEANING = "appliance_cleaning"  # 家电清洗
    ORGANISING = "organising"  # 整理收纳
    AGE_FRIENDLY_ADAPTATION = "age_friendly_adaptation"  # 适老化改造


class Trade(StrEnum):
    """The three trades of the national standard (家政服务员国家职业技能标准 2019)."""

    MATERNITY_NURSE = "maternity_nurse"  # 母婴护理员
    HOUSEKEEPER = "housekeeper"  # 家务服务员
    FAMILY_CARER = "family_carer"  # 家庭照护员


class SkillLevel(IntEnum):
    """National skill levels, lowest first; a higher value is a higher level."""

    LEVEL_5 = 1  # 五级/初级
    LEVEL_4 = 2  # 四级/中级
    LEVEL_3 = 3  # 三级/高级
    LEVEL_2 = 4  # 二级/技师


class HealthTier(IntEnum):
    """Health-check tiers (商服贸规函〔2020〕191号), least strict first: a higher tier satisfies a lower."""

    GENERAL = 1  # 一般
    LIVE_IN = 2  # 居家
    ELDERLY_CARE = 3  # 养老照护
    MATERNAL_INFANT = 4  # 母婴照护


class CardColour(StrEnum):
    """The service card's status colour (DOMAIN §4); only GREEN workers are dispatched."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class CreditLevel(StrEnum):
    """A worker's credit level, best first; level D is not dispatched."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
