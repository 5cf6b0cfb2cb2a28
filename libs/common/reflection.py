"""gRPC server reflection under both protocol names, answered from a descriptor set with comments.

grpcio-reflection serves only ``grpc.reflection.v1alpha``, cannot resolve methods
(``pkg.Service.Method``) and answers from the generated descriptors, which carry no comments.
Here every symbol of the project's FileDescriptorSet (``make protoset``, built with source info)
is indexed, and one handler is registered under the v1 and the v1alpha name: the two protocols'
messages are wire-identical (same fields, numbers and types), so the v1alpha classes serve both.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection_pb2 as pb

log = logging.getLogger(__name__)

# Where `make proto` writes the descriptor set: the checkout's gen/ (JZ_DESCRIPTOR_SET overrides it).

V1 = "grpc.reflection.v1.ServerReflection"
V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
SERVICE_NAMES = (V1, V1ALPHA)

FileProto = descriptor_pb2.FileDescriptorProto
FieldProto = descriptor_pb2.FieldDescriptorProto
MessageProto = descriptor_pb2.DescriptorProto
EnumProto = descriptor_pb2.EnumDescriptorProto


def _message_symbols(scope: str, message: MessageProto) -> Iterator[str]:
    name = scope + message.name
    yield name
    yield from (f"{name}.{field.name}" for field in (*message.field, *message.extension))
    yield from (f"{name}.{oneof.name}" for oneof in message.oneof_decl)
    for nested in message.nested_type:
        yield from _message_symbols(f"{name}.", nested)
    for enum in message.enum_type:
        yield from _enum_symbols(f"{name}.", enum)


def _enum_symbols(scope: str, enum: EnumProto) -> Iterator[str]:
    yield scope + enum.name
    # Enum values are siblings of their enum, not children (protobuf's C++ scoping).
    yield from (scope + value.name for value in enum.value)


def file_symbols(file: FileProto) -> Iterator[str]:
    """Every fully-qualified name the file declares, methods included."""
    scope = f"{file.package}." if file.package else ""
    for message in file.message_type:
        yield from _message_symbols(scope, message)
    for enum in file.enum_type:
        yield from _enum_symbols(scope, enum)
    yield from (scope + extension.name for extension in file.extension)
    for service in file.service:
        yield scope + service.name
        yield from (f"{scope}{service.name}.{method.name}" for method in service.method)


def file_extensions(file: FileProto) -> Iterator[FieldProto]:
    yield from file.extension
    messages = list(file.message_type)
    while messages:
        message = messages.pop()
        yield from message.extension
        messages.extend(message.nested_type)


class DescriptorIndex:
    """Files by name; the file declaring each symbol, and each (extended type, number)."""

    def __init__(self, files: Iterable[FileProto]) -> None:
        self.files = {file.name: file for file in files}  # a later file of the same name wins
        self.symbols: dict[str, str] = {}
        self.extensions: dict[tuple[str, int], str] = {}
        for file in self.files.values():
            self.symbols.update(dict.fromkeys(file_symbols(file), file.name))
            for extension in file_extensions(file):
                self.extensions[(extension.extendee.lstrip("."), extension.number)] = file.name

    def with_dependencies(self, name: str) -> list[FileProto]:
        """The file first (clients read it as the answer), then its transitive imports."""
        seen = [name]
        for current in seen:
            imports = self.files[current].dependency if current in self.files else []
            seen += [dependency for dependency in imports if dependency not in seen]
        return [self.files[file] for file in seen if file in self.files]

    def extension_numbers(self, message: str) -> list[int]:
        return sorted(number for extended, number in self.extensions if extended == message)


def generated_files(service_names: Iterable[str]) -> list[FileProto]:
    """The generated descriptors (no comments) of the services' files and their imports."""
    pool = descriptor_pool.Default()
    found: dict[str, FileDescriptor] = {}
    pending: list[FileDescriptor] = []
    for name in service_names:
        try:
            pending.append(pool.FindFileContainingSymbol(name))
        except KeyError:
            continue
    while pending:
        file = pending.pop()
        if file.name not in found:
            found[file.name] = file
            pending.extend(file.dependencies)
    return [_to_proto(file) for file in found.values()]


def _to_proto(file: FileDescriptor) -> FileProto:
    proto = FileProto()
    file.CopyToProto(proto)
    return proto


def v1_file(v1alpha: FileProto) -> FileProto:
    """reflection.proto of v1, which grpcio-reflection does not ship: v1alpha's under the v1
    package (grpc's v1 file differs only in options and comments), so v1 resolves too."""
    v1 = FileProto()
    v1.CopyFrom(v1alpha)
    v1.name = "grpc/reflection/v1/reflection.proto"
    v1.package = "grpc.reflection.v1"

    def renamed(type_name: str) -> str:
        return type_name.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")

    for message in v1.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = renamed(field.type_name)
    for method in v1.service[0].method:
        method.input_type, method.output_type = renamed(method.input_type), renamed(method.output_type)
    return v1


def load_descriptor_set(path: Path) -> list[FileProto] | None:
    """The set's files; None, with a warning, when it is missing or unreadable."""
    try:
        return list(descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file)
    except (OSError, DecodeError) as exc:
        log.warning("descriptor set unusable (%s; make protoset): reflection answers without comments", exc)
        return None


def build_index(service_names: Sequence[str], descriptor_set: Path | None) -> DescriptorIndex:
    """The descriptor set's files (with comments) over the generated ones; only the generated
    ones when the set is absent, or stale (a served service missing from it)."""
    generated = generated_files([*service_names, V1ALPHA])
    generated.append(v1_file(_to_proto(pb.DESCRIPTOR)))
    fallback = DescriptorIndex(generated)
    if descriptor_set is None:
        return fallback
    with_comments = load_descriptor_set(descriptor_set)
    if with_comments is None:
        return fallback
    index = DescriptorIndex([*generated, *with_comments])
    missing = [name for name in service_names if name in fallback.symbols and name not in index.symbols]
    if missing:
        log.warning(
            "descriptor set %s lacks %s; reflection answers without comments", descriptor_set, missing
        )
        return fallback
    return index


def _error(code: grpc.StatusCode, message: str) -> Any:
    return pb.ServerReflectionResponse(
        error_response=pb.ErrorResponse(error_code=code.value[0], error_message=message)
    )


class ReflectionServicer:
    """ServerReflectionInfo for both protocol versions; ``answer`` is the pure part."""

    def __init__(self, index: DescriptorIndex, service_names: Iterable[str]) -> None:
        self.index = index
        self.service_names = sorted(set(service_names))

    async def ServerReflectionInfo(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        async for request in requests:
            yield self.answer(request)

    def answer(self, request: Any) -> Any:
        response = self._dispatch(request)
        response.original_request.CopyFrom(request)
        return response

    def _dispatch(self, request: Any) -> Any:
        match request.WhichOneof("message_request"):
            case "file_by_filename":
                return self._files(request.file_by_filename, request.file_by_filename)
            case "file_containing_symbol":
                symbol = request.file_containing_symbol.lstrip(".")
                return self._files(self.index.symbols.get(symbol), symbol)
            case "file_containing_extension":
                wanted = request.file_containing_extension
                key = (wanted.containing_type.lstrip("."), wanted.extension_number)
                return self._files(self.index.extensions.get(key), f"extension {key[1]} of {key[0]}")
            case "all_extension_numbers_of_type":
                return self._extension_numbers(request.all_extension_numbers_of_type.lstrip("."))
            case "list_services":
                services = [pb.ServiceResponse(name=name) for name in self.service_names]
                return pb.ServerReflectionResponse(
                    list_services_response=pb.ListServiceResponse(service=services)
                )
        return _error(grpc.StatusCode.INVALID_ARGUMENT, "no request field set")

    def _files(self, name: str | None, wanted: str) -> Any:
        if name is None or name not in self.index.files:
            return _error(grpc.StatusCode.NOT_FOUND, f"not found: {wanted}")
        files = [file.SerializeToString() for file in self.index.with_dependencies(name)]
        return pb.ServerReflectionResponse(
            file_descriptor_response=pb.FileDescriptorResponse(file_descriptor_proto=files)
        )

    def _extension_numbers(self, message: str) -> Any:
        if message not in self.index.symbols:
            return _error(grpc.StatusCode.NOT_FOUND, f"not found: {message}")
        numbers = pb.ExtensionNumberResponse(
            base_type_name=message, extension_number=self.index.extension_numbers(message)
        )
        return pb.ServerReflectionResponse(all_extension_numbers_response=numbers)


def enable(server: grpc.aio.Server, service_names: Sequence[str], descriptor_set: Path | None) -> None:
    """Serve reflection for ``service_names`` (and itself) under both protocol names."""
    names = [*service_names, *SERVICE_NAMES]
    servicer = ReflectionServicer(build_index(names, descriptor_set), names)
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=pb.ServerReflectionRequest.FromString,
        response_serializer=pb.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method})
            for name in SERVICE_NAMES
        ]
    )
