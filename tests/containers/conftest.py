"""The container smoke test: the images `make images` builds, run as Kubernetes runs them.

It runs only when selected (`pytest -m containers`, as `make test-containers` does, where a
Docker engine answers); `make unit` deselects it, so it stays free of containers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.services import SERVICES, DevKey, new_dev_keys
from deploy.local.stack import SERVICE_DATABASES, Endpoints, create_database, default_home
from tests.containers.images import GATEWAY, ServiceContainers
from tests.integration.harness import RunningService, Testcontainers


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "containers: needs a Docker engine and the images of `make images`")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marked `containers`: `make unit` deselects them, `make test-containers` selects them."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.containers)


@pytest.fixture(scope="module")
def stack() -> Iterator[Endpoints]:
    """Kafka and PostgreSQL from our images, as the integration suite gets them under Docker."""
    containers = Testcontainers()
    try:
        yield containers.up()
    finally:
        containers.down()


@pytest.fixture(scope="module")
async def databases(stack: Endpoints) -> None:
    for name in SERVICE_DATABASES:
        await create_database(stack, f"jz_{name}")


@pytest.fixture(scope="module")
def keys() -> list[DevKey]:
    return new_dev_keys()


@pytest.fixture(scope="module")
def containers(stack: Endpoints, keys: list[DevKey]) -> Iterator[ServiceContainers]:
    with ServiceContainers.on(stack, keys, default_home("test-containers")) as started:
        yield started


@pytest.fixture(scope="module")
async def services(containers: ServiceContainers, databases: None) -> dict[str, RunningService]:
    """Every service in its own container, SERVING; the gateway last, calling the others'."""
    running = {name: containers.start(name) for name in SERVICES if name != GATEWAY}
    for svc in running.values():
        await svc.wait_serving(timeout=180)
    if GATEWAY in SERVICES:
        running[GATEWAY] = containers.start_gateway(running)
        await running[GATEWAY].wait_serving(timeout=60)
    return running
