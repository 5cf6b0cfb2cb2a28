"""Reference data two services each keep (their domains import no other service): kept equal here,
so that a change to one without the other fails CI."""

from __future__ import annotations

from services.orders.domain import districts as orders_districts
from services.workers.domain import identity as workers_identity


def test_both_services_know_the_same_sixteen_beijing_districts() -> None:
    assert orders_districts.BEIJING_DISTRICTS == workers_identity.BEIJING_DISTRICTS
    assert len(workers_identity.BEIJING_DISTRICTS) == 16
