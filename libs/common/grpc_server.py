"""gRPC server bootstrap: grpc.aio with health, reflection, and one interceptor that traces,
authenticates, authorises, validates (protovalidate) and maps service errors to status codes."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

import grpc
import protovalidate
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from libs.common import auth, errors
from libs.common.auth import ApiKeyStore, Role
from libs.common.settings import ServiceSettings
from libs.common.telemetry import GRPC_LATENCY, GRPC_REQUESTS, extract_from_metadata, tracer

log = logging.getLogger(__name__)

# Probes and tooling need no key.
UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_STATUS: dict[type[errors.ServiceError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
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
    found = []
    for v in _validator.collect_violations(request):
        elements = v.proto.field.elements if v.proto.field is not None else []
        path = ".".join(e.field_name for e in elements)
        found.append((path or "(message)", v.proto.message))
    return found


class _Interceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, service: str, keys: ApiKeyStore, policy: Mapping[str, frozenset[Role]]) -> None:
        self._service = service
        self._keys = keys
        self._policy = policy

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(UNAUTHENTICATED_PREFIXES) or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def guarded(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
            return await self._serve(method, inner, request, context)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _serve(
        self,
        method: str,
        inner: Callable[..., Awaitable[Message]],
        request: Message,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Message:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        with tracer.start_as_current_span(
            method.lstrip("/"),
            context=extract_from_metadata(metadata),
            kind=trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.method": method},
        ) as span:
            try:
                principal = self._keys.authenticate(metadata.get("authorization"))
                auth.authorize(self._policy, method, principal)
                violations = violations_of(request)
                if violations:
                    raise errors.InvalidArgument(*violations[0], *violations[1:])
                with auth.acting_as(principal):
                    return await inner(request, context)
            except errors.ServiceError as exc:
                code = status_code_for(exc)
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                await self._abort(context, code, exc)
            except grpc.aio.AbortError:
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error", extra={"fields": {"method": method}})
                await context.abort(code, "internal error")
                raise
            finally:
                GRPC_REQUESTS.labels(self._service, method, code.name).inc()
                GRPC_LATENCY.labels(self._service, method).observe(time.perf_counter() - started)

    @staticmethod
    async def _abort(
        context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, exc: errors.ServiceError
    ) -> NoReturn:
        if isinstance(exc, errors.InvalidArgument):
            trailer = bad_request_trailer(str(exc), exc.violations)
            await context.abort(code, str(exc), trailing_metadata=trailer)
        await context.abort(code, str(exc))


Registrar = Callable[[Any, grpc.aio.Server], None]


class GrpcServer:
    """One grpc.aio server per service process, with health and reflection always on."""

    def __init__(
        self, service: str, keys: ApiKeyStore, policy: Mapping[str, frozenset[Role]], host: str, port: int
    ) -> None:
        self._server = grpc.aio.server(interceptors=[_Interceptor(service, keys, policy)])
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._names: list[str] = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        self._address = f"{host}:{port}"
        self.port = 0

    @classmethod
    def from_settings(cls, settings: ServiceSettings, policy: Mapping[str, frozenset[Role]]) -> GrpcServer:
        keys = ApiKeyStore.from_json(settings.api_keys)
        return cls(settings.service_name, keys, policy, settings.grpc_host, settings.grpc_port)

    def add(self, registrar: Registrar, servicer: Any, full_service_name: str) -> None:
        registrar(servicer, self._server)
        self._names.append(full_service_name)

    async def start(self) -> int:
        reflection.enable_server_reflection([*self._names, reflection.SERVICE_NAME], self._server)
        self.port = self._server.add_insecure_port(self._address)
        await self._server.start()
        for name in ["", *self._names]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace: float) -> None:
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
