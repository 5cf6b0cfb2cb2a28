"""Composition root of the workers service.

It migrates its database and answers gRPC health checks; its APIs, events and consumers
arrive with the issues that build its capabilities.
"""

from __future__ import annotations

from pathlib import Path

from libs.common.runtime import bare_components, run_service
from libs.common.settings import ServiceSettings

MIGRATIONS = Path(__file__).with_name("migrations")


def main() -> None:
    run_service(ServiceSettings(service_name="workers"), MIGRATIONS, bare_components)
