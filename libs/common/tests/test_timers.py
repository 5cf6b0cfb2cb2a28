"""TimerWorker semantics through the fake unit of work: a due timer fires once with its handler's
work in the same commit; a failing handler is charged alone, backs off and is parked, never lost;
an outage is never charged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.protobuf.wrappers_pb2 import StringValue

from libs.common.events import new_event
from libs.common.inbox import Probe
from libs.common.settings import ServiceSettings
from libs.common.testing import FakeUnitOfWork
from libs.common.timers import DueTimer, TimerHandler, TimerWorker

EXPIRY = "workers.health_check_expiry"
SETTINGS = ServiceSettings(timer_max_attempts=3, timer_retry_backoff_s=1.0, timer_max_backoff_s=3.0)


class Expire:
    """Publishes an event per timer it fires; raises for the keys in ``poison``."""

    def __init__(self, poison: frozenset[str] = frozenset()) -> None:
        self.poison = poison
        self.calls: list[str] = []

    async def __call__(self, uow: FakeUnitOfWork, timer: DueTimer) -> None:
        self.calls.append(timer.key)
        await uow.add_event(
            "t", new_event(StringValue(value=timer.payload["tier"]), source="/t", subject=timer.key)
        )
        if timer.key in self.poison:
            raise ValueError("cannot expire")


async def always_answers() -> bool:
    return True


async def never_answers() -> bool:
    return False


def worker(
    uow: FakeUnitOfWork, handler: TimerHandler[FakeUnitOfWork], healthy: Probe = always_answers
) -> TimerWorker[FakeUnitOfWork]:
    return TimerWorker(lambda: uow, {EXPIRY: handler}, SETTINGS, healthy)


async def schedule(uow: FakeUnitOfWork, key: str, in_s: float, commit: bool = True) -> None:
    async with uow:
        await uow.timers.schedule(EXPIRY, key, uow.clock.now() + timedelta(seconds=in_s), {"tier": "居家"})
        if commit:
            await uow.commit()


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


async def test_a_due_timer_fires_once_with_its_handlers_events_in_the_same_commit(
    uow: FakeUnitOfWork,
) -> None:
    expire = Expire()
    await schedule(uow, "workers/w1", in_s=60)
    assert await worker(uow, expire).fire_due() == 0
    uow.clock.advance(timedelta(seconds=60))
    commits = uow.commits

    assert await worker(uow, expire).fire_due() == 1
    assert await worker(uow, expire).fire_due() == 0
    assert expire.calls == ["workers/w1"]
    assert [p.event.subject for p in uow.published] == ["workers/w1"]
    assert [t.key for t in uow.timers.fired] == ["workers/w1"]
    assert uow.commits == commits + 1
    assert await uow.timers.seconds_until_due() is None


async def test_due_timers_fire_oldest_first_up_to_a_batch(uow: FakeUnitOfWork) -> None:
    for i in range(5):
        await schedule(uow, f"workers/w{i}", in_s=10 - i)
    uow.clock.advance(timedelta(seconds=10))
    expire = Expire()
    small = TimerWorker(lambda: uow, {EXPIRY: expire}, ServiceSettings(timer_batch_size=3), always_answers)

    assert await small.fire_due() == 3
    assert await small.fire_due() == 2
    assert expire.calls == [f"workers/w{i}" for i in (4, 3, 2, 1, 0)]


async def test_scheduling_again_replaces_cancel_cancels_and_a_rollback_keeps_neither(
    uow: FakeUnitOfWork,
) -> None:
    await schedule(uow, "workers/w1", in_s=10)
    await schedule(uow, "workers/w1", in_s=30)
    assert await uow.timers.seconds_until_due() == 30
    await schedule(uow, "workers/w2", in_s=5, commit=False)
    assert await uow.timers.seconds_until_due() == 30
    async with uow:
        assert await uow.timers.cancel(EXPIRY, "workers/w1")
        assert not await uow.timers.cancel(EXPIRY, "workers/w3")
        await uow.commit()
    assert await uow.timers.seconds_until_due() is None


async def test_a_failing_handler_rolls_its_batch_back_and_is_charged_alone(uow: FakeUnitOfWork) -> None:
    await schedule(uow, "workers/bad", in_s=1)
    await schedule(uow, "workers/good", in_s=2)
    uow.clock.advance(timedelta(seconds=2))
    expire = Expire(poison=frozenset({"workers/bad"}))

    assert await worker(uow, expire).fire_due() == 0
    assert uow.published == []
    bad = uow.timers.pending[EXPIRY, "workers/bad"]
    assert bad.attempts == 1
    assert bad.due_at == uow.clock.now() + timedelta(seconds=1)
    assert uow.timers.last_errors[bad.timer_id] == "ValueError: cannot expire"
    assert await worker(uow, expire).fire_due() == 1
    assert [t.key for t in uow.timers.fired] == ["workers/good"]


async def test_a_timer_failing_max_attempts_is_parked_and_rescheduling_revives_it(
    uow: FakeUnitOfWork,
) -> None:
    await schedule(uow, "workers/bad", in_s=0)
    expire = Expire(poison=frozenset({"workers/bad"}))
    delays = []
    for _ in range(SETTINGS.timer_max_attempts):
        assert await worker(uow, expire).fire_due() == 0
        delays.append(await uow.timers.seconds_until_due())
        uow.clock.advance(timedelta(hours=1))

    bad = uow.timers.pending[EXPIRY, "workers/bad"]
    assert delays[:2] == [1.0, 2.0]
    assert (bad.attempts, bad.timer_id in uow.timers.parked) == (3, True)
    assert await uow.timers.claim_due(10) == []
    assert len(expire.calls) == SETTINGS.timer_max_attempts
    await schedule(uow, "workers/bad", in_s=0)
    assert [t.key for t in await uow.timers.claim_due(10)] == ["workers/bad"]


async def test_a_kind_without_a_handler_is_charged_not_dropped(uow: FakeUnitOfWork) -> None:
    async with uow:
        await uow.timers.schedule("insurance.policy_expiry", "policies/p1", uow.clock.now(), {})
        await uow.commit()

    assert await worker(uow, Expire()).fire_due() == 0
    timer = uow.timers.pending["insurance.policy_expiry", "policies/p1"]
    assert timer.attempts == 1
    assert "no handler" in uow.timers.last_errors[timer.timer_id]


@pytest.mark.parametrize(
    ("poison", "healthy"),
    [(frozenset(), always_answers), (frozenset({"workers/w1"}), never_answers)],
    ids=["handler-outage", "database-silent"],
)
async def test_an_outage_is_raised_to_be_waited_out_and_never_charged(
    uow: FakeUnitOfWork, poison: frozenset[str], healthy: Probe
) -> None:
    class Outage(Expire):
        async def __call__(self, uow: FakeUnitOfWork, timer: DueTimer) -> None:
            await super().__call__(uow, timer)
            if not self.poison:
                raise ConnectionRefusedError("database away")

    await schedule(uow, "workers/w1", in_s=0)

    with pytest.raises(ConnectionError):
        await worker(uow, Outage(poison), healthy).fire_due()
    assert uow.timers.pending[EXPIRY, "workers/w1"].attempts == 0
    assert uow.published == []


async def test_a_handler_that_reschedules_its_own_timer_keeps_the_next_deadline(uow: FakeUnitOfWork) -> None:
    """A case's first deadline passing sets its next one under the same kind and key: that one stays."""

    async def next_deadline(unit: FakeUnitOfWork, timer: DueTimer) -> None:
        await unit.timers.schedule(EXPIRY, timer.key, unit.clock.now() + timedelta(hours=1), {"tier": "next"})

    await schedule(uow, "cases/c1", in_s=60)
    uow.clock.advance(timedelta(seconds=60))
    assert await worker(uow, next_deadline).fire_due() == 1

    [pending] = uow.timers.pending.values()
    assert pending.payload == {"tier": "next"}
    uow.clock.advance(timedelta(hours=1))
    assert await worker(uow, next_deadline).fire_due() == 1
    # Each firing rescheduled the same row (one pending timer per kind and key), so none is
    # marked fired and the latest deadline is pending, as in the table.
    assert uow.timers.fired == []
    [again] = uow.timers.pending.values()
    assert again.due_at == uow.clock.now() + timedelta(hours=1)


async def test_a_handler_that_reschedules_its_own_timer_at_its_due_time_with_another_payload_fires_again(
    uow: FakeUnitOfWork,
) -> None:
    async def escalate_at_once(unit: FakeUnitOfWork, timer: DueTimer) -> None:
        if timer.payload.get("tier") != "second":
            await unit.timers.schedule(EXPIRY, timer.key, timer.due_at, {"tier": "second"})

    await schedule(uow, "cases/c2", in_s=0)
    assert await worker(uow, escalate_at_once).fire_due() == 1
    assert uow.timers.fired == []
    assert await worker(uow, escalate_at_once).fire_due() == 1
    assert [t.payload for t in uow.timers.fired] == [{"tier": "second"}]
