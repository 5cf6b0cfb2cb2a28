"""An agent that handles nothing while records wait for it makes the process exit (stall.py), and
nothing else does: not an agent at the end of its partitions, a rebalance, or a broker that cannot
be asked."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from aiokafka import TopicPartition

from services.regulator.stall import Bounds, ProgressCheck, StallWatch

TOPIC = "jiazheng.workers.events.v1"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
LIMIT, RECOVERY_LIMIT = 120.0, 900.0


class FakeConsumer:
    def __init__(self) -> None:
        self.commits: dict[TopicPartition, int] = {}
        self.in_recovery = False

    def recovering(self) -> bool:
        return self.in_recovery

    def committed(self, tp: TopicPartition) -> int | None:
        return self.commits.get(tp)

    def describe(self) -> dict[str, Any]:
        return {"flow_active": False}


class FakeOffsets:
    """Partitions with first offset 0 and the ends set; ``None`` answers as a broker that is down."""

    def __init__(self) -> None:
        self.ends: dict[TopicPartition, int] | None = {P0: 0, P1: 0}
        self.first = 0
        self.asked: list[set[TopicPartition]] = []

    async def bounds(self, tps: Collection[TopicPartition]) -> Bounds | None:
        self.asked.append(set(tps))
        ends = self.ends
        return None if ends is None else {tp: (self.first, ends[tp]) for tp in tps}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Watched:
    """One agent over TOPIC, checked every 5 s: its expected offsets, and whether it exited."""

    def __init__(self) -> None:
        self.expected: dict[str, int] = {}
        self.consumer, self.offsets, self.clock = FakeConsumer(), FakeOffsets(), Clock()
        self.exits = 0
        self.check = ProgressCheck(
            "regulator-project-workers",
            frozenset({TOPIC}),
            2,
            self.expected,
            self.consumer,
            self.offsets,
            StallWatch(LIMIT),
            self._exit,
            self.clock,
            RECOVERY_LIMIT,
        )

    def _exit(self) -> None:
        self.exits += 1

    async def exits_after_the_limit(self) -> None:
        """Nothing moves from now on: no exit just before the limit, one just after it."""
        await self.for_seconds(LIMIT - 10)
        assert self.exits == 0
        await self.for_seconds(15)
        assert self.exits == 1

    async def for_seconds(self, seconds: float, handling: bool = False) -> None:
        for _ in range(int(seconds // 5)):
            self.clock.now += 5
            if handling:
                self.expected[f"{TOPIC}/0"] = self.expected.get(f"{TOPIC}/0", 0) + 1
            await self.check.check()


async def test_an_agent_that_handles_nothing_while_records_wait_makes_the_process_exit() -> None:
    w = Watched()
    w.expected[f"{TOPIC}/0"] = 10
    w.offsets.ends = {P0: 50, P1: 0}

    await w.exits_after_the_limit()


async def test_an_agent_that_keeps_handling_records_never_exits_however_many_wait() -> None:
    w = Watched()
    w.offsets.ends = {P0: 10_000, P1: 0}

    await w.for_seconds(10 * LIMIT, handling=True)

    assert w.exits == 0


async def test_an_agent_at_the_end_of_its_partitions_never_exits_and_does_not_ask_the_broker_twice() -> None:
    w = Watched()
    w.expected.update({f"{TOPIC}/0": 50, f"{TOPIC}/1": 7})
    w.offsets.ends = {P0: 50, P1: 7}

    await w.for_seconds(10 * LIMIT)

    assert w.exits == 0
    assert all(asked == {P0, P1} for asked in w.offsets.asked)


async def test_a_broker_that_cannot_be_asked_does_not_count_as_a_stall() -> None:
    w = Watched()
    w.expected[f"{TOPIC}/0"] = 10
    w.offsets.ends = None
    await w.for_seconds(3 * LIMIT)
    assert w.exits == 0

    w.offsets.ends = {P0: 50, P1: 0}
    await w.exits_after_the_limit()


async def test_while_the_tables_recover_the_longer_recovery_limit_applies() -> None:
    """A recovery that never ends is a stall too, only one found later: a big history's recovery
    takes minutes, and exiting in its middle would start it all over again."""
    w = Watched()
    w.consumer.in_recovery = True
    w.offsets.ends = {P0: 50, P1: 0}

    await w.for_seconds(RECOVERY_LIMIT - 10)
    assert w.exits == 0
    await w.for_seconds(15)
    assert w.exits == 1


async def test_a_partition_the_agent_never_handled_waits_from_its_commit_or_else_its_first_offset() -> None:
    w = Watched()
    w.consumer.commits[P0] = 40
    w.offsets.ends = {P0: 40, P1: 0}
    await w.for_seconds(3 * LIMIT)
    assert w.exits == 0  # committed at its end: nothing waits

    del w.consumer.commits[P0]
    w.offsets.first = 40  # retention removed every record before 40
    w.offsets.ends = {P0: 40, P1: 40}
    await w.for_seconds(3 * LIMIT)
    assert w.exits == 0

    w.offsets.ends = {P0: 41, P1: 40}
    await w.for_seconds(LIMIT + 5)
    assert w.exits == 1
