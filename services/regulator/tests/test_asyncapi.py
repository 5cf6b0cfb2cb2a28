"""docs/asyncapi.yaml is the contract regulators code against: it is what the generator makes
now, it describes every topic and event type the projection writes, and a record the projection
makes of each type (every field filled) conforms to the payload schema it documents."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from libs.common.events import EventEnvelope
from services.regulator.asyncapi import DOCUMENT, document, render, to_yaml
from services.regulator.domain.projection import CLASSIFICATION, Treatment, project, source_service
from services.regulator.topics import INDICATORS_TOPIC, REGULATOR_TOPICS, regulator_topic

DOC = document()
KEY = b"k" * 32


def test_the_committed_document_is_the_generated_one() -> None:
    assert DOCUMENT.read_text() == render(), "docs/asyncapi.yaml is stale: run `make asyncapi`"


def _channel_of(topic: str) -> dict[str, Any]:
    [channel] = [c for c in DOC["channels"].values() if c["address"] == topic]
    return dict(channel)


def test_every_regulator_topic_has_a_channel_and_an_operation() -> None:
    addresses = {c["address"] for c in DOC["channels"].values()}
    operated = {o["channel"]["$ref"].rpartition("/")[2] for o in DOC["operations"].values()}

    assert addresses == {*REGULATOR_TOPICS.values(), INDICATORS_TOPIC}
    assert operated == set(DOC["channels"])


@pytest.mark.parametrize("event_type", sorted(CLASSIFICATION))
def test_every_type_the_projection_writes_is_a_message_of_its_topic(event_type: str) -> None:
    service = source_service(event_type)
    assert service is not None
    refs = [m["$ref"] for m in _channel_of(regulator_topic(service))["messages"].values()]

    assert f"#/components/messages/{event_type}" in refs
    assert DOC["components"]["messages"][event_type]["name"] == event_type


@pytest.mark.parametrize("event_type", sorted(CLASSIFICATION))
def test_a_payload_has_exactly_the_fields_kept_or_pseudonymised(event_type: str) -> None:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(event_type)
    shown = {
        descriptor.fields_by_name[name].json_name
        for name, treatment in CLASSIFICATION[event_type].items()
        if treatment is not Treatment.DROP
    }

    assert set(DOC["components"]["messages"][event_type]["payload"]["properties"]) == shown


def test_the_indicators_payload_has_every_field_of_district_day() -> None:
    [ref] = _channel_of(INDICATORS_TOPIC)["messages"].values()
    payload = DOC["components"]["messages"][ref["$ref"].rpartition("/")[2]]["payload"]

    assert set(payload["properties"]) >= {"districtCode", "date", "ordersPlaced", "creditLevels"}
    assert payload["properties"]["creditLevels"]["items"] == {
        "$ref": "#/components/schemas/jiazheng.regulator.v1.LevelCount"
    }


def _filled(descriptor: Descriptor, depth: int = 0) -> Message:
    """A message with every field set to something other than its default (nested ones too)."""
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        value = _value(field, depth)
        if value is None:
            continue
        if field.is_repeated:
            target = getattr(message, field.name)
            target.extend([value, value]) if field.message_type is None else target.add().CopyFrom(value)
        elif field.message_type is not None:
            getattr(message, field.name).CopyFrom(value)
        else:
            setattr(message, field.name, value)
    return message


def _value(field: FieldDescriptor, depth: int) -> Any:
    if field.message_type is not None:
        if field.message_type.GetOptions().map_entry or depth > 3:
            return None
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return Timestamp(seconds=1_790_000_000)
        return _filled(field.message_type, depth + 1)
    if field.enum_type is not None:
        return field.enum_type.values[-1].number
    return {
        # ids bare, other strings as resource names (a pseudonymised name keeps its collection)
        FieldDescriptor.TYPE_STRING: "id-42" if field.name.endswith(("_id", "_ids")) else "things/id-42",
        FieldDescriptor.TYPE_BOOL: True,
        FieldDescriptor.TYPE_DOUBLE: 1.5,
        FieldDescriptor.TYPE_FLOAT: 1.5,
        FieldDescriptor.TYPE_BYTES: b"\x01",
    }.get(field.type, 7)


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": int | float,
}


def _conforms(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """The ways ``value`` breaks ``schema`` (the JSON Schema keywords the generator writes)."""
    if "$ref" in schema:
        return _conforms(value, DOC["components"]["schemas"][schema["$ref"].rpartition("/")[2]], where)
    if not isinstance(value, _TYPES[schema["type"]]):
        return [f"{where}: {value!r} is not {schema['type']}"]
    if schema["type"] == "object":
        return _object_problems(value, schema, where)
    if schema["type"] == "array":
        return [p for i, v in enumerate(value) for p in _conforms(v, schema["items"], f"{where}[{i}]")]
    return _scalar_problems(value, schema, where)


def _object_problems(value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    known = schema.get("properties", {})
    problems = []
    for k, v in value.items():
        inner = known.get(k) or schema.get("additionalProperties")
        problems += _conforms(v, inner, f"{where}.{k}") if inner else [f"{where}.{k}: not in the schema"]
    return problems


def _scalar_problems(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    problems = [f"{where}: {value!r} not one of the enum"] if value not in schema.get("enum", [value]) else []
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if schema.get("format") == "date-time":
        datetime.fromisoformat(value)
    return problems


@pytest.mark.parametrize("event_type", sorted(CLASSIFICATION))
def test_a_projected_record_of_each_type_conforms_to_its_payload_schema(event_type: str) -> None:
    source = _filled(descriptor_pool.Default().FindMessageTypeByName(event_type))
    envelope = EventEnvelope(
        id="e-1",
        type=event_type,
        source="/jiazheng/test",
        subject="workers/w-1",
        time=datetime(2026, 11, 30, tzinfo=UTC),
        data=source.SerializeToString(),
    )
    record = project(envelope, KEY)
    assert record is not None

    payload = json.loads(record.value)
    assert payload
    assert _conforms(payload, DOC["components"]["messages"][event_type]["payload"], "payload") == []


def test_yaml_quotes_what_a_yaml_reader_would_take_for_another_type() -> None:
    text = to_yaml({"on": "yes", "n": 3, "list": [{"a": True, "b": []}], "text": "two\n\nlines", "e": {}})

    assert text == '"on": "yes"\n"n": 3\nlist:\n  - a: true\n    b: []\ntext: |-\n  two\n\n  lines\ne: {}\n'
