"""Calling a service from the command line: where it listens, whose key, and what to print.

The address and key come from the environment when given (``JZ_<SERVICE>_ADDRESS``, ``JZ_API_KEY``),
otherwise from the local stack that ``jiazheng up`` started (its ``services.json`` and the key of
the principal chosen with ``--as``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn, cast

import grpc
import typer
from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from rich.console import Console
from rich.table import Table

from deploy.local.services import LocalServices
from deploy.local.stack import default_home

console = Console()
Metadata = tuple[tuple[str, str | bytes], ...]
Row = tuple[str, str]  # a field's name and its value as text


@dataclass(frozen=True)
class Target:
    """A service to call and the principal to call it as."""

    service: str
    address: str | None  # host:port; None: the local stack's
    principal: str

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address or _local_address(self.service))

    def metadata(self) -> Metadata:
        key = os.environ.get("JZ_API_KEY") or _local_key(self.principal)
        return (("authorization", f"Bearer {key}"),)


def address_option(service: str) -> Any:
    """A group's ``--address`` option for ``service``: JZ_<SERVICE>_ADDRESS when set, otherwise the
    local stack's."""
    return typer.Option(
        None,
        "--address",
        envvar=f"JZ_{service.upper()}_ADDRESS",
        help="host:port of the service (default: the local stack's)",
    )


def _local_address(service: str) -> str:
    state = LocalServices(default_home("dev")).state()
    if service not in state:
        fail(f"{service} is not running locally: run `make run`, or set JZ_{service.upper()}_ADDRESS")
    return f"127.0.0.1:{state[service]['grpc_port']}"


def _local_key(principal: str) -> str:
    services = LocalServices(default_home("dev"))
    if not services.keys_file.exists():
        fail("no local API keys: run `make run`, or set JZ_API_KEY")
    keys = {k.principal: k.key for k in services.api_keys()}
    if principal not in keys:
        fail(f"no local key for {principal!r}; there are: {', '.join(sorted(keys))}")
    return keys[principal]


def fail(message: str) -> NoReturn:
    """Print ``message`` as an error and end the command with exit code 1."""
    console.print(f"[red]{message}[/red]", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def field_violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations an error carries: (field path, description)."""
    trailers = cast(Sequence[tuple[str, str | bytes]], cast(grpc.Call, err).trailing_metadata() or ())
    raw = dict(trailers).get("grpc-status-details-bin")
    if not isinstance(raw, bytes):
        return []
    violations = []
    for detail in status_pb2.Status.FromString(raw).details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            violations += [(v.field, v.description) for v in bad_request.field_violations]
    return violations


def describe_error(err: grpc.RpcError) -> str:
    """An error as one line: its status, its message and each field violation."""
    call = cast(grpc.Call, err)
    violations = field_violations(err)
    if violations:
        return f"{call.code().name}: " + "; ".join(f"{field}: {what}" for field, what in violations)
    return f"{call.code().name}: {call.details()}"


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turns a failed call into its status and field violations on the console, and exit code 1."""
    try:
        yield
    except grpc.RpcError as err:
        fail(describe_error(err))


def invoke(target: Target, api: FileDescriptor, stubs: ModuleType, method: str, request: Message) -> Any:
    """``method`` of whichever service of ``api`` declares it (its stub from the ``*_pb2_grpc``
    module ``stubs``); a failure prints its status and exits 1."""
    service = next(s for s in api.services_by_name.values() if method in s.methods_by_name)
    with reported_errors(), target.channel() as channel:
        stub = getattr(stubs, f"{service.name}Stub")(channel)
        return getattr(stub, method)(request, metadata=target.metadata())


def enum_word(enum: EnumDescriptor, number: int) -> str:
    """An enum value as a person writes it: TRADE_FAMILY_CARER is family_carer."""
    name = enum.values_by_number[number].name if number in enum.values_by_number else str(number)
    return name.removeprefix(_prefix(enum)).lower()


def enum_number(enum: EnumDescriptor, word: str) -> int:
    """The value a person wrote (family_carer, family-carer, FAMILY_CARER), or BadParameter."""
    name = _prefix(enum) + word.strip().upper().replace("-", "_")
    if name not in enum.values_by_name or enum.values_by_name[name].number == 0:
        raise typer.BadParameter(f"{word!r} is not one of: {', '.join(enum_words(enum))}")
    return enum.values_by_name[name].number


def enum_words(enum: EnumDescriptor) -> list[str]:
    return [enum_word(enum, v.number) for v in enum.values if v.number != 0]


def _prefix(enum: EnumDescriptor) -> str:
    return enum.values[0].name.removesuffix("UNSPECIFIED")


def as_json(message: Message) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, ensure_ascii=False)


def show(
    message: Message, as_json_text: bool, rows: Callable[[Message], Iterable[Row]] | None = None
) -> None:
    """A message for a script (its JSON) or for a person (a table of its fields that are set, or of
    the ``rows`` given for it)."""
    if as_json_text:
        typer.echo(as_json(message))
        return
    table = Table(show_header=False, box=None)
    for name, text in (rows or field_rows)(message):
        table.add_row(name, text)
    console.print(table)


def field_rows(message: Message, prefix: str = "") -> Iterator[Row]:
    """The fields that are set, a nested message's (not a timestamp's) as ``outer.inner``."""
    for field, value in message.ListFields():
        kind = field.message_type.full_name if field.message_type and not field.is_repeated else None
        if kind and kind != Timestamp.DESCRIPTOR.full_name:
            yield from field_rows(value, f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", cell(field, value)


def show_rows(title: str, messages: Sequence[Message], columns: Sequence[str], as_json_text: bool) -> None:
    """Messages of one type as a table with ``columns`` (their field names), or a JSON list."""
    if as_json_text:
        typer.echo(json.dumps([json.loads(as_json(m)) for m in messages], ensure_ascii=False, indent=2))
        return
    table = Table(*columns, title=title)
    for message in messages:
        fields = message.DESCRIPTOR.fields_by_name
        table.add_row(*(cell(cast(FieldDescriptor, fields[c]), getattr(message, c)) for c in columns))
    console.print(table)


def cell(field: FieldDescriptor, value: object) -> str:
    """A field's value as text: enums by name, repeated values joined, messages as JSON."""
    if field.is_repeated:
        return ", ".join(_scalar(field, v) for v in cast(Sequence[object], value))
    return _scalar(field, value)


def _scalar(field: FieldDescriptor, value: object) -> str:
    if field.enum_type is not None:
        return enum_word(field.enum_type, cast(int, value))
    if field.message_type is not None and field.message_type.full_name == Timestamp.DESCRIPTOR.full_name:
        return cast(Timestamp, value).ToJsonString()
    if isinstance(value, Message):
        return as_json(value).replace("\n", " ")
    return str(value)
