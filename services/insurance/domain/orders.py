"""Insurance's copy of an order (订单), kept from the orders service's events, its service window
(what claims are judged against) and the coverage found for it when it was accepted."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from libs.common.beijing import beijing_day
from services.insurance.domain.cover import Cover, find_cover
from services.insurance.domain.vocabulary import ServiceType


@dataclass(frozen=True)
class Coverage:
    """What insurance found when the order was accepted or its worker replaced: the policy that
    insures its worker for its service on the service's first day, or the reason none does."""

    worker_id: str
    policy_id: uuid.UUID | None
    product_id: str
    insurer: str
    reason: str
    found_at: datetime

    @property
    def covered(self) -> bool:
        return self.policy_id is not None


@dataclass(frozen=True)
class Order:
    """An accepted order as insurance knows it. Ids are plain (``order_id``, not ``orders/...``);
    ``check_in``/``check_out`` are set as the service starts and ends."""

    order_id: str
    platform_id: str
    company_id: str
    worker_id: str
    service_type: ServiceType
    district_code: str
    scheduled_start: datetime
    scheduled_end: datetime
    check_in: datetime | None = None
    check_out: datetime | None = None
    cancelled: bool = False
    coverage: Coverage | None = None

    @property
    def name(self) -> str:
        return f"orders/{self.order_id}"

    @property
    def service_day(self) -> date:
        """The service's first day (Beijing date), on which its cover is looked for."""
        return beijing_day(self.scheduled_start)

    @property
    def window(self) -> tuple[datetime, datetime] | None:
        """The service window: from check-in to check-out, or to the scheduled end while the
        service runs (never before the check-in); None before the check-in."""
        if self.check_in is None:
            return None
        return self.check_in, self.check_out or max(self.scheduled_end, self.check_in)

    def within_window(self, moment: datetime) -> bool:
        window = self.window
        return window is not None and window[0] <= moment <= window[1]


def cover_order(order: Order, covers: Iterable[Cover], now: datetime) -> Order:
    """The order with the coverage of its current worker for its service on its first day."""
    found = find_cover(covers, order.service_type, order.service_day)
    if isinstance(found, str):
        coverage = Coverage(order.worker_id, None, "", "", found, now)
    else:
        coverage = Coverage(
            order.worker_id, found.insured.policy_id, found.product_id, found.insurer, "", now
        )
    return dataclasses.replace(order, coverage=coverage)
