"""Integration fixtures: the real Kafka and PostgreSQL, and the services as real processes.

Endpoints come from, in order: the environment (JZ_TEST_KAFKA_BOOTSTRAP + JZ_TEST_PG_DSN),
testcontainers where a Docker engine answers, otherwise the project's local stack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from deploy.local.services import card_jwks, new_dev_card_keys, new_dev_pii_keys
from deploy.local.stack import Endpoints, create_database, default_home, free_port
from deploy.local.stack import scratch_database as new_scratch_database
from libs.common.db import create_pool, migrate
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
    # The personal-data scans run last, over what the whole suite produced: the regulator
    # records', then everything's (logs, every topic, every table).
    last = ("test_regulator_pii_scan.py", "test_pii_scan_all.py")
    items.sort(key=lambda item: [Path(str(item.fspath)).name == name for name in last][::-1])


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


@pytest.fixture(autouse=True)
def regulators_stop_with_their_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A regulator projects every source topic for as long as it runs: the regulators a test
    started stop when it ends, not at the end of the session (they loaded every later test)."""
    if "harness" not in request.fixturenames:
        yield
        return
    harness: ServiceHarness = request.getfixturevalue("harness")
    before = harness.running()
    yield
    for svc in harness.running():
        if svc.name == "regulator" and svc not in before:
            harness.stop(svc)


@pytest.fixture(scope="session")
async def databases(endpoints: Endpoints) -> None:
    for name in ("orders", "credit", "workers", "complaints", "insurance"):
        await create_database(endpoints, f"jz_{name}")


@pytest.fixture(scope="session")
def orders_keys(workers_keys: dict[str, str]) -> dict[str, str]:
    """The orders service's settings for the session's keys: the personal-data keys, and the
    public half of the workers service's card keys to verify check-ins with."""
    card = {
        "JZ_CARD_SIGNING_KEYS": workers_keys["card_signing_keys"],
        "JZ_CARD_ACTIVE_KEY": workers_keys["card_active_key"],
    }
    pii = {k: v for k, v in workers_keys.items() if k.startswith("pii_")}
    return {**pii, "card_jwks": card_jwks(card)}


@pytest.fixture(scope="session")
async def orders(harness: ServiceHarness, databases: None, orders_keys: dict[str, str]) -> RunningService:
    # DEBUG: its per-order log line is DEBUG.
    return await harness.start("orders", None, 0, False, log_level="DEBUG", **orders_keys)


@pytest.fixture(scope="session")
async def complaints(
    harness: ServiceHarness, endpoints: Endpoints, orders_keys: dict[str, str]
) -> AsyncIterator[RunningService]:
    """A database of the session's own: what it seals is sealed with the session's keys (a queue
    listing opens every case of the body)."""
    pii = {k: v for k, v in orders_keys.items() if k.startswith("pii_")}
    async with new_scratch_database(endpoints, "jz_complaints_test") as database:
        # DEBUG: what each call adds to the outbox is logged at DEBUG, with its trace.
        svc = await harness.start("complaints", database, 0, False, log_level="DEBUG", **pii)
        yield svc
        svc.stop()  # before its scratch database is dropped


@pytest.fixture(scope="session")
async def credit(harness: ServiceHarness, databases: None) -> RunningService:
    # DEBUG: its per-event log lines are DEBUG.
    return await harness.start("credit", metrics_port=free_port(), log_level="DEBUG")


@pytest.fixture(scope="session")
def workers_keys() -> dict[str, str]:
    """Personal-data and card keys kept for the session, so that a restarted workers service
    still finds what it sealed and verifies the cards it signed."""
    return {
        k.removeprefix("JZ_").lower(): v for k, v in {**new_dev_pii_keys(), **new_dev_card_keys()}.items()
    }


@pytest.fixture(scope="session")
async def workers_database(endpoints: Endpoints) -> AsyncIterator[str]:
    async with new_scratch_database(endpoints, "jz_workers_test") as name:
        yield name


@pytest.fixture(scope="session")
async def workers(
    harness: ServiceHarness, workers_database: str, workers_keys: dict[str, str]
) -> AsyncIterator[RunningService]:
    svc = await harness.start("workers", workers_database, 0, False, **workers_keys)
    yield svc
    svc.stop()  # before its scratch database is dropped


@pytest.fixture
async def scratch_database(endpoints: Endpoints) -> AsyncIterator[str]:
    """A database of its own, for tests that must not share a relay or a schema."""
    async with new_scratch_database(endpoints, "jz_scratch") as name:
        yield name


NO_SERVICE_MIGRATIONS = Path("/nonexistent")


@pytest.fixture
def migrations() -> Path:
    """The service's migrations that the ``pool`` fixture's database gets beside the common tables
    (the outbox, the inbox, the timers): none, unless the test module overrides this fixture."""
    return NO_SERVICE_MIGRATIONS


@pytest.fixture
async def pool(endpoints: Endpoints, scratch_database: str, migrations: Path) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a scratch database migrated with ``migrations``."""
    dsn = endpoints.dsn(scratch_database)
    await migrate(dsn, migrations)
    pool = await create_pool(dsn)
    yield pool
    await pool.close()
