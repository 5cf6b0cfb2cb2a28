"""The agent's batch guard: a batch is finished before faust may acknowledge it, or the process ends."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from libs.common import streams
from libs.common.inbox import IdempotentConsumer, KafkaRecord


class SlowConsumer:
    def __init__(self, fail: bool = False) -> None:
        self.finished = asyncio.Event()
        self.fail = fail

    async def handle_batch(self, records: list[KafkaRecord]) -> list[str]:
        await asyncio.sleep(0.05)
        if self.fail:
            raise ConnectionError("database gone")
        self.finished.set()
        return ["applied"] * len(records)


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    calls: list[bool] = []

    def fake_exit() -> None:
        calls.append(True)
        raise Exited

    monkeypatch.setattr(streams, "_exit_unacknowledged", fake_exit)
    return calls


async def test_cancelled_mid_batch_finishes_the_batch_then_stays_cancelled(exits: list[bool]) -> None:
    consumer = SlowConsumer()
    task = asyncio.ensure_future(
        streams._apply_before_acknowledging(cast(IdempotentConsumer, consumer), [cast(Any, None)])
    )
    await asyncio.sleep(0.01)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert consumer.finished.is_set()
    assert exits == []


async def test_a_failure_the_consumer_could_not_absorb_ends_the_process(exits: list[bool]) -> None:
    with pytest.raises(Exited):
        await streams._apply_before_acknowledging(cast(IdempotentConsumer, SlowConsumer(fail=True)), [])
    assert exits == [True]


async def test_cancelled_twice_mid_batch_ends_the_process_unacknowledged(exits: list[bool]) -> None:
    consumer = SlowConsumer()
    task = asyncio.ensure_future(streams._apply_before_acknowledging(cast(IdempotentConsumer, consumer), []))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()

    with pytest.raises(Exited):
        await task
    assert exits == [True]
