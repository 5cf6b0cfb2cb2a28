"""The eligibility repository's batched writes, on a connection that records what it is sent."""

from __future__ import annotations

from typing import Any

import pytest

from services.orders.domain.vocabulary import CardColour, CreditLevel
from services.orders.eligibility_store import (
    _REVISION_LOCK,
    _SET_CARD_COLOUR,
    _SET_CREDIT_LEVEL,
    PgEligibilityRepository,
)


class RecordingConnection:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    async def execute(self, sql: str, *args: Any) -> None:
        self.sent.append(("execute", sql, args))

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        self.sent.append(("executemany", sql, args))


async def test_a_batch_sends_each_run_of_one_statement_once_in_order_after_the_lock() -> None:
    conn = RecordingConnection()
    repo = PgEligibilityRepository(conn)
    async with repo.batched():
        await repo.set_card_colour("w1", CardColour.YELLOW)
        await repo.set_card_colour("w2", CardColour.RED)
        await repo.set_credit_level("w1", CreditLevel.D)
        await repo.set_card_colour("w1", CardColour.GREEN)
        assert conn.sent == []
    assert conn.sent == [
        ("execute", _REVISION_LOCK, ()),
        ("executemany", _SET_CARD_COLOUR, [("w1", "yellow"), ("w2", "red")]),
        ("executemany", _SET_CREDIT_LEVEL, [("w1", "D")]),
        ("executemany", _SET_CARD_COLOUR, [("w1", "green")]),
    ]
    await repo.set_credit_level("w3", CreditLevel.A)  # after the batch: at once, the lock held
    assert conn.sent[-1] == ("execute", _SET_CREDIT_LEVEL, ("w3", "A"))


async def test_a_batch_that_fails_sends_nothing() -> None:
    conn = RecordingConnection()
    repo = PgEligibilityRepository(conn)

    async def write_then_fail() -> None:
        async with repo.batched():
            await repo.set_card_colour("w1", CardColour.YELLOW)
            raise ValueError("bad event")

    with pytest.raises(ValueError, match="bad event"):
        await write_then_fail()
    assert conn.sent == []
