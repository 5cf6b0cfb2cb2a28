"""Hypothesis strategies for any protobuf message, built from its descriptor alone, and the
catalogue of every RPC the services serve with the roles their POLICY lets call it.

A message is drawn in one of three modes (``Mode``). Wild: any field may be set to anything of
its type: strings empty, short and unicode, with control characters, very long (up to 10,000
characters), shaped like resource names (``orders/<uuid>``, nested and malformed ones) or like
dates and district codes; integers at and beyond their type's limits; enums with defined and
undefined numbers; repeated fields of several items; maps; nested messages (to a bounded depth,
so recursive types end); Timestamps and Durations with extreme seconds and nanos; at most one
member of each oneof. Valid and full: the field rules the request declares (buf.validate) are
read from the descriptor's options and kept (patterns, UUIDs, lengths, ranges, ``in`` lists,
defined enums, required fields and oneofs; not the CEL rules), with the required fields only, or
with every field; their times are near now (the same offsets on every run).
"""

from __future__ import annotations

import enum
import functools
import importlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

import jiazheng
from buf.validate import validate_pb2
from libs.common.auth import Role

# -- strings ---------------------------------------------------------------------------------

# Collections of the APIs' resource names (``<collection>/<uuid>``), and a few that are none.
COLLECTIONS = (
    "orders",
    "workers",
    "companies",
    "cases",
    "claims",
    "policies",
    "products",
    "requests",
    "offers",
    "contracts",
    "cards",
    "consentGrants",
    "ledgerEntries",
    "outlets",
    "",
)
# Values that reach past the shape checks, or that break naive code (SQL, format strings, paths).
ODD_STRINGS = (
    " ",
    "\t\n",
    "0",
    "-1",
    "null",
    "None",
    "undefined",
    "true",
    "110108",
    "110105",
    "999999",
    "2025-01-01",
    "2024-02-30",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "2025-13-01",
    "2025-01-01T00:00:00Z",
    "P1D",
    "'; DROP TABLE orders; --",
    "' OR '1'='1",
    "%s%s%s%n",
    "{0}{1}",
    "{}",
    "[]",
    "../../../etc/passwd",
    "\\x00",
    "jiazheng.regulator.orders.v1",
    "jiazheng.regulator.x.v1",
    "w-000000000000",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "𠀀𪚥",
    "🙂👩‍👩‍👧",
    "ｏｒｄｅｒｓ／１",
    "Ａ",
    "\u202eevil",
    "\ufeff",
)
_TEXT = st.characters(codec="utf-8")  # not a surrogate: a string field is UTF-8
_CONTROL = st.characters(max_codepoint=0x1F) | st.sampled_from("\x7f\x85\u200b\u200e\u202e\u2028\ufeff\ufffd")
_LONG_UNITS = ("a", "9", "中", "\x00", "🙂", "/", "orders/", " ")


def _resource_name(parts: list[tuple[str, str]], sep: str, trailer: str) -> str:
    return sep.join(f"{c}/{i}" if c else i for c, i in parts) + trailer


_IDENTIFIERS = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: str(u)[:-1]),
    st.uuids().map(lambda u: f"{u}x"),
    st.text(_TEXT, max_size=12),
    st.integers(-(2**63), 2**64).map(str),
)
_RESOURCE_NAMES = st.builds(
    _resource_name,
    st.lists(st.tuples(st.sampled_from(COLLECTIONS), _IDENTIFIERS), min_size=1, max_size=3),
    st.sampled_from(["/", "//", "/../"]),
    st.sampled_from(["", "/", "/x", "?a=1", "\x00", "\n"]),
)


def strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(""),
        st.text(_TEXT, max_size=40),
        st.text(_CONTROL, min_size=1, max_size=12),
        st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=20),
        st.builds(lambda unit, n: unit * n, st.sampled_from(_LONG_UNITS), st.integers(1_000, 10_000)),
        _RESOURCE_NAMES,
        st.sampled_from(ODD_STRINGS),
    )


# -- scalars ---------------------------------------------------------------------------------


def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted(e for e in {lo, lo + 1, -1, 0, 1, 2, 7, 100, 1_000_000, hi - 1, hi} if lo <= e <= hi)
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


_INT32, _INT64 = (-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1)
_UINT32, _UINT64 = (0, 2**32 - 1), (0, 2**64 - 1)
T = FieldDescriptor
_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    T.TYPE_STRING: strings(),
    T.TYPE_BYTES: st.one_of(st.binary(max_size=64), st.integers(1_000, 10_000).map(lambda n: b"\xff" * n)),
    T.TYPE_BOOL: st.booleans(),
    T.TYPE_DOUBLE: st.floats(),
    T.TYPE_FLOAT: st.floats(width=32),
    **{t: _integers(*_INT32) for t in (T.TYPE_INT32, T.TYPE_SINT32, T.TYPE_SFIXED32)},
    **{t: _integers(*_INT64) for t in (T.TYPE_INT64, T.TYPE_SINT64, T.TYPE_SFIXED64)},
    **{t: _integers(*_UINT32) for t in (T.TYPE_UINT32, T.TYPE_FIXED32)},
    **{t: _integers(*_UINT64) for t in (T.TYPE_UINT64, T.TYPE_FIXED64)},
}

# google.protobuf.Timestamp's and Duration's limits, and just beyond them.
_SECONDS = st.one_of(
    st.sampled_from(
        [
            -(2**63),
            -62_135_596_801,
            -62_135_596_800,
            -315_576_000_001,
            -1,
            0,
            1,
            1_700_000_000,
            253_402_300_799,
            253_402_300_800,
            315_576_000_001,
            2**63 - 1,
        ]
    ),
    st.integers(*_INT64),
    st.integers(1_600_000_000, 2_000_000_000),  # around now: past the range checks
)
_NANOS = st.one_of(st.sampled_from([-(2**31), -1, 0, 1, 999_999_999, 10**9, 2**31 - 1]), st.integers(*_INT32))
# By name, not through message_factory: the stubs type its classes as a bare Message, no fields.
_TIME_TYPES: dict[str, type[Timestamp] | type[Duration]] = {
    "google.protobuf.Timestamp": Timestamp,
    "google.protobuf.Duration": Duration,
}


def _enums(field: FieldDescriptor) -> st.SearchStrategy[int]:
    enum_type = field.enum_type
    assert enum_type is not None
    defined = [v.number for v in enum_type.values]
    undefined = st.integers(*_INT32).filter(lambda n: n not in defined)
    if enum_type.is_closed:  # a closed enum holds defined numbers only
        return st.sampled_from(defined)
    return st.one_of(st.sampled_from(defined), st.sampled_from([max(defined) + 1, -1]), undefined)


# -- what the request's own rules (protovalidate) accept ----------------------------------------

NOW = int(time.time())
_NEAR_NOW = st.integers(-400 * 86_400, 400 * 86_400).map(lambda offset: NOW + offset)
_DAYS_NEAR_NOW = _NEAR_NOW.map(lambda s: datetime.fromtimestamp(s, UTC).date().isoformat())
_KINDS = {
    T.TYPE_INT32: _INT32,
    T.TYPE_SINT32: _INT32,
    T.TYPE_SFIXED32: _INT32,
    T.TYPE_INT64: _INT64,
    T.TYPE_SINT64: _INT64,
    T.TYPE_SFIXED64: _INT64,
    T.TYPE_UINT32: _UINT32,
    T.TYPE_FIXED32: _UINT32,
    T.TYPE_UINT64: _UINT64,
    T.TYPE_FIXED64: _UINT64,
}


def rules_of(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    options = field.GetOptions()
    return options.Extensions[validate_pb2.field] if options.HasExtension(validate_pb2.field) else None


def _conforming(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> st.SearchStrategy[Any] | None:
    """Values of a scalar or enum field that its rules (string, integer, enum) accept; None when
    the field has no such rules. The CEL rules are not read: a value may still break one."""
    kind = rules.WhichOneof("type")
    if field.type == T.TYPE_STRING and kind == "string":
        return _conforming_strings(field.name, rules.string)
    if field.type in _KINDS and kind in {"int32", "int64", "uint32", "uint64", "sint32", "sint64"}:
        r = getattr(rules, kind)
        if listed := _listed(r):
            return st.sampled_from(listed)
        lo, hi = _KINDS[field.type]
        lo = r.gte if r.HasField("gte") else r.gt + 1 if r.HasField("gt") else lo
        hi = r.lte if r.HasField("lte") else r.lt - 1 if r.HasField("lt") else hi
        return _integers(lo, hi).filter(lambda n: n not in r.not_in)
    if field.type == T.TYPE_ENUM and kind == "enum":
        enum_type = field.enum_type
        assert enum_type is not None
        allowed = _listed(rules.enum) or [v.number for v in enum_type.values]
        return st.sampled_from([n for n in allowed if n not in rules.enum.not_in])
    return None


_ID_CLASS = "[0-9a-f-]{36}"
_UUID_SHAPE = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _listed(rules: Any) -> list[Any]:
    """A rule's ``in`` list (a Python keyword: no attribute syntax for it)."""
    return list(getattr(rules, "in"))


def _conforming_strings(name: str, r: validate_pb2.StringRules) -> st.SearchStrategy[str]:
    if listed := _listed(r):
        return st.sampled_from(listed)
    lo, hi = r.min_len, r.max_len if r.HasField("max_len") else 10_000
    if r.uuid:
        found: st.SearchStrategy[str] = st.uuids().map(str)
    elif r.pattern:
        # A resource name's id, [0-9a-f-]{36}, drawn as a UUID too: to reach the lookup.
        shapes = {r.pattern, r.pattern.replace(_ID_CLASS, _UUID_SHAPE)}
        found = st.one_of(*(st.from_regex(p, fullmatch=True) for p in sorted(shapes)))
        found = found.filter(lambda s: lo <= len(s) <= hi)
    else:
        found = st.text(_TEXT, min_size=lo, max_size=min(hi, max(lo, 40)))
    return st.one_of(found, _DAYS_NEAR_NOW) if "date" in name or "day" in name else found


class Mode(enum.Enum):
    WILD = "any value of the field's type"
    VALID = "the required fields, and values that keep to the fields' rules"
    FULL = "every field, with values that keep to its rules, or plausible ones"


_PLAUSIBLE: dict[int, st.SearchStrategy[Any]] = {
    T.TYPE_STRING: st.one_of(
        st.text(_TEXT, min_size=1, max_size=30),
        st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=12),
    ),
    **{t: st.integers(0, 1_000) for t in _KINDS},
}


# -- messages --------------------------------------------------------------------------------

Setter = Callable[[Message], None]


def messages(descriptor: Descriptor, depth: int = 4) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type: wild ones, and ones whose fields keep to the rules the
    request declares (required fields and oneofs set, strings of their pattern, integers in their
    range, defined enums, times near now), which get past the validation to the servicer.
    Nested messages stop (are left unset) below ``depth``."""
    return st.one_of(*(_messages(descriptor, depth, mode) for mode in Mode))


@functools.cache
def _messages(descriptor: Descriptor, depth: int, mode: Mode) -> st.SearchStrategy[Message]:
    cls = message_factory.GetMessageClass(descriptor)
    time_type = _TIME_TYPES.get(descriptor.full_name)
    if time_type is not None:
        if mode is not Mode.WILD:
            return st.builds(time_type, seconds=_NEAR_NOW, nanos=st.integers(0, 999_999_999))
        return st.builds(time_type, seconds=_SECONDS, nanos=_NANOS)
    in_oneof = {f.name for o in descriptor.oneofs for f in o.fields}
    required: dict[str, st.SearchStrategy[Setter]] = {}
    optional: dict[str, st.SearchStrategy[Setter]] = {}
    for field in descriptor.fields:
        if field.name not in in_oneof and (setter := _setter(field, depth, mode)) is not None:
            rules = rules_of(field)
            needed = rules is not None and (rules.required or _needs_a_value(field, rules))
            must = mode is Mode.FULL or (mode is Mode.VALID and needed)
            (required if must else optional)[field.name] = setter
    for oneof in descriptor.oneofs:  # at most one member of each (proto3 optional fields too)
        members = [s for f in oneof.fields if (s := _setter(f, depth, mode)) is not None]
        if members:
            one = oneof.GetOptions().Extensions[validate_pb2.oneof].required
            must = mode is Mode.FULL or (mode is Mode.VALID and one)
            (required if must else optional)[f"oneof {oneof.name}"] = st.one_of(*members)

    def build(setters: Mapping[str, Setter]) -> Message:
        message = cls()
        for set_field in setters.values():
            set_field(message)
        return message

    return st.fixed_dictionaries(required, optional=optional).map(build)


def _needs_a_value(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> bool:
    """Whether the field's default (empty, 0, none) breaks its rules."""
    kind = rules.WhichOneof("type")
    if kind == "string":
        r = rules.string
        listed = _listed(r) and "" not in _listed(r)
        return r.uuid or r.min_len > 0 or bool(listed or (r.pattern and not re.fullmatch(r.pattern, "")))
    if kind == "enum":
        return 0 in rules.enum.not_in or bool(_listed(rules.enum) and 0 not in _listed(rules.enum))
    if kind == "repeated":
        return rules.repeated.min_items > 0
    if kind in {"int32", "int64", "uint32", "uint64"}:
        r = getattr(rules, kind)
        listed = _listed(r) and 0 not in _listed(r)
        return bool(listed or (r.HasField("gte") and r.gte > 0) or (r.HasField("gt") and r.gt >= 0))
    return False


def _value(
    field: FieldDescriptor, depth: int, mode: Mode, rules: Any = None
) -> st.SearchStrategy[Any] | None:
    if field.type == T.TYPE_MESSAGE or field.type == T.TYPE_GROUP:
        return None if depth <= 0 else _messages(field.message_type, depth - 1, mode)
    if mode is not Mode.WILD and rules is not None and (conforming := _conforming(field, rules)) is not None:
        return conforming
    if mode is Mode.FULL and field.type in _PLAUSIBLE:
        return _PLAUSIBLE[field.type]
    if mode is Mode.FULL and field.type == T.TYPE_ENUM:
        enum_type = field.enum_type
        assert enum_type is not None
        return st.sampled_from([v.number for v in enum_type.values if v.number] or [0])
    if field.type == T.TYPE_ENUM:
        return _enums(field)
    return _SCALARS[field.type]


def _setter(field: FieldDescriptor, depth: int, mode: Mode) -> st.SearchStrategy[Setter] | None:
    """How to set ``field`` on a message, drawn; None when nothing can be drawn (too deep)."""
    name = field.name
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        keys = _value(entry.fields_by_name["key"], depth, mode)
        values = _value(entry.fields_by_name["value"], depth, mode)
        if keys is None or values is None:
            return None
        scalar = entry.fields_by_name["value"].message_type is None

        def put_map(items: dict[Any, Any]) -> Setter:
            def put(message: Message) -> None:
                target = getattr(message, name)
                for k, v in items.items():
                    if scalar:
                        target[k] = v
                    else:
                        target[k].CopyFrom(v)

            return put

        return st.dictionaries(keys, values, max_size=3).map(put_map)
    rules = rules_of(field)
    if field.is_repeated:
        items_rules = rules.repeated.items if rules is not None and rules.HasField("repeated") else None
        value = _value(field, depth, mode, items_rules)
        if value is None:
            return None
        lo, hi = 0, 5
        if mode is not Mode.WILD and rules is not None and rules.HasField("repeated"):
            lo = rules.repeated.min_items
            hi = min(rules.repeated.max_items, 5) if rules.repeated.HasField("max_items") else 5
        unique = mode is not Mode.WILD and entry is None and rules is not None and rules.repeated.unique

        def put_all(items: list[Any]) -> Setter:
            def put(message: Message) -> None:
                target = getattr(message, name)
                for item in items:
                    if entry is None:
                        target.append(item)
                    else:
                        target.add().CopyFrom(item)

            return put

        return st.lists(value, min_size=lo, max_size=max(lo, hi), unique=unique).map(put_all)
    value = _value(field, depth, mode, rules)
    if value is None:
        return None

    def put_one(item: Any) -> Setter:
        def put(message: Message) -> None:
            if entry is None:
                setattr(message, name, item)
            else:
                getattr(message, name).CopyFrom(item)

        return put

    return value.map(put_one)


# -- the services' methods -------------------------------------------------------------------

# The principal (harness.key) that calls as each role: those the other tests use least, so that a
# call that happens to be valid disturbs no other test's data (industry-mediator holds no case).
PRINCIPAL_OF_ROLE = {
    Role.PLATFORM: "other-platform",
    Role.COMPANY: "other-company",
    Role.MEDIATOR: "industry-mediator",
    Role.INSURER: "demo-insurer",
    Role.REGULATOR: "regulator",
    Role.OPERATOR: "operator",
    Role.SERVICE: "gateway",
    Role.UNION: "union",
}


def policies() -> dict[str, Mapping[str, frozenset[Role]]]:
    """Each service process's POLICY (method path -> roles), as its app gives it to its server."""
    from services.complaints.api import POLICY as complaints
    from services.credit import admin_api, company_api
    from services.credit.api import POLICY as credit
    from services.insurance.api import POLICY as insurance
    from services.orders.api import POLICY as orders
    from services.regulator.api import POLICY as regulator
    from services.workers.api import POLICY as workers

    return {
        "orders": orders,
        "workers": workers,
        "credit": {**credit, **company_api.POLICY, **admin_api.POLICY},
        "complaints": complaints,
        "insurance": insurance,
        "regulator": regulator,
    }


@dataclass(frozen=True)
class Rpc:
    service: str  # the process serving it: orders, workers, ...
    method: MethodDescriptor
    roles: tuple[Role, ...]

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def id(self) -> str:
        return f"{self.method.containing_service.name}.{self.method.name}"


def api_services() -> list[tuple[str, ServiceDescriptor]]:
    """Every gRPC service of the generated ``jiazheng.<service>.v1`` packages, with the process
    (``<service>``) that serves it."""
    found: dict[str, tuple[str, ServiceDescriptor]] = {}
    # A namespace package (its subpackages are plain directories), maybe on the path twice.
    for root in jiazheng.__path__:
        for module in sorted(Path(root).glob("*/v1/*_pb2.py")):
            service = module.parent.parent.name
            pb2 = importlib.import_module(f"jiazheng.{service}.v1.{module.stem}")
            found |= {s.full_name: (service, s) for s in pb2.DESCRIPTOR.services_by_name.values()}
    return [found[name] for name in sorted(found)]


def rpcs() -> list[Rpc]:
    """Every method of every service, with the roles its POLICY allows (sorted, so that a run's
    choices are the same every time; none for a method its service's POLICY does not name)."""
    policy = policies()
    return [
        Rpc(service, method, tuple(sorted(policy[service].get(f"/{descriptor.full_name}/{method.name}", ()))))
        for service, descriptor in api_services()
        for method in descriptor.methods
    ]
