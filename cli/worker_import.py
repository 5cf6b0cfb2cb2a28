"""Bulk import of a company's workers (家政服务员) from a CSV file, one CreateWorker per row.

Each row is registered on its own (a row is atomic; a bad row stops nothing else) under a request
id derived from the company and the ID number, so that importing the same file again is a retry
of the same requests and registers nobody twice.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import cast

import grpc
import typer

from cli.rpc import describe_error, enum_number
from jiazheng.workers.v1 import workers_pb2 as pb

COLUMNS = (
    "id_number",
    "full_name",
    "mobile",
    "photo_ref",
    "service_districts",
    "trades",
    "origin_province",
)
LIST_SEPARATOR = ";"
REQUEST_NAMESPACE = uuid.UUID("7f3e1c52-4f0b-5a35-9d61-0c1f2b7a9e01")  # the import's own uuid5 namespace


class Outcome(Enum):
    REGISTERED = "registered"
    ALREADY_REGISTERED = "already registered"
    FAILED = "failed"


@dataclass(frozen=True)
class RowRequest:
    """A row read well: the CreateWorker request it stands for."""

    line: int
    request: pb.CreateWorkerRequest


@dataclass(frozen=True)
class RowResult:
    """What became of one row; ``detail`` is the worker's name, or why the row failed."""

    line: int
    outcome: Outcome
    detail: str

    def text(self) -> str:
        return f"line {self.line}: {self.outcome.value}: {self.detail}"


class CsvHeaderError(ValueError):
    """The file's first line does not name the columns the import needs."""


def request_id(company: str, id_number: str) -> str:
    """The request id of a worker's registration: the same company and ID number, the same id."""
    return str(uuid.uuid5(REQUEST_NAMESPACE, f"{company}|{id_number.strip().upper()}"))


def read_rows(lines: Iterable[str], company: str) -> Iterator[RowRequest | RowResult]:
    """Each data row as its request, or as a FAILED result naming the CSV problem.

    Line numbers are the file's (the header is line 1; a row quoted over several lines has the
    number of its first); blank rows are skipped.
    """
    reader = csv.reader(lines)
    header = [name.strip() for name in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise CsvHeaderError(f"the header lacks the column(s) {', '.join(missing)}")
    seen: dict[str, int] = {}
    start = reader.line_num + 1
    for fields in reader:
        if any(f.strip() for f in fields):
            yield _row(header, fields, start, company, seen)
        start = reader.line_num + 1


def _row(
    header: list[str], fields: list[str], line: int, company: str, seen: dict[str, int]
) -> RowRequest | RowResult:
    if len(fields) != len(header):
        return RowResult(line, Outcome.FAILED, f"{len(fields)} fields where the header names {len(header)}")
    values = {name: value.strip() for name, value in zip(header, fields, strict=True)}
    number = values["id_number"].upper()
    if number in seen:
        return RowResult(line, Outcome.FAILED, f"the ID number of line {seen[number]} again")
    seen[number] = line
    try:
        return RowRequest(line, _request(values, company))
    except ValueError as exc:
        return RowResult(line, Outcome.FAILED, str(exc))


def _request(values: dict[str, str], company: str) -> pb.CreateWorkerRequest:
    return pb.CreateWorkerRequest(
        request_id=request_id(company, values["id_number"]),
        parent=company,
        id_number=values["id_number"],
        full_name=values["full_name"],
        mobile=values["mobile"],
        photo_ref=values["photo_ref"],
        service_districts=_items(values["service_districts"]),
        trades=[_trade(word) for word in _items(values["trades"])],
        origin_province=values["origin_province"],
    )


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(LIST_SEPARATOR) if item.strip()]


def _trade(word: str) -> pb.Trade.ValueType:
    try:
        return cast(pb.Trade.ValueType, enum_number(pb.Trade.DESCRIPTOR, word))
    except typer.BadParameter as exc:  # a problem of the row here, not of the command line
        raise ValueError(f"trades: {exc.message}") from None


CreateWorker = Callable[[pb.CreateWorkerRequest], pb.CreateWorkerResponse]


def register(row: RowRequest, create_worker: CreateWorker, started: datetime) -> RowResult:
    """Register one row's worker. A worker the same request created before ``started`` (an earlier
    import), or whose ID number another request registered, is ALREADY_REGISTERED."""
    try:
        worker = create_worker(row.request).worker
    except grpc.RpcError as err:
        if cast(grpc.Call, err).code() == grpc.StatusCode.ALREADY_EXISTS:
            return RowResult(row.line, Outcome.ALREADY_REGISTERED, "the ID number is registered")
        return RowResult(row.line, Outcome.FAILED, describe_error(err))
    earlier = worker.create_time.ToDatetime(started.tzinfo) < started
    return RowResult(row.line, Outcome.ALREADY_REGISTERED if earlier else Outcome.REGISTERED, worker.name)


def summary(results: Iterable[RowResult]) -> dict[Outcome, int]:
    counts = dict.fromkeys(Outcome, 0)
    for result in results:
        counts[result.outcome] += 1
    return counts
