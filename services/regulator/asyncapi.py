"""The AsyncAPI 3 contract of the regulator topics (docs/asyncapi.yaml), generated from the
projection's classification and the protobuf descriptors: one channel per regulator topic, one
message per event type the projection writes there (its payload: the fields kept or
pseudonymised, in protobuf's JSON mapping), the CloudEvents headers as a message trait, and the
indicators' DistrictDay. ``python -m services.regulator.asyncapi`` (``make asyncapi``) writes it;
a unit test fails when the committed document is not what this module generates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from jiazheng.regulator.v1 import regulator_pb2
from libs.common.events import SPEC_VERSION
from services.regulator.domain.projection import (
    CLASSIFICATION,
    JSON_CONTENT_TYPE,
    REGULATOR_SOURCE,
    Field,
    Treatment,
    source_service,
)
from services.regulator.domain.pseudonym import IdKind
from services.regulator.topics import INDICATORS_TOPIC, SOURCE_SERVICES, regulator_topic

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
KAFKA_BINDING = "0.5.0"
TRAIT = "#/components/messageTraits/CloudEvent"

DESCRIPTION = f"""\
What regulators read (docs/regulators.md): every domain event a regulator may see, re-published
without personal data on one topic per producing service, and the indicators per district and
Beijing day. Records use the CloudEvents Kafka binary binding (the `ce_*` headers) with a JSON
value: protobuf's JSON mapping of the source event with only the fields kept or pseudonymised
(lowerCamelCase names; a field at its default value is omitted; enums by name; 64-bit integers
as strings; times in RFC 3339).

**Deduplicate by `ce_id`.** Delivery is at least once: a projector's restart can publish a
second copy of an event, always with the same `ce_id` (a UUID v5 of the source event's id).
Readers keep the `ce_id`s they have seen and skip a copy; copies follow the original closely
(the gRPC feed, `jiazheng.regulator.v1.RegulatorService/Subscribe`, skips a `ce_id` seen in the
last 10,000 records of its partition). The record key is the pseudonymous subject: one
aggregate's events are in order within its partition.

Pseudonyms are keyed hashes (`<prefix><26 base32 characters>`: `w-` worker, `o-` order, `k-`
case, `c-` claim, `d-` card, `f-` offer); one id is the same pseudonym in every event of every
topic until the key is rotated. CloudEvents spec version {SPEC_VERSION}."""

_PSEUDONYM = "[a-z2-7]{26}"
_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    }
)
_INT32 = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_FIXED32,
    }
)
_SCALARS: Mapping[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    **{t: {"type": "string", "pattern": "^-?[0-9]+$"} for t in _INT64},
    **{t: {"type": "integer"} for t in _INT32},
}
_WELL_KNOWN: Mapping[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
}


def topic_types() -> dict[str, list[str]]:
    """Each regulator events topic with the event types the projection writes on it."""
    by_topic: dict[str, list[str]] = {regulator_topic(s): [] for s in SOURCE_SERVICES}
    for event_type in sorted(CLASSIFICATION):
        service = source_service(event_type)
        if service is not None:
            by_topic[regulator_topic(service)].append(event_type)
    return by_topic


class _Schemas:
    """JSON Schemas of protobuf messages in protobuf's JSON mapping; the types fields refer to are
    collected under ``components.schemas`` (by full name) and referenced."""

    def __init__(self) -> None:
        self.named: dict[str, dict[str, Any]] = {}

    def projected(self, event_type: str, fields: Mapping[str, Field]) -> dict[str, Any]:
        """The payload of a projected event: its fields kept or pseudonymised."""
        descriptor = descriptor_pool.Default().FindMessageTypeByName(event_type)
        shown = [f for f in descriptor.fields if fields.get(f.name, Treatment.DROP) is not Treatment.DROP]
        return self._object(descriptor, shown, fields)

    def whole(self, descriptor: Descriptor) -> dict[str, Any]:
        return self._object(descriptor, descriptor.fields, {})

    def _object(
        self, descriptor: Descriptor, shown: Iterable[FieldDescriptor], fields: Mapping[str, Field]
    ) -> dict[str, Any]:
        properties = {f.json_name: self._field(f, fields.get(f.name, Treatment.KEEP)) for f in shown}
        return {"type": "object", "title": descriptor.name, "properties": properties}

    def _field(self, field: FieldDescriptor, treatment: Field) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value, treatment)}
        single = self._single(field, treatment)
        return {"type": "array", "items": single} if field.is_repeated else single

    def _single(self, field: FieldDescriptor, treatment: Field) -> dict[str, Any]:
        if isinstance(treatment, IdKind):
            return _pseudonym(treatment)
        if field.enum_type is not None:
            return _enum(field.enum_type)
        if field.message_type is not None:
            return self._reference(field.message_type)
        return dict(_SCALARS[field.type])

    def _reference(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        if descriptor.file.package == "google.protobuf":
            raise ValueError(f"{descriptor.full_name} has a JSON mapping of its own; describe it here")
        if descriptor.full_name not in self.named:
            self.named[
                descriptor.full_name
            ] = {}  # taken before its fields: a recursive type refers to itself
            self.named[descriptor.full_name] = self.whole(descriptor)
        return {"$ref": f"#/components/schemas/{descriptor.full_name}"}


def _pseudonym(kind: IdKind) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": f"^([a-z]+/)?{kind.prefix}{_PSEUDONYM}$",
        "description": f"The {kind.value}'s pseudonym (a keyed hash of its id).",
    }


def _enum(descriptor: EnumDescriptor) -> dict[str, Any]:
    return {"type": "string", "enum": [v.name for v in descriptor.values]}


def _short(event_type: str) -> str:
    return event_type.rpartition(".")[2]


def _channel_name(topic: str) -> str:
    return topic.split(".")[2]


def _event_message(schemas: _Schemas, event_type: str) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": _short(event_type),
        "summary": f"{_short(event_type)}, the source event without personal data (ce_type is the name).",
        "contentType": JSON_CONTENT_TYPE,
        "traits": [{"$ref": TRAIT}],
        "payload": schemas.projected(event_type, CLASSIFICATION[event_type]),
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The pseudonymous subject (= ce_subject)."},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def _indicators_message(schemas: _Schemas) -> dict[str, Any]:
    day = regulator_pb2.DistrictDay.DESCRIPTOR
    return {
        "name": day.full_name,
        "title": day.name,
        "summary": "A district's indicators on a Beijing day, published again at each update.",
        "description": "The latest record of a key holds the day's figures. ce_subject is the key, ce_time "
        "when the figures were published, and ce_id the same for the same figures of the same day.",
        "contentType": JSON_CONTENT_TYPE,
        "traits": [{"$ref": TRAIT}],
        "payload": schemas.whole(day),
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "<district code>/<YYYY-MM-DD>"},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def _channel(topic: str, names: Iterable[str], description: str) -> dict[str, Any]:
    return {
        "address": topic,
        "description": description,
        "messages": {_short(n): {"$ref": f"#/components/messages/{n}"} for n in names},
    }


def _operation(channel: str, names: Iterable[str]) -> dict[str, Any]:
    return {
        "action": "receive",
        "summary": f"Read the {channel} regulator topic.",
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{_short(n)}"} for n in names],
    }


def _headers() -> dict[str, Any]:
    return {
        "type": "object",
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_type",
            "ce_source",
            "ce_subject",
            "ce_time",
            "content-type",
        ],
        "properties": {
            "ce_specversion": {"type": "string", "const": SPEC_VERSION},
            "ce_id": {
                "type": "string",
                "description": "A UUID v5 of the source event's id: every copy of an event has the same; "
                "deduplicate by it.",
            },
            "ce_type": {"type": "string", "description": "The message's name (a source event's type)."},
            "ce_source": {"type": "string", "const": REGULATOR_SOURCE},
            "ce_subject": {
                "type": "string",
                "description": "The record key: an event's pseudonymous subject, e.g. workers/w-…",
            },
            "ce_time": {"type": "string", "format": "date-time", "description": "When the event happened."},
            "content-type": {"type": "string", "const": JSON_CONTENT_TYPE},
        },
    }


def document() -> dict[str, Any]:
    """The AsyncAPI document, as data."""
    schemas = _Schemas()
    by_topic = topic_types()
    messages = {t: _event_message(schemas, t) for types in by_topic.values() for t in types}
    channels = {
        _channel_name(topic): _channel(
            topic, types, f"The events of jiazheng.{_channel_name(topic)}.events.v1."
        )
        for topic, types in by_topic.items()
    }
    day = regulator_pb2.DistrictDay.DESCRIPTOR.full_name
    messages[day] = _indicators_message(schemas)
    channels["indicators"] = _channel(INDICATORS_TOPIC, [day], "The indicators per district and Beijing day.")
    operations = {
        f"read{name.capitalize()}": _operation(
            name, [m["$ref"].rpartition("/")[2] for m in c["messages"].values()]
        )
        for name, c in channels.items()
    }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "jiazheng regulator topics", "version": "1.0.0", "description": DESCRIPTION},
        "defaultContentType": JSON_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "messageTraits": {"CloudEvent": {"headers": _headers()}},
            "schemas": dict(sorted(schemas.named.items())),
        },
    }


# YAML: block style, every string double-quoted as JSON quotes it (a JSON string is a YAML one).
_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_.$-]*$")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def to_yaml(value: Any, indent: int = 0) -> str:
    """``value`` (dicts, lists, strings, numbers, booleans) as a YAML document."""
    return "".join(_lines(value, indent))


def _lines(value: Any, indent: int) -> Iterable[str]:
    pad = " " * indent
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _entry(f"{pad}{_key(key)}:", item, indent)
    elif isinstance(value, list) and value:
        for item in value:
            if isinstance(item, dict) and item:  # "- key: value", its other keys below
                first, *rest = _lines(item, indent + 2)
                yield f"{pad}- {first.lstrip()}"
                yield from rest
            else:
                yield from _entry(f"{pad}-", item, indent)
    else:
        yield f"{pad}{_scalar(value)}\n"


def _entry(head: str, item: Any, indent: int) -> Iterable[str]:
    if isinstance(item, dict | list) and item:
        yield f"{head}\n"
        yield from _lines(item, indent + 2)
    elif isinstance(item, str) and "\n" in item:  # a literal block, kept as written
        yield f"{head} |-\n"
        yield from (f"{' ' * (indent + 2)}{line}\n" if line else "\n" for line in item.split("\n"))
    else:
        yield f"{head} {_scalar(item)}\n"


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) and key.lower() not in _YAML_WORDS else json.dumps(key)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(str(value), ensure_ascii=False)


def render() -> str:
    header = "# Generated by `make asyncapi` (services/regulator/asyncapi.py): do not edit by hand.\n"
    return header + to_yaml(document())


def main() -> None:
    DOCUMENT.write_text(render())


if __name__ == "__main__":
    main()
