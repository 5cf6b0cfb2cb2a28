"""Reflection: every symbol resolves (methods and extensions too), comments come from the descriptor
set, and the one handler answers under both protocol names on a real grpc.aio server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2 as pb

from jiazheng.orders.v1 import orders_pb2
from libs.common import reflection
from libs.common.settings import DEFAULT_DESCRIPTOR_SET

ORDERS = orders_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVED = [HEALTH, ORDERS, *reflection.SERVICE_NAMES]
CREATE_ORDER_COMMENT = "Creates an order for the calling platform"


@pytest.fixture(scope="module")
def protoset() -> Path:
    path = DEFAULT_DESCRIPTOR_SET
    if not path.exists():
        pytest.fail(f"no descriptor set at {path}: run `make proto`")
    return path


@pytest.fixture(scope="module")
def servicer(protoset: Path) -> reflection.ReflectionServicer:
    return reflection.ReflectionServicer(reflection.build_index(SERVED, protoset), SERVED)


def files_of(response: Any) -> list[descriptor_pb2.FileDescriptorProto]:
    return [
        descriptor_pb2.FileDescriptorProto.FromString(data)
        for data in response.file_descriptor_response.file_descriptor_proto
    ]


def comments_of(file: descriptor_pb2.FileDescriptorProto) -> str:
    return "".join(location.leading_comments for location in file.source_code_info.location)


@pytest.mark.parametrize(
    ("symbol", "file"),
    [
        ("jiazheng.orders.v1.OrderService", "jiazheng/orders/v1/orders.proto"),
        ("jiazheng.orders.v1.OrderService.CreateOrder", "jiazheng/orders/v1/orders.proto"),
        (".jiazheng.orders.v1.OrderService.GetOrder", "jiazheng/orders/v1/orders.proto"),
        ("jiazheng.orders.v1.CreateOrderRequest", "jiazheng/orders/v1/orders.proto"),
        ("jiazheng.orders.v1.Order.district_code", "jiazheng/orders/v1/orders.proto"),
        ("jiazheng.orders.v1.OrderState", "jiazheng/orders/v1/orders.proto"),
        ("jiazheng.orders.v1.ORDER_STATE_CREATED", "jiazheng/orders/v1/orders.proto"),
        ("jiazheng.type.v1.ServiceType", "jiazheng/type/v1/service_type.proto"),
        ("jiazheng.orders.events.v1.OrderCreated", "jiazheng/orders/events/v1/events.proto"),
        ("buf.validate.field", "buf/validate/validate.proto"),
        ("buf.validate.FieldRules.string", "buf/validate/validate.proto"),
        ("google.protobuf.Timestamp", "google/protobuf/timestamp.proto"),
        ("grpc.health.v1.Health.Check", "grpc_health/v1/health.proto"),
        ("grpc.reflection.v1.ServerReflection.ServerReflectionInfo", "grpc/reflection/v1/reflection.proto"),
        ("grpc.reflection.v1alpha.ServerReflectionRequest", "grpc_reflection/v1alpha/reflection.proto"),
    ],
)
def test_every_kind_of_symbol_resolves_to_its_file(
    servicer: reflection.ReflectionServicer, symbol: str, file: str
) -> None:
    response = servicer.answer(pb.ServerReflectionRequest(file_containing_symbol=symbol))

    assert files_of(response)[0].name == file
    assert response.original_request.file_containing_symbol == symbol


def test_nested_types_and_oneofs_are_indexed() -> None:
    file = descriptor_pb2.FileDescriptorProto(
        package="p",
        message_type=[
            descriptor_pb2.DescriptorProto(
                name="Outer",
                nested_type=[descriptor_pb2.DescriptorProto(name="Inner")],
                enum_type=[
                    descriptor_pb2.EnumDescriptorProto(
                        name="Kind", value=[descriptor_pb2.EnumValueDescriptorProto(name="KIND_A")]
                    )
                ],
                oneof_decl=[descriptor_pb2.OneofDescriptorProto(name="choice")],
            )
        ],
    )

    assert set(reflection.file_symbols(file)) == {
        "p.Outer",
        "p.Outer.Inner",
        "p.Outer.Kind",
        "p.Outer.KIND_A",
        "p.Outer.choice",
    }


def test_method_answer_carries_the_comments_and_every_transitive_import(
    servicer: reflection.ReflectionServicer,
) -> None:
    response = servicer.answer(
        pb.ServerReflectionRequest(file_containing_symbol="jiazheng.orders.v1.OrderService.CreateOrder")
    )

    files = files_of(response)
    assert CREATE_ORDER_COMMENT in comments_of(files[0])
    names = {file.name for file in files}
    for file in files:
        assert set(file.dependency) <= names


def test_file_by_filename_includes_transitive_dependencies(servicer: reflection.ReflectionServicer) -> None:
    response = servicer.answer(pb.ServerReflectionRequest(file_by_filename="jiazheng/orders/v1/orders.proto"))

    assert {file.name for file in files_of(response)} >= {
        "jiazheng/orders/v1/orders.proto",
        "buf/validate/validate.proto",
        "google/protobuf/descriptor.proto",  # through validate.proto
        "google/protobuf/timestamp.proto",
        "jiazheng/type/v1/service_type.proto",
    }


def test_protovalidate_extension_resolves_by_type_and_number(servicer: reflection.ReflectionServicer) -> None:
    by_number = servicer.answer(
        pb.ServerReflectionRequest(
            file_containing_extension=pb.ExtensionRequest(
                containing_type="google.protobuf.FieldOptions", extension_number=1159
            )
        )
    )
    numbers = servicer.answer(
        pb.ServerReflectionRequest(all_extension_numbers_of_type="google.protobuf.FieldOptions")
    )

    assert files_of(by_number)[0].name == "buf/validate/validate.proto"
    assert numbers.all_extension_numbers_response.base_type_name == "google.protobuf.FieldOptions"
    assert 1159 in numbers.all_extension_numbers_response.extension_number


@pytest.mark.parametrize(
    "request_",
    [
        pb.ServerReflectionRequest(file_containing_symbol="jiazheng.orders.v1.OrderService.Nope"),
        pb.ServerReflectionRequest(file_by_filename="nope.proto"),
        pb.ServerReflectionRequest(all_extension_numbers_of_type="nope.Nope"),
        pb.ServerReflectionRequest(
            file_containing_extension=pb.ExtensionRequest(
                containing_type="google.protobuf.FieldOptions", extension_number=1
            )
        ),
    ],
)
def test_unknown_names_are_not_found(servicer: reflection.ReflectionServicer, request_: Any) -> None:
    assert servicer.answer(request_).error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_both_protocol_names_are_listed(servicer: reflection.ReflectionServicer) -> None:
    response = servicer.answer(pb.ServerReflectionRequest(list_services=""))

    names = [service.name for service in response.list_services_response.service]
    assert names == sorted(SERVED)
    assert {reflection.V1, reflection.V1ALPHA} <= set(names)


def test_without_the_descriptor_set_methods_resolve_without_comments(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        index = reflection.build_index(SERVED, Path("/nonexistent/jiazheng.binpb"))

    assert "/nonexistent/jiazheng.binpb" in caplog.text
    assert "without comments" in caplog.text
    orders = index.files[index.symbols["jiazheng.orders.v1.OrderService.CreateOrder"]]
    assert not orders.source_code_info.location


def test_an_unreadable_descriptor_set_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "broken.binpb"
    broken.write_bytes(b"\xff\xff not a descriptor set")

    with caplog.at_level(logging.WARNING):
        index = reflection.build_index(SERVED, broken)

    assert "without comments" in caplog.text
    assert "jiazheng.orders.v1.OrderService.CreateOrder" in index.symbols


def test_a_descriptor_set_lacking_a_served_service_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stale = tmp_path / "stale.binpb"
    orders = descriptor_pb2.FileDescriptorProto()
    orders_pb2.DESCRIPTOR.CopyToProto(orders)
    del orders.service[:]
    stale.write_bytes(descriptor_pb2.FileDescriptorSet(file=[orders]).SerializeToString())

    with caplog.at_level(logging.WARNING):
        index = reflection.build_index(SERVED, stale)

    assert "lacks" in caplog.text
    assert "jiazheng.orders.v1.OrderService.CreateOrder" in index.symbols


# grpc's src/proto/grpc/reflection/v1/reflection.proto: message -> field -> (number, type, message type).
V1_MESSAGES = {
    "ServerReflectionRequest": {
        "host": (1, "TYPE_STRING", ""),
        "file_by_filename": (3, "TYPE_STRING", ""),
        "file_containing_symbol": (4, "TYPE_STRING", ""),
        "file_containing_extension": (5, "TYPE_MESSAGE", "ExtensionRequest"),
        "all_extension_numbers_of_type": (6, "TYPE_STRING", ""),
        "list_services": (7, "TYPE_STRING", ""),
    },
    "ExtensionRequest": {
        "containing_type": (1, "TYPE_STRING", ""),
        "extension_number": (2, "TYPE_INT32", ""),
    },
    "ServerReflectionResponse": {
        "valid_host": (1, "TYPE_STRING", ""),
        "original_request": (2, "TYPE_MESSAGE", "ServerReflectionRequest"),
        "file_descriptor_response": (4, "TYPE_MESSAGE", "FileDescriptorResponse"),
        "all_extension_numbers_response": (5, "TYPE_MESSAGE", "ExtensionNumberResponse"),
        "list_services_response": (6, "TYPE_MESSAGE", "ListServiceResponse"),
        "error_response": (7, "TYPE_MESSAGE", "ErrorResponse"),
    },
    "FileDescriptorResponse": {"file_descriptor_proto": (1, "TYPE_BYTES", "")},
    "ExtensionNumberResponse": {
        "base_type_name": (1, "TYPE_STRING", ""),
        "extension_number": (2, "TYPE_INT32", ""),
    },
    "ListServiceResponse": {"service": (1, "TYPE_MESSAGE", "ServiceResponse")},
    "ServiceResponse": {"name": (1, "TYPE_STRING", "")},
    "ErrorResponse": {"error_code": (1, "TYPE_INT32", ""), "error_message": (2, "TYPE_STRING", "")},
}


def test_v1alpha_messages_have_the_wire_layout_of_v1() -> None:
    layout = {
        message.name: {
            field.name: (
                field.number,
                descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
                field.message_type.name if field.message_type else "",
            )
            for field in message.fields
        }
        for message in pb.DESCRIPTOR.message_types_by_name.values()
    }

    assert layout == V1_MESSAGES


def test_served_v1_descriptor_reads_v1alpha_bytes() -> None:
    pool = descriptor_pool.DescriptorPool()
    alpha = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(alpha)
    pool.Add(reflection.v1_file(alpha))
    v1_request = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")
    )
    request = pb.ServerReflectionRequest(
        file_containing_extension=pb.ExtensionRequest(containing_type="a.B", extension_number=7)
    )

    decoded: Any = v1_request.FromString(request.SerializeToString())

    assert decoded.file_containing_extension.extension_number == 7


@pytest.fixture
async def server(protoset: Path) -> AsyncIterator[int]:
    server = grpc.aio.server()
    reflection.enable(server, [ORDERS], protoset)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(None)


@pytest.mark.parametrize("service", reflection.SERVICE_NAMES)
async def test_a_real_server_answers_under_both_names(server: int, service: str) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server}") as channel:
        call = channel.stream_stream(
            f"/{service}/ServerReflectionInfo",
            request_serializer=pb.ServerReflectionRequest.SerializeToString,
            response_deserializer=pb.ServerReflectionResponse.FromString,
        )
        requests = [
            pb.ServerReflectionRequest(list_services=""),
            pb.ServerReflectionRequest(file_containing_symbol="jiazheng.orders.v1.OrderService.CreateOrder"),
        ]
        listed, method = [reply async for reply in call(iter(requests))]

    assert {reflection.V1, reflection.V1ALPHA, ORDERS} == {
        s.name for s in listed.list_services_response.service
    }
    assert CREATE_ORDER_COMMENT in comments_of(files_of(method)[0])
