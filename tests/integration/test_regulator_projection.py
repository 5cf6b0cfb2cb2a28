"""The regulator process on the real stack: it serves, stops on SIGTERM, and projects the source
events onto the regulator topics without personal data, exactly once in effect."""

from __future__ import annotations

import asyncio
import signal

from deploy.local.services import health_status
from tests.integration.harness import ServiceHarness


async def test_regulator_serves_health_and_stops_cleanly_on_sigterm(harness: ServiceHarness) -> None:
    regulator = await harness.start("regulator", consumer_group_prefix="test-r1-health")

    assert await health_status(regulator.port) == "SERVING"
    regulator.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(regulator.proc.wait, 30) == 0
