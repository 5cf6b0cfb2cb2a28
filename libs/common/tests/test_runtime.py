"""run_service with JZ_MIGRATE_ONLY: what a Kubernetes migrations Job runs (migrate, exit 0, never serve)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.common import runtime
from libs.common.runtime import Components
from libs.common.settings import ServiceSettings

MIGRATIONS = Path("/nowhere/migrations")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """What run_service did, in order: migrations applied, telemetry set up, the service built."""
    seen: list[tuple[str, object]] = []

    async def migrate(dsn: str, service_dir: Path | None) -> list[str]:
        seen.append(("migrate", (dsn, service_dir)))
        return ["0001_first.sql"]

    monkeypatch.setattr(runtime, "migrate", migrate)
    monkeypatch.setattr(runtime, "configure_logging", lambda service, level: None)
    monkeypatch.setattr(runtime, "setup_telemetry", lambda settings: seen.append(("telemetry", settings)))
    return seen


async def never_built(settings: ServiceSettings) -> Components:
    raise AssertionError("a migrations Job must not build the service")


def test_migrate_only_migrates_and_exits_zero(
    calls: list[tuple[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JZ_MIGRATE_ONLY", "true")
    monkeypatch.setenv("JZ_DATABASE_URL", "postgresql://db.example:5432/jz_orders")
    with pytest.raises(SystemExit) as exited:
        runtime.run_service(ServiceSettings(), MIGRATIONS, never_built)
    assert exited.value.code == 0
    assert calls == [("migrate", ("postgresql://db.example:5432/jz_orders", MIGRATIONS))]


def test_migration_failure_fails_the_job(
    calls: list[tuple[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def changed(dsn: str, service_dir: Path | None) -> list[str]:
        raise RuntimeError("migration 0001_first.sql changed after it was applied")

    monkeypatch.setattr(runtime, "migrate", changed)
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        runtime.run_service(ServiceSettings(migrate_only=True), MIGRATIONS, never_built)


def test_migrate_only_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JZ_MIGRATE_ONLY", raising=False)
    assert ServiceSettings().migrate_only is False


@pytest.fixture
def collector_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_young_threshold_comes_from_the_settings_and_the_older_ones_stay(
    collector_thresholds: tuple[int, int, int],
) -> None:
    runtime.tune_collector(ServiceSettings(gc_young_threshold=12_345))
    assert gc.get_threshold() == (12_345, *collector_thresholds[1:])
