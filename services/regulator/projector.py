"""The projection as faust agents: each source events topic read from the regulator's consumer
group (from the earliest offset the first time), each event projected and sent to its regulator
topic, exactly once in effect (docs/regulators.md).

Per event, in this order: the record is published and acknowledged by Kafka (acks=all), then
its source id is recorded in the ``projected-<service>`` table, and only then is the event
acknowledged to faust, whose consumer commits an offset once every event before it is
acknowledged. A crash before the publish loses nothing (the event is read again); between the
publish and the table's changelog write, a second copy with the same ``ce_id`` may follow;
after it, the event read again is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import faust
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from libs.common.errors import PermanentEventError
from libs.common.events import envelope_from_kafka
from libs.common.kafka import OutgoingRecord, events_topic
from services.regulator.domain.projection import Unprojectable, project
from services.regulator.domain.pseudonym import pseudonym_key
from services.regulator.skipped import skipped_records
from services.regulator.stall import BrokerOffsets
from services.regulator.topics import SOURCE_SERVICES, regulator_topic

if TYPE_CHECKING:  # the composition root imports this module
    from services.regulator.app import RegulatorSettings

log = logging.getLogger(__name__)

PROJECTED = Counter(
    "jz_regulator_projected_total",
    "Source events the regulator projection handled, by outcome",
    ["service", "outcome"],  # published, seen, not_projected, unprojectable
)


def register_projection(app: faust.App, settings: RegulatorSettings, offsets: BrokerOffsets) -> None:
    """One agent and one table of published source ids per source service."""
    key = pseudonym_key(settings.pseudonym_key.get_secret_value())
    for service in SOURCE_SERVICES:
        Projector(app, service, key, settings, offsets).register()


class Projector:
    """The projection of one source service's events onto its regulator topic."""

    def __init__(
        self, app: faust.App, service: str, key: bytes, settings: RegulatorSettings, offsets: BrokerOffsets
    ) -> None:
        self.app = app
        self.service = service
        self.key = key
        self.retry_s = (settings.consumer_retry_backoff_s, settings.consumer_max_backoff_s)
        self.source = app.topic(events_topic(service), key_serializer="raw", value_serializer="raw")
        self.target = app.topic(regulator_topic(service), key_serializer="raw", value_serializer="raw")
        # Source event id -> True once its record is published; backed by a changelog topic.
        self.seen = app.Table(f"projected-{service}", default=bool, partitions=settings.topic_partitions)
        self.name = f"regulator-project-{service}"
        watched = ([events_topic(service)], offsets)
        expected = app.Table(f"projected-{service}-offsets", partitions=settings.topic_partitions)
        self.records = skipped_records(app, self.name, expected, settings, watched)

    def register(self) -> None:
        self.app.agent(self.source, name=self.name)(self.consume)

    async def consume(self, stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await self.records.deliver(event.message, self.handle)

    async def handle(self, value: bytes | None, headers: Any) -> None:
        """Project one source record; a record that cannot be projected is logged and skipped
        (it would fail the same way every time)."""
        try:
            envelope = envelope_from_kafka(headers or [], value)
            record = project(envelope, self.key)
        except (PermanentEventError, Unprojectable) as exc:
            log.error(
                "source event not projectable", extra={"fields": {"service": self.service, "error": str(exc)}}
            )
            self._count("unprojectable")
        else:
            await self.publish_once(envelope.id, record)

    async def publish_once(self, source_id: str, record: OutgoingRecord | None) -> None:
        if record is None:
            self._count("not_projected")
        elif self.seen[source_id]:
            self._count("seen")
        else:
            await self.publish(record)
            self.seen[source_id] = True
            self._count("published")

    async def publish(self, record: OutgoingRecord) -> None:
        """Send and wait for Kafka's acknowledgement, waiting out an outage: an exception here
        would end the agent's iteration, and faust would acknowledge the event unpublished."""
        delay, max_delay = self.retry_s
        while True:
            try:
                sent = await self.target.send(
                    key=record.key, value=record.value, headers=list(record.headers), force=True
                )
                await sent
                return
            except KafkaError as exc:
                log.warning(
                    "regulator record not acknowledged; retrying",
                    extra={"fields": {"topic": record.topic, "error": repr(exc), "retry_in_s": delay}},
                )
                await asyncio.sleep(delay)
                delay = min(max(delay * 2, 0.05), max_delay)

    def _count(self, outcome: str) -> None:
        PROJECTED.labels(self.service, outcome).inc()
