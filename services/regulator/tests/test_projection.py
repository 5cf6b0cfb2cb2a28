"""The projection: every field of every source event type classified, what each treatment does
to a filled-in event of each type, and the regulator record's CloudEvents headers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from jiazheng.complaints.events.v1 import events_pb2 as complaints_events
from jiazheng.orders.events.v1 import events_pb2 as orders_events
from jiazheng.workers.events.v1 import events_pb2 as workers_events
from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import OutgoingRecord
from services.regulator.domain.projection import (
    CLASSIFICATION,
    NOT_PROJECTED,
    REGULATOR_NAMESPACE,
    SOURCE_FILES,
    Treatment,
    Unprojectable,
    project,
)
from services.regulator.domain.pseudonym import IdKind, pseudonym

KEY = b"p" * 32
SOURCE_TYPES = sorted(
    f"{file.package}.{name}" for file in SOURCE_FILES for name in file.message_types_by_name
)


def test_every_source_event_type_is_either_projected_or_named_as_not_projected() -> None:
    assert sorted({*CLASSIFICATION, *NOT_PROJECTED}) == SOURCE_TYPES
    assert not set(CLASSIFICATION) & set(NOT_PROJECTED)


@pytest.mark.parametrize("event_type", sorted(CLASSIFICATION))
def test_every_field_of_a_projected_type_has_a_classification(event_type: str) -> None:
    fields = descriptor_pool.Default().FindMessageTypeByName(event_type).fields_by_name

    assert sorted(CLASSIFICATION[event_type]) == sorted(fields)


def _filled(event_type: str) -> Message:
    """An event of ``event_type`` whose every string field holds a value found nowhere else."""
    message = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(event_type))()
    for field in message.DESCRIPTOR.fields:
        if field.type != FieldDescriptor.TYPE_STRING:
            continue
        value = f"{field.name}-{uuid.uuid4()}"
        if field.is_repeated:
            getattr(message, field.name).extend([value, value + "-2"])
        else:
            setattr(message, field.name, value)
    return message


def _strings(message: Message, name: str) -> list[str]:
    value = getattr(message, name)
    return [value] if isinstance(value, str) else list(value)


def _source(message: Message, subject: str = "workers/worker-1") -> EventEnvelope:
    return new_event(message, source="/test", subject=subject, time=datetime(2026, 11, 30, 2, tzinfo=UTC))


@pytest.mark.parametrize("event_type", sorted(CLASSIFICATION))
def test_kept_values_stay_pseudonymised_ids_are_replaced_and_dropped_values_are_gone(event_type: str) -> None:
    message = _filled(event_type)
    record = project(_source(message), KEY)

    assert record is not None
    text = record.value.decode()
    for field in (f for f in message.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_STRING):
        treatment = CLASSIFICATION[event_type][field.name]
        for value in _strings(message, field.name):
            if treatment is Treatment.KEEP:
                assert json.dumps(value) in text, field.name
            else:
                assert value not in text, field.name
            if isinstance(treatment, IdKind):
                assert json.dumps(pseudonym(KEY, treatment, value)) in text, field.name


def _headers(record: OutgoingRecord) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


def test_a_case_filed_projects_to_the_complaints_regulator_topic_with_pseudonymous_ids() -> None:
    filed = complaints_events.CaseFiled(
        case_id="case-1",
        order_id="order-1",
        worker_id="worker-1",
        company_id="company-1",
        district_code="110105",
        category=complaints_events.CaseFiled().category,
    )
    source = _source(filed, subject="cases/case-1")

    record = project(source, KEY)

    assert record is not None
    assert record.topic == "jiazheng.regulator.complaints.v1"
    assert record.key == f"cases/{pseudonym(KEY, IdKind.CASE, 'case-1')}".encode()
    assert json.loads(record.value) == {
        "caseId": pseudonym(KEY, IdKind.CASE, "case-1"),
        "orderId": pseudonym(KEY, IdKind.ORDER, "order-1"),
        "workerId": pseudonym(KEY, IdKind.WORKER, "worker-1"),
        "companyId": "company-1",
        "districtCode": "110105",
    }
    assert _headers(record) == {
        "ce_specversion": "1.0",
        "ce_id": str(uuid.uuid5(REGULATOR_NAMESPACE, source.id)),
        "ce_type": "jiazheng.complaints.events.v1.CaseFiled",
        "ce_source": "/jiazheng/regulator",
        "ce_subject": record.key.decode(),
        "ce_time": "2026-11-30T02:00:00Z",
        "content-type": "application/json",
    }


def test_an_order_created_keeps_what_regulators_measure_and_pseudonymises_order_and_worker() -> None:
    created = orders_events.OrderCreated(
        order_id="order-1",
        platform_id="platform-1",
        worker_id="worker-1",
        district_code="110105",
        price_fen=12_000,
        duration_hours=3,
    )
    created.create_time.FromDatetime(datetime(2026, 11, 30, 1, tzinfo=UTC))

    record = project(_source(created, subject="orders/order-1"), KEY)

    assert record is not None
    assert record.topic == "jiazheng.regulator.orders.v1"
    assert json.loads(record.value) == {
        "orderId": pseudonym(KEY, IdKind.ORDER, "order-1"),
        "platformId": "platform-1",
        "districtCode": "110105",
        "workerId": pseudonym(KEY, IdKind.WORKER, "worker-1"),
        "durationHours": 3,
        "createTime": "2026-11-30T01:00:00Z",
        "priceFen": "12000",
    }


def test_one_worker_is_one_pseudonym_across_topics_and_events() -> None:
    registered = project(_source(workers_events.WorkerRegistered(worker_id="worker-1")), KEY)
    filed = project(_source(complaints_events.CaseFiled(case_id="k", worker_id="worker-1"), "cases/k"), KEY)

    assert registered is not None
    assert filed is not None
    assert json.loads(registered.value)["workerId"] == json.loads(filed.value)["workerId"]
    assert registered.key.decode() == "workers/" + json.loads(filed.value)["workerId"]


def test_the_same_source_event_always_projects_to_the_same_id() -> None:
    source = _source(workers_events.TrainingRecorded(worker_id="worker-1", hours=8))

    first, again = project(source, KEY), project(source, KEY)

    assert first is not None
    assert again is not None
    assert (
        _headers(first)["ce_id"]
        == _headers(again)["ce_id"]
        == str(uuid.uuid5(REGULATOR_NAMESPACE, source.id))
    )


def test_consent_events_and_unknown_types_are_not_projected() -> None:
    consent = workers_events.ConsentGranted(worker_id="worker-1", consumer_ref="consumer-ref-1")

    assert project(_source(consent), KEY) is None
    assert (
        project(EventEnvelope("id", "jiazheng.other.events.v1.X", "/t", "x/1", datetime.now(UTC), b""), KEY)
        is None
    )


def test_a_subject_outside_the_known_collections_is_unprojectable() -> None:
    with pytest.raises(Unprojectable):
        project(_source(workers_events.TrainingRecorded(worker_id="w"), subject="people/p1"), KEY)


def test_an_undecodable_payload_is_a_permanent_error() -> None:
    source = _source(workers_events.TrainingRecorded(worker_id="w"))
    broken = EventEnvelope(source.id, source.type, source.source, source.subject, source.time, b"\xff\xff")

    with pytest.raises(PermanentEventError):
        project(broken, KEY)
