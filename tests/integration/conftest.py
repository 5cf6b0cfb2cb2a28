"""Integration fixtures: the real Kafka and PostgreSQL, and the services as real processes.

Endpoints come from, in order: the environment (JZ_TEST_KAFKA_BOOTSTRAP + JZ_TEST_PG_DSN),
testcontainers where a Docker engine answers, otherwise the project's local stack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from deploy.local.stack import Endpoints, create_database, default_home, free_port
from deploy.local.stack import scratch_database as new_scratch_database
from tests.integration.harness import (
    LocalStackSource,
    RunningService,
    ServiceHarness,
    Testcontainers,
    docker_answers,
    endpoints_from_env,
    services_on,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    given = endpoints_from_env()
    if given is not None:
        yield given
        return
    source: Testcontainers | LocalStackSource = Testcontainers() if docker_answers() else LocalStackSource()
    try:
        yield source.up()
    finally:
        source.down()


@pytest.fixture(scope="session")
def harness(endpoints: Endpoints) -> Iterator[ServiceHarness]:
    with services_on(endpoints, default_home("test")) as h:
        yield h


@pytest.fixture(scope="session")
async def databases(endpoints: Endpoints) -> None:
    for name in ("orders", "credit", "workers", "complaints", "insurance"):
        await create_database(endpoints, f"jz_{name}")


@pytest.fixture(scope="session")
async def orders(harness: ServiceHarness, databases: None) -> RunningService:
    return await harness.start("orders", log_level="DEBUG")  # its per-order log line is DEBUG


@pytest.fixture(scope="session")
async def credit(harness: ServiceHarness, databases: None) -> RunningService:
    # DEBUG: its per-event log lines are DEBUG.
    return await harness.start("credit", metrics_port=free_port(), log_level="DEBUG")


@pytest.fixture
async def scratch_database(endpoints: Endpoints) -> AsyncIterator[str]:
    """A database of its own, for tests that must not share a relay or a schema."""
    async with new_scratch_database(endpoints, "jz_scratch") as name:
        yield name
