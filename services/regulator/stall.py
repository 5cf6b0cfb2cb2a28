"""A regulator whose consumer has stopped fetching exits, and is started again.

faust-streaming 0.15 can stop delivering records for good while the process looks healthy: the
group is stable with this worker as its member, the gRPC server answers, timers run, and yet the
fetcher never hands the agents another record (seen in our kill/restart test, on a fresh group and
after a restart; faust-streaming's issue tracker reports consumers that "slowly die"). Nothing
inside the process brings it back, and a restart does: the tables recover from their changelogs
and the group reads on from its commits, exactly once in effect.

So each agent's progress is watched: at each check (every few seconds, with the commit check of
``skipped.py``) the offsets the agent expects next on its assigned partitions are compared with
the last check's. When they have not moved for ``JZ_REGULATOR_STALL_S`` while the broker holds
records past them, the process logs what faust's consumer says of itself and exits; its
supervisor (Kubernetes, or the local stack's) starts it again. The partitions watched are all
those of the agent's topics (the regulator runs alone in its group), so a rebalance or a table
recovery that never ends is a stall too; while the tables recover, which can take long on a big
history, the limit is ``JZ_REGULATOR_RECOVERY_STALL_S`` instead. A broker that cannot be asked is
not a stall (an outage is waited out, not restarted through).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

EXIT_STALLED = 75  # EX_TEMPFAIL: try again
OFFSETS_TIMEOUT_S = 10.0


@dataclass
class StallWatch:
    """When an agent has handled nothing for ``limit_s`` while records wait for it."""

    limit_s: float
    _handled: dict[str, int | None] | None = None
    _since: float = 0.0

    def progressed(self, handled: Mapping[str, int | None], now: float) -> bool:
        """Whether the offsets handled moved since the last check (the first check counts as moved)."""
        if self._handled == handled:
            return False
        self._handled, self._since = dict(handled), now
        return True

    def stalled(self, waiting: bool, now: float, limit_s: float | None = None) -> bool:
        """After ``progressed`` said no: whether the records ``waiting`` have waited longer than
        ``limit_s`` (``self.limit_s`` by default)."""
        if not waiting:
            self._since = now
        return waiting and now - self._since >= (limit_s or self.limit_s)

    def reset(self) -> None:
        self._handled = None


Bounds = Mapping[TopicPartition, tuple[int, int]]
"""Each partition's first offset and end offset."""


class HandledOffsets(Protocol):
    """An agent's expected offsets as the checks read them: "<topic>/<partition>" -> the next
    offset the agent expects, None before its first record."""

    def get(self, key: str, /) -> int | None: ...


class Offsets(Protocol):
    async def bounds(self, tps: Collection[TopicPartition]) -> Bounds | None:
        """Each partition's first and end offsets, or None when the broker cannot say."""
        ...


class Assignment(Protocol):
    def recovering(self) -> bool:
        """Whether the tables are being recovered (which may take long, without an agent's
        progress)."""
        ...

    def committed(self, tp: TopicPartition) -> int | None: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class ProgressCheck:
    """One agent's stall check: ``check`` at every tick of the commit-check timer."""

    agent: str
    topics: frozenset[str]
    partitions: int  # of each topic
    expected: HandledOffsets
    consumer: Assignment
    offsets: Offsets
    watch: StallWatch
    on_stall: Callable[[], None]
    clock: Callable[[], float]
    recovery_limit_s: float

    async def check(self) -> None:
        tps = [TopicPartition(topic, p) for topic in sorted(self.topics) for p in range(self.partitions)]
        handled = {_key(tp): self.expected.get(_key(tp)) for tp in tps}
        now = self.clock()
        if self.watch.progressed(handled, now):
            return
        bounds = await self.offsets.bounds(tps)
        if bounds is None:
            self.watch.reset()  # the broker cannot be asked: an outage is waited out
            return
        waiting = {tp: bounds[tp][1] for tp in tps if bounds[tp][1] > self._next(tp, handled, bounds)}
        limit = self.recovery_limit_s if self.consumer.recovering() else self.watch.limit_s
        if self.watch.stalled(bool(waiting), now, limit):
            self._stalled(handled, waiting, limit)

    def _next(self, tp: TopicPartition, handled: Mapping[str, int | None], bounds: Bounds) -> int:
        """The next offset the agent should handle: after what it handled, else its group's commit,
        else the partition's first (a new group reads from the earliest)."""
        known = handled[_key(tp)]
        if known is None:
            known = self.consumer.committed(tp)
        return max(known if known is not None else 0, bounds[tp][0])

    def _stalled(
        self, handled: Mapping[str, int | None], waiting: Mapping[TopicPartition, int], limit_s: float
    ) -> None:
        log.error(
            "agent handled no record while records waited; exiting to be started again",
            extra={
                "fields": {
                    "agent": self.agent,
                    "stalled_s": limit_s,
                    "handled": dict(handled),
                    "waiting_until": {_key(tp): end for tp, end in waiting.items()},
                    "consumer": self.consumer.describe(),
                }
            },
        )
        self.watch.reset()
        self.on_stall()


def _key(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


class BrokerOffsets:
    """Partition bounds from the broker, with a client of its own (no group): faust's consumer is
    what may be stuck, so it is not asked. Started at the first question and kept."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def bounds(self, tps: Collection[TopicPartition]) -> Bounds | None:
        try:
            async with self._lock:
                return await asyncio.wait_for(self._bounds(list(tps)), OFFSETS_TIMEOUT_S)
        except (KafkaError, TimeoutError, OSError) as exc:
            log.warning("partition offsets not available", extra={"fields": {"error": repr(exc)}})
            return None

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _bounds(self, tps: list[TopicPartition]) -> Bounds:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(**self.options, enable_auto_commit=False)
            await consumer.start()
            self._consumer = consumer
        firsts = await self._consumer.beginning_offsets(tps)
        ends = await self._consumer.end_offsets(tps)
        return {tp: (int(firsts[tp]), int(ends[tp])) for tp in tps}


def exit_stalled() -> None:
    """Exit at once, as a crash would (every effect is safe against one): a graceful stop could
    wait on the very consumer that is stuck."""
    logging.shutdown()
    os._exit(EXIT_STALLED)
