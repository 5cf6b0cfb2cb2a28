"""The regulator topics (docs/regulators.md): one per producing service, and the indicators'."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from libs.common.kafka import events_topic

# The services whose events regulators see, each re-published on its own regulator topic.
SOURCE_SERVICES = ("orders", "workers", "complaints", "credit", "insurance")


def regulator_topic(service: str) -> str:
    """Where ``service``'s events are re-published without personal data."""
    return f"jiazheng.regulator.{service}.v1"


# Source events topic -> regulator topic.
REGULATOR_TOPICS: Mapping[str, str] = MappingProxyType(
    {events_topic(s): regulator_topic(s) for s in SOURCE_SERVICES}
)
INDICATORS_TOPIC = regulator_topic("indicators")
