"""The eligibility repository's held writes, on a connection that records what it is sent."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.orders.domain.vocabulary import CardColour, CreditLevel, HealthTier, Trade
from services.orders.eligibility_store import (
    _ISSUE_CARD,
    _REVISION_LOCK,
    _REVOKE_CARD,
    _SET_CARD_COLOUR,
    _SET_COMPANY,
    _SET_CREDIT_LEVEL,
    _SET_HEALTH_CHECK,
    _SET_REGISTRATION,
    _TOUCH,
    PgEligibilityRepository,
)


class RecordingConnection:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    async def execute(self, sql: str, *args: Any) -> None:
        self.sent.append(("execute", sql, args))

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        self.sent.append(("executemany", sql, args))


async def test_held_writes_go_after_the_lock_one_statement_per_kind_with_the_last_of_each_worker() -> None:
    conn = RecordingConnection()
    repo = PgEligibilityRepository(conn)
    repo.hold()
    await repo.set_card_colour("w1", CardColour.YELLOW)
    await repo.set_credit_level("w1", CreditLevel.D)
    await repo.set_card_colour("w2", CardColour.RED)
    await repo.set_credit_level("w1", CreditLevel.B)
    await repo.set_card_colour("w1", CardColour.GREEN)
    await repo.set_health_check("w3", HealthTier.GENERAL, date(2026, 8, 31))
    assert conn.sent == []
    await repo.flush()
    assert conn.sent == [
        ("execute", _REVISION_LOCK, ()),
        ("execute", _SET_CARD_COLOUR.each, (["w1", "w2"], ["green", "red"])),
        ("execute", _SET_CREDIT_LEVEL.each, (["w1"], ["B"])),
        ("execute", _SET_HEALTH_CHECK.each, (["w3"], [1], [date(2026, 8, 31)])),
    ]
    await repo.set_credit_level("w3", CreditLevel.A)  # no longer held: at once, the lock held
    assert conn.sent[-1] == ("execute", _SET_CREDIT_LEVEL.one, ("w3", "A"))


async def test_writes_of_the_same_columns_keep_their_order_and_order_dependent_ones_go_one_by_one() -> None:
    conn = RecordingConnection()
    repo = PgEligibilityRepository(conn)
    repo.hold()
    await repo.set_company("w1", "c-0")
    await repo.issue_card("w1", "k-1")
    await repo.set_registration("w1", "c-1", ["110105"], [Trade.HOUSEKEEPER])
    await repo.revoke_card("w1", "k-1")
    await repo.touch("w2")
    await repo.set_company("w1", "c-2")
    await repo.revoke_card("w1", "k-0")
    await repo.touch("w2")
    await repo.flush()
    assert conn.sent[1:] == [
        ("execute", _SET_COMPANY.each, (["w1"], ["c-0"])),
        ("executemany", _SET_REGISTRATION.one, [("w1", "c-1", "110105", ["110105"], ["housekeeper"])]),
        ("execute", _SET_COMPANY.each, (["w1"], ["c-2"])),
        ("executemany", _ISSUE_CARD.one, [("w1", "k-1", False)]),
        ("executemany", _REVOKE_CARD.one, [("w1", "k-1", True), ("w1", "k-0", True)]),
        ("execute", _TOUCH.each, (["w2"],)),
    ]


async def test_a_flush_with_nothing_held_sends_nothing_and_a_second_flush_nothing_more() -> None:
    conn = RecordingConnection()
    repo = PgEligibilityRepository(conn)
    await repo.flush()
    repo.hold()
    await repo.flush()
    assert conn.sent == []
    repo.hold()
    await repo.set_card_colour("w1", CardColour.RED)
    await repo.flush()
    await repo.flush()
    assert len(conn.sent) == 2
