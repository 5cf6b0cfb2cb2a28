"""The pure parts of the gRPC layer: validation paths, status mapping, BadRequest trailers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_reflection.v1alpha import reflection_pb2

from buf.validate import validate_pb2
from jiazheng.orders.v1 import orders_pb2
from jiazheng.type.v1 import service_type_pb2
from libs.common import errors
from libs.common.auth import ApiKeyStore
from libs.common.grpc_server import (
    GrpcServer,
    bad_request_trailer,
    status_code_for,
    violations_of,
    well_known_violations,
)

Mutation = Callable[[orders_pb2.CreateOrderRequest], None]


def _valid_request() -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        request_id=str(uuid.uuid4()),
        order=orders_pb2.Order(
            service_type=service_type_pb2.SERVICE_TYPE_CLEANING,
            district_code="110105",
            consumer_ref="c_123-abc",
            worker_id="w-42",
            scheduled_start_time=Timestamp(seconds=1_800_000_000),
            duration_hours=3,
        ),
    )


def _fields(request: orders_pb2.CreateOrderRequest) -> set[str]:
    return {path for path, _ in violations_of(request)}


def test_valid_request_has_no_violations() -> None:
    assert violations_of(_valid_request()) == []


def test_valid_request_without_worker_has_no_violations() -> None:
    request = _valid_request()
    request.order.worker_id = ""

    assert violations_of(request) == []


@pytest.mark.parametrize(
    "district", ["110101", "110102", "110105", "110108", "110109", "110111", "110116", "110119"]
)
def test_every_beijing_district_is_valid(district: str) -> None:
    request = _valid_request()
    request.order.district_code = district

    assert violations_of(request) == []


def test_bad_fields_are_reported_with_dotted_paths() -> None:
    request = _valid_request()
    request.request_id = "not-a-uuid"
    request.order.district_code = "310101"  # Shanghai
    request.order.duration_hours = 0

    violations = violations_of(request)

    assert {path for path, _ in violations} == {"request_id", "order.district_code", "order.duration_hours"}
    assert all(description for _, description in violations)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (
            lambda r: setattr(r.order, "service_type", service_type_pb2.SERVICE_TYPE_UNSPECIFIED),
            "order.service_type",
        ),
        (lambda r: setattr(r.order, "service_type", 99), "order.service_type"),
        (lambda r: setattr(r.order, "district_code", "110103"), "order.district_code"),  # 崇文, merged 2010
        (lambda r: setattr(r.order, "consumer_ref", ""), "order.consumer_ref"),
        (lambda r: setattr(r.order, "consumer_ref", "张三 13800000000"), "order.consumer_ref"),
        (lambda r: setattr(r.order, "consumer_ref", "a" * 65), "order.consumer_ref"),
        (lambda r: setattr(r.order, "worker_id", "w 42"), "order.worker_id"),
        (lambda r: r.order.ClearField("scheduled_start_time"), "order.scheduled_start_time"),
        (lambda r: setattr(r.order, "duration_hours", 745), "order.duration_hours"),
        (lambda r: setattr(r.order, "duration_hours", -1), "order.duration_hours"),
        (lambda r: setattr(r, "request_id", ""), "request_id"),
        (lambda r: r.ClearField("order"), "order"),
    ],
)
def test_each_rule_names_its_field(mutate: Mutation, path: str) -> None:
    request = _valid_request()
    mutate(request)

    assert _fields(request) == {path}


def test_duration_bounds_are_inclusive() -> None:
    for hours in (1, 744):
        request = _valid_request()
        request.order.duration_hours = hours
        assert violations_of(request) == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidArgument("f", "d"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.NotFound("orders/x"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.Aborted("x"), grpc.StatusCode.ABORTED),
        (errors.PermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
        (errors.ServiceError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_status_code_for_each_error(error: errors.ServiceError, code: grpc.StatusCode) -> None:
    assert status_code_for(error) is code


def test_every_service_error_subclass_has_a_specific_status() -> None:
    subclasses = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, errors.ServiceError) and obj is not errors.ServiceError
    ]

    assert len(subclasses) == 8
    for cls in subclasses:
        error = cls("f", "d") if cls is errors.InvalidArgument else cls("x")
        assert status_code_for(error) is not grpc.StatusCode.INTERNAL, cls


def test_status_code_for_a_subclass_follows_its_parent() -> None:
    class OrderNotFound(errors.NotFound):
        pass

    assert status_code_for(OrderNotFound("orders/x")) is grpc.StatusCode.NOT_FOUND


def test_bad_request_trailer_is_a_google_rpc_status_with_bad_request() -> None:
    trailer = bad_request_trailer(
        "order.district_code: bad", [("order.district_code", "bad"), ("request_id", "must be a UUID")]
    )

    assert len(trailer) == 1
    key, value = trailer[0]
    assert key == "grpc-status-details-bin"
    status = status_pb2.Status.FromString(value)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == "order.district_code: bad"
    assert len(status.details) == 1
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("order.district_code", "bad"),
        ("request_id", "must be a UUID"),
    ]


def test_bad_request_trailer_from_violations_of_names_the_field() -> None:
    request = _valid_request()
    request.order.duration_hours = 0

    _, value = bad_request_trailer("invalid", violations_of(request))[0]

    bad_request = error_details_pb2.BadRequest()
    assert status_pb2.Status.FromString(value).details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["order.duration_hours"]


@pytest.mark.parametrize(
    "start",
    [
        Timestamp(seconds=253_402_300_800),  # 10000-01-01
        Timestamp(seconds=-62_135_596_801),  # before 0001-01-01
        Timestamp(seconds=1_800_000_000, nanos=-1),
        Timestamp(seconds=1_800_000_000, nanos=1_000_000_000),
    ],
)
def test_a_timestamp_no_client_could_read_names_its_field(start: Timestamp) -> None:
    request = _valid_request()
    request.order.scheduled_start_time.CopyFrom(start)

    assert violations_of(request) == [
        ("order.scheduled_start_time", "must be a valid timestamp between years 0001 and 9999")
    ]


@pytest.mark.parametrize(
    "start",
    [Timestamp(seconds=253_402_300_799, nanos=999_999_999), Timestamp(seconds=-62_135_596_800)],
)
def test_the_extreme_valid_timestamps_pass(start: Timestamp) -> None:
    request = _valid_request()
    request.order.scheduled_start_time.CopyFrom(start)

    assert violations_of(request) == []


@pytest.mark.parametrize(
    ("duration", "valid"),
    [
        (Duration(seconds=315_576_000_000), True),
        (Duration(seconds=-5, nanos=-1), True),
        (Duration(seconds=315_576_000_001), False),
        (Duration(seconds=5, nanos=-1), False),
        (Duration(seconds=0, nanos=1_000_000_000), False),
    ],
)
def test_durations_are_checked_anywhere_in_a_message(duration: Duration, valid: bool) -> None:
    rules = validate_pb2.DurationRules()  # a message with a Duration field and a repeated one
    rules.const.CopyFrom(duration)
    getattr(rules, "in").append(duration)

    expected = [] if valid else ["const", "in[0]"]
    assert [path for path, _ in well_known_violations(rules)] == expected


def test_a_streaming_service_is_refused_until_it_has_a_guard_of_its_own() -> None:
    server = GrpcServer("test", ApiKeyStore({}), {}, "127.0.0.1", 0)
    with pytest.raises(ValueError, match="ServerReflectionInfo"):
        server.add(object(), reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"])


def test_a_violation_in_a_repeated_field_names_the_item() -> None:
    from jiazheng.workers.v1 import workers_pb2

    request = workers_pb2.CreateWorkerRequest(service_districts=["110105", "999"])
    assert (
        "service_districts[1]",
        "does not match regex pattern `^1101(0[125-9]|1[1-9])$`",
    ) in violations_of(request)
