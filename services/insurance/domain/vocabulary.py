"""The kinds of household service as insurance names them: the numbers of
``jiazheng.type.v1.ServiceType`` (a unit test fails when they drift apart), so the domain needs no
protobuf, and the job class (职业类别) each kind of work falls in for underwriting."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ServiceType(IntEnum):
    """A kind of household service (家政服务类型)."""

    CLEANING = 1  # 保洁/钟点工
    LIVE_IN_HOUSEKEEPER = 2  # 住家保姆
    MATERNITY = 3  # 月嫂
    INFANT_CARE = 4  # 育儿嫂
    ELDERLY_CARE = 5  # 养老护理
    PATIENT_CARE = 6  # 病患护理
    APPLIANCE_CLEANING = 7  # 家电清洗
    ORGANISING = 8  # 整理收纳
    AGE_FRIENDLY_ADAPTATION = 9  # 适老化改造


# Our underwriting classes (docs/insurance.md): care and housework indoors are class 1; lifting,
# nursing and cleaning chemicals class 2; ladders, electrical appliances and building work class 3.
JOB_CLASS = {
    ServiceType.LIVE_IN_HOUSEKEEPER: 1,
    ServiceType.MATERNITY: 1,
    ServiceType.INFANT_CARE: 1,
    ServiceType.ORGANISING: 1,
    ServiceType.CLEANING: 2,
    ServiceType.ELDERLY_CARE: 2,
    ServiceType.PATIENT_CARE: 2,
    ServiceType.APPLIANCE_CLEANING: 3,
    ServiceType.AGE_FRIENDLY_ADAPTATION: 3,
}


def job_class_needed(service_types: Iterable[ServiceType]) -> int:
    """The lowest job class that insures all of ``service_types``: the highest class among them."""
    return max((JOB_CLASS[s] for s in service_types), default=1)
