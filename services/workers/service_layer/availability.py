"""Use case: a worker's weekly schedule and leave, published for matching."""

from __future__ import annotations

import uuid
from typing import Protocol

from libs.common.auth import Principal
from services.workers import domain as d
from services.workers import events
from services.workers.service_layer.workers import WorkersUnitOfWork, worker_company


class AvailabilityRepository(Protocol):
    async def replace(self, worker_id: uuid.UUID, availability: d.Availability) -> None: ...


class AvailabilityUnitOfWork(WorkersUnitOfWork, Protocol):
    @property
    def availability(self) -> AvailabilityRepository: ...


async def set_availability(
    uow: AvailabilityUnitOfWork, principal: Principal, worker_id: uuid.UUID, availability: d.Availability
) -> None:
    async with uow:
        await worker_company(uow, principal, worker_id)
        await uow.availability.replace(worker_id, availability)
        await uow.add_event(
            events.TOPIC, events.availability_changed(worker_id, availability, uow.clock.now())
        )
        await uow.commit()
