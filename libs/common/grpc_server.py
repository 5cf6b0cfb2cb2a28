"""gRPC server bootstrap: grpc.aio with health, reflection, and one guard around every method
that traces, authenticates, authorises, validates (protovalidate) and maps errors to status codes.

The guard is bound to each method when its service is added, not run as a grpc.aio interceptor:
an interceptor is awaited and builds a handler on every call, which cost more than the guard's
own work. Health and reflection are registered unguarded: probes and tooling need no key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, cast

import grpc
import protovalidate
from google.protobuf import any_pb2, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from libs.common import auth, errors, reflection
from libs.common.auth import ApiKeyStore, Role
from libs.common.outages import is_outage
from libs.common.settings import ServiceSettings
from libs.common.telemetry import GRPC_LATENCY, GRPC_REQUESTS, extract_from_metadata, tracer

log = logging.getLogger(__name__)


_STATUS: dict[type[errors.ServiceError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

Violation = tuple[str, str]  # (dotted field path, description)


def status_code_for(error: errors.ServiceError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return grpc.StatusCode.INTERNAL


def bad_request_trailer(message: str, violations: list[Violation]) -> tuple[tuple[str, bytes], ...]:
    """google.rpc.Status with BadRequest field violations, as the grpc-status-details-bin trailer."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
            ]
        )
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


_validator = protovalidate.Validator()


def violations_of(request: Message) -> list[Violation]:
    """The request's protovalidate violations, then its out-of-range Timestamps and Durations."""
    found = []
    for v in _validator.collect_violations(request):
        elements = v.proto.field.elements if v.proto.field is not None else []
        path = ".".join(_path_element(e) for e in elements)
        found.append((path or "(message)", v.proto.message))
    return found + list(well_known_violations(request))


def _path_element(element: Any) -> str:
    """``name``, ``name[3]`` (a repeated field's item) or ``name['key']`` (a map's value)."""
    subscript = element.subscript  # protobuf-py: a Oneof(field, value), or None
    if subscript is None:
        return str(element.field_name)
    key = subscript.value
    return f"{element.field_name}[{key!r}]" if isinstance(key, str) else f"{element.field_name}[{key}]"


# google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z;
# Duration: ±10,000 years; nanos within a second, of the same sign as the seconds.
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)
_DURATION_SECONDS = 315_576_000_000


def well_known_violations(message: Message, prefix: str = "") -> Iterator[Violation]:
    """Timestamps and Durations that no client library could turn into a time, anywhere in ``message``."""
    for field in _time_fields(message.DESCRIPTOR):
        path = f"{prefix}{field.name}"
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = [(f"{path}[{k!r}]", v) for k, v in value.items()]
        elif field.is_repeated:
            items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        elif message.HasField(field.name):
            items = [(path, value)]
        else:
            continue
        for item_path, item in items:
            yield from _check(item_path, item)


_TIME_TYPES = frozenset({Timestamp.DESCRIPTOR.full_name, Duration.DESCRIPTOR.full_name})


@functools.cache
def _time_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The message fields of a type that are, or may hold, a Timestamp or a Duration (computed
    once per type: most requests have one or two such fields among many)."""
    return tuple(
        f for f in descriptor.fields if f.message_type is not None and _may_hold_time(f.message_type)
    )


def _may_hold_time(descriptor: Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    if descriptor.full_name in _TIME_TYPES or descriptor.full_name in seen:
        return True  # a recursive type is walked rather than assumed safe
    inner = seen | {descriptor.full_name}
    return any(
        f.message_type is not None and _may_hold_time(f.message_type, inner) for f in descriptor.fields
    )


def _check(path: str, value: Message) -> Iterator[Violation]:
    if isinstance(value, Timestamp):
        if not (_TIMESTAMP_SECONDS[0] <= value.seconds <= _TIMESTAMP_SECONDS[1] and 0 <= value.nanos < 10**9):
            yield path, "must be a valid timestamp between years 0001 and 9999"
    elif isinstance(value, Duration):
        same_sign = value.seconds * value.nanos >= 0
        if not (abs(value.seconds) <= _DURATION_SECONDS and abs(value.nanos) < 10**9 and same_sign):
            yield path, "must be a valid duration within ±10,000 years"
    else:
        yield from well_known_violations(value, f"{path}.")


class _Undecodable:
    """Stands in for a request body that does not parse (grpcio would answer UNKNOWN for it)."""


def _tolerant(deserialize: Callable[[bytes], Message]) -> Callable[[bytes], Message | _Undecodable]:
    def parse(data: bytes) -> Message | _Undecodable:
        try:
            return deserialize(data)
        except DecodeError:
            return _Undecodable()

    return parse


Context = grpc.aio.ServicerContext[Any, Any]
Handler = Callable[[Message, Context], Awaitable[Message]]
# A server-streaming servicer method: an async generator of the responses.
StreamHandler = Callable[[Message, Context], AsyncGenerator[Message, None]]


class _Guard:
    """What every call goes through before and after its servicer method."""

    def __init__(self, service: str, keys: ApiKeyStore, policy: Mapping[str, frozenset[Role]]) -> None:
        self._service = service
        self._keys = keys
        self._policy = policy

    @functools.cache  # noqa: B019 - one guard per server, a handful of methods and codes
    def _metrics(self, method: str, code: grpc.StatusCode) -> tuple[Counter, Histogram]:
        return GRPC_REQUESTS.labels(self._service, method, code.name), GRPC_LATENCY.labels(
            self._service, method
        )

    def _count(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        requests, latency = self._metrics(method, code)
        requests.inc()
        latency.observe(seconds)

    def method_handler(
        self, method: MethodDescriptor, inner: Handler | StreamHandler
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """``inner`` (a unary, or a server-streaming, servicer method) guarded, with a body that may
        fail to parse."""
        path = f"/{method.containing_service.full_name}/{method.name}"
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        deserializer = _tolerant(request.FromString)
        if method.server_streaming:

            async def streamed(
                request: Message | _Undecodable, context: grpc.aio.ServicerContext[Any, Any]
            ) -> None:
                # Written, not yielded: a caller that leaves cancels this coroutine at its write, and
                # the stream is closed here, in the call's context. A yielded stream the caller left
                # would be finalised later in another context, where neither the principal nor the
                # span can be reset (an "unhandled error", counted INTERNAL).
                stream = self._serve_stream(path, cast(StreamHandler, inner), request, context)
                async with contextlib.aclosing(stream) as messages:
                    async for message in messages:
                        await context.write(message)

            return grpc.unary_stream_rpc_method_handler(
                streamed, request_deserializer=deserializer, response_serializer=response.SerializeToString
            )

        async def guarded(
            request: Message | _Undecodable, context: grpc.aio.ServicerContext[Any, Any]
        ) -> Message:
            return await self._serve(path, cast(Handler, inner), request, context)

        return grpc.unary_unary_rpc_method_handler(
            guarded, request_deserializer=deserializer, response_serializer=response.SerializeToString
        )

    def _admit(
        self, method: str, request: Message | _Undecodable, metadata: tuple[Any, ...]
    ) -> auth.Principal:
        """The caller, authenticated and authorised, and its request valid; else the error."""
        principal = self._keys.authenticate(auth.authorization_of(metadata))
        auth.authorize(self._policy, method, principal)
        if isinstance(request, _Undecodable):
            raise errors.InvalidArgument("(request)", "the request body is not a valid protobuf message")
        violations = violations_of(request)
        if violations:
            raise errors.InvalidArgument(*violations[0], *violations[1:])
        return principal

    def _span(self, method: str, metadata: tuple[Any, ...]) -> Any:
        return tracer.start_as_current_span(
            method.lstrip("/"),
            context=extract_from_metadata({k: v for k, v in metadata if isinstance(v, str)}),
            kind=trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.method": method},
        )

    async def _serve(
        self,
        method: str,
        inner: Callable[..., Awaitable[Message]],
        request: Message | _Undecodable,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Message:
        metadata = tuple(context.invocation_metadata() or ())
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        with self._span(method, metadata) as span:
            try:
                principal = self._admit(method, request, metadata)
                with auth.acting_as(principal):
                    return await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError:  # grpc cancels a call whose caller left or whose deadline passed
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:  # noqa: BLE001 - every failure leaves as a status code
                error, code = _failure(exc, span)
                await _abort(method, context, code, error)
            finally:
                self._count(method, code, time.perf_counter() - started)

    async def _serve_stream(
        self,
        method: str,
        inner: Callable[..., AsyncGenerator[Message, None]],
        request: Message | _Undecodable,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncGenerator[Message, None]:
        """A server stream under the same guard: the first message is sent once the caller is
        admitted; a failure mid-stream ends it with its status."""
        metadata = tuple(context.invocation_metadata() or ())
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        with self._span(method, metadata) as span:
            try:
                principal = self._admit(method, request, metadata)
                with auth.acting_as(principal):
                    async with contextlib.aclosing(inner(request, context)) as messages:
                        async for message in messages:
                            yield message
            except grpc.aio.AbortError:
                raise
            except (asyncio.CancelledError, GeneratorExit):  # the caller left
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:  # noqa: BLE001 - every failure leaves as a status code
                error, code = _failure(exc, span)
                await _abort(method, context, code, error)
            finally:
                self._count(method, code, time.perf_counter() - started)


def _failure(exc: Exception, span: Any) -> tuple[Exception, grpc.StatusCode]:
    """The error a failure leaves as, and its status code (recorded on the span)."""
    error = _as_service_error(exc)
    code = status_code_for(error) if isinstance(error, errors.ServiceError) else grpc.StatusCode.INTERNAL
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    return error, code


async def _abort(
    method: str, context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, error: Exception
) -> NoReturn:
    if isinstance(error, errors.InvalidArgument):
        trailer = bad_request_trailer(str(error), error.violations)
        await context.abort(code, str(error), trailing_metadata=trailer)
    if isinstance(error, errors.ServiceError):
        if isinstance(error, errors.Unavailable):
            log.warning("dependency unavailable", extra={"fields": {"method": method, "error": str(error)}})
        await context.abort(code, str(error))
    log.error("unhandled error", exc_info=error, extra={"fields": {"method": method}})
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _as_service_error(exc: Exception) -> Exception:
    """An outage of a dependency is UNAVAILABLE (retryable), never INTERNAL."""
    if not isinstance(exc, errors.ServiceError | grpc.aio.AbortError) and is_outage(exc):
        return errors.Unavailable(f"a dependency of the service is unavailable; retry ({type(exc).__name__})")
    return exc


class GrpcServer:
    """One grpc.aio server per service process, with health and reflection always on."""

    def __init__(
        self,
        service: str,
        keys: ApiKeyStore,
        policy: Mapping[str, frozenset[Role]],
        host: str,
        port: int,
        descriptor_set: Path | None = None,
    ) -> None:
        self._server = grpc.aio.server()
        self._guard = _Guard(service, keys, policy)
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._names: list[str] = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        self._address = f"{host}:{port}"
        self._descriptor_set = descriptor_set  # None: reflection answers from the generated descriptors
        self.port = 0

    @classmethod
    def from_settings(cls, settings: ServiceSettings, policy: Mapping[str, frozenset[Role]]) -> GrpcServer:
        keys = ApiKeyStore.from_json(settings.api_keys)
        return cls(
            settings.service_name,
            keys,
            policy,
            settings.grpc_host,
            settings.grpc_port,
            settings.descriptor_set,
        )

    def add(self, servicer: object, service: ServiceDescriptor) -> None:
        """Serve ``servicer``'s implementation of every method of ``service``, guarded."""
        streaming = [m.name for m in service.methods if m.client_streaming]
        if streaming:
            raise ValueError(f"{service.full_name}: client-streaming methods have no guard yet: {streaming}")
        handlers = {m.name: self._guard.method_handler(m, getattr(servicer, m.name)) for m in service.methods}
        generic = grpc.method_handlers_generic_handler(service.full_name, handlers)
        self._server.add_generic_rpc_handlers((generic,))
        self._server.add_registered_method_handlers(service.full_name, handlers)  # type: ignore[attr-defined]
        self._names.append(service.full_name)

    async def start(self) -> int:
        reflection.enable(self._server, self._names, self._descriptor_set)
        self.port = self._server.add_insecure_port(self._address)
        await self._server.start()
        for name in ["", *self._names]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace: float) -> None:
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
