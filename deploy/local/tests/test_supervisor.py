"""The supervisor's restart policy and state file (pure parts; tests/integration/test_supervision.py
runs it with real services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.supervisor import Backoff, SupervisorState


def test_delay_doubles_from_half_a_second_up_to_the_cap() -> None:
    backoff = Backoff()
    assert [backoff.delay_s(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


def test_delay_stays_at_the_cap_however_long_the_crash_loop() -> None:
    assert Backoff().delay_s(100_000) == 15.0


def test_quick_exits_count_up_until_a_run_lasts_long_enough() -> None:
    backoff = Backoff(healthy_after_s=30.0)
    streak = 0
    for _ in range(4):
        streak = backoff.quick_exits(streak, ran_s=2.0)
    assert streak == 4
    assert backoff.delay_s(streak) == 4.0
    assert backoff.quick_exits(streak, ran_s=30.0) == 1  # it ran healthily: start again from 0.5 s
    assert backoff.delay_s(backoff.quick_exits(streak, ran_s=30.0)) == 0.5


@pytest.mark.parametrize("ran_s", [0.0, 29.9])
def test_an_exit_soon_after_start_extends_the_streak(ran_s: float) -> None:
    assert Backoff(healthy_after_s=30.0).quick_exits(2, ran_s) == 3


def test_state_file_round_trips_and_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "orders.supervisor.json"
    SupervisorState("orders", 10, 11, 0, None).write(path)
    SupervisorState("orders", 10, None, 1, -9).write(path)
    assert SupervisorState.read(path) == SupervisorState("orders", 10, None, 1, -9)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("content", [None, "", "{not json", '{"name": "orders"}'])
def test_missing_or_partial_state_reads_as_none(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "state.json"
    if content is not None:
        path.write_text(content)
    assert SupervisorState.read(path) is None
