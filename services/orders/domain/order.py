"""An order: what a platform books, and the rules of its creation."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from libs.common.errors import InvalidArgument


@dataclass(frozen=True)
class BookingWindow:
    """When a service may start, seen from the moment it is booked (our default, configurable).

    A start slightly in the past is allowed (clock skew, immediate starts).
    """

    start_tolerance: timedelta = timedelta(hours=1)
    max_advance: timedelta = timedelta(days=366)


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


class OrderState(StrEnum):
    CREATED = "created"


@dataclass(frozen=True)
class OrderDraft:
    """What a platform asks for when it books a service."""

    service_type: ServiceType
    district_code: str
    consumer_ref: str
    worker_id: str | None
    scheduled_start: datetime
    duration_hours: int

    def fingerprint(self) -> str:
        """Same draft, same fingerprint: tells a retry from a different request under one request id."""
        canonical = "|".join(
            [
                self.service_type,
                self.district_code,
                self.consumer_ref,
                self.worker_id or "",
                self.scheduled_start.isoformat(),
                str(self.duration_hours),
            ]
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Order:
    order_id: uuid.UUID
    platform_id: str
    draft: OrderDraft
    state: OrderState
    created_at: datetime


def create_order(
    draft: OrderDraft, platform_id: str, now: datetime, window: BookingWindow = BookingWindow()
) -> Order:
    if draft.scheduled_start < now - window.start_tolerance:
        raise InvalidArgument("order.scheduled_start_time", "must not be in the past")
    if draft.scheduled_start > now + window.max_advance:
        raise InvalidArgument(
            "order.scheduled_start_time", f"must be within {window.max_advance.days} days from now"
        )
    return Order(
        order_id=uuid.uuid4(), platform_id=platform_id, draft=draft, state=OrderState.CREATED, created_at=now
    )
