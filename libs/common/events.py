"""Protobuf events in the CloudEvents Kafka binary binding.

The Kafka record value is the serialized protobuf message; CloudEvents attributes travel as
``ce_*`` headers, the W3C ``traceparent`` beside them, and the key is the aggregate id so that
one aggregate's events stay in one partition, in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from libs.common.errors import PermanentEventError
from libs.common.telemetry import current_traceparent

CONTENT_TYPE = "application/protobuf"
SPEC_VERSION = "1.0"
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class EventEnvelope:
    """One CloudEvent: its attributes and its protobuf payload."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: bytes
    traceparent: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> bytes:
        return self.subject.encode()

    def headers(self) -> dict[str, str]:
        h = {
            "ce_specversion": SPEC_VERSION,
            "ce_id": self.id,
            "ce_type": self.type,
            "ce_source": self.source,
            "ce_subject": self.subject,
            "ce_time": self.time.isoformat().replace("+00:00", "Z"),
            "content-type": CONTENT_TYPE,
        }
        if self.traceparent:
            h["traceparent"] = self.traceparent
        h.update(self.extra_headers)
        return h

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.headers().items()]

    def parse(self, message_type: Callable[[], M]) -> M:
        msg = message_type()
        try:
            msg.ParseFromString(self.data)
        except DecodeError as exc:
            raise PermanentEventError(f"{self.type} {self.id}: undecodable payload: {exc}") from exc
        return msg


def event_type_of(message: Message) -> str:
    return message.DESCRIPTOR.full_name


def new_event(message: Message, *, source: str, subject: str, time: datetime | None = None) -> EventEnvelope:
    """Wrap a protobuf event, stamping a fresh id, the time it happened (now unless given) and the
    current trace context."""
    return EventEnvelope(
        id=str(uuid.uuid4()),
        type=event_type_of(message),
        source=source,
        subject=subject,
        time=time or datetime.now(UTC),
        data=message.SerializeToString(),
        traceparent=current_traceparent(),
    )


_NOT_EXTRA = frozenset({"traceparent", "content-type"})


def envelope_from_headers(headers: Mapping[str, str], data: bytes) -> EventEnvelope:
    """Rebuild an envelope from header strings (from Kafka or from the outbox row)."""
    try:
        return EventEnvelope(
            id=headers["ce_id"],
            type=headers["ce_type"],
            source=headers["ce_source"],
            subject=headers.get("ce_subject", ""),
            time=datetime.fromisoformat(headers["ce_time"]),
            data=data,
            traceparent=headers.get("traceparent"),
            extra_headers={
                k: v for k, v in headers.items() if k not in _NOT_EXTRA and not k.startswith("ce_")
            },
        )
    except (KeyError, ValueError) as exc:
        raise PermanentEventError(f"not a CloudEvent in binary binding: {exc!r}") from exc


def envelope_from_kafka(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None], value: bytes | None
) -> EventEnvelope:
    """Kafka allows null header values; they carry nothing, so they are dropped here."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    try:
        decoded = {k: v.decode() for k, v in items if v is not None}
    except UnicodeDecodeError as exc:
        raise PermanentEventError(f"header is not UTF-8: {exc}") from exc
    return envelope_from_headers(decoded, value or b"")
