"""The CSV import's reading of rows and its verdict on each row's registration, without a service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from cli.worker_import import (
    CsvHeaderError,
    Outcome,
    RowRequest,
    RowResult,
    read_rows,
    register,
    request_id,
    summary,
)
from jiazheng.workers.v1 import workers_pb2 as pb

COMPANY = "companies/00000000-0000-4000-8000-00000000c001"
HEADER = "id_number,full_name,mobile,photo_ref,service_districts,trades,origin_province\n"
GOOD = "11010519850412001X,王芳,13912345678,p/1.jpg,110105; 110108,housekeeper;family-carer,510000\n"
STARTED = datetime(2025, 3, 1, 8, tzinfo=UTC)


def rows(text: str) -> list[RowRequest | RowResult]:
    return list(read_rows(text.splitlines(keepends=True), COMPANY))


def test_a_good_row_becomes_its_request_with_lists_split_and_a_derived_request_id() -> None:
    [row] = rows(HEADER + GOOD)

    assert isinstance(row, RowRequest)
    assert row.line == 2
    request = row.request
    assert (request.parent, request.id_number, request.full_name) == (COMPANY, "11010519850412001X", "王芳")
    assert list(request.service_districts) == ["110105", "110108"]
    assert list(request.trades) == [pb.TRADE_HOUSEKEEPER, pb.TRADE_FAMILY_CARER]
    assert request.origin_province == "510000"
    assert request.request_id == request_id(COMPANY, "11010519850412001x")


def test_the_request_id_is_the_same_for_a_rerun_and_differs_by_company_and_id_number() -> None:
    first = request_id(COMPANY, "11010519850412001X")
    assert request_id(COMPANY, " 11010519850412001x ") == first
    assert request_id(COMPANY.replace("c001", "c002"), "11010519850412001X") != first
    assert request_id(COMPANY, "110105198504120028") != first


def test_columns_may_come_in_any_order_and_extra_ones_are_ignored() -> None:
    text = "note,trades,origin_province,service_districts,photo_ref,mobile,full_name,id_number\n"
    [row] = rows(text + "x,housekeeper,,110105,p.jpg,13912345678,李四,110105198504120028\n")
    assert isinstance(row, RowRequest)
    assert (row.request.full_name, row.request.origin_province) == ("李四", "")


def test_a_missing_column_rejects_the_file() -> None:
    with pytest.raises(CsvHeaderError, match="trades"):
        rows("id_number,full_name,mobile,photo_ref,service_districts,origin_province\n")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            "11010519850412001X,王芳,13912345678,p.jpg,110105,housekeeper\n",
            "6 fields where the header",
        ),
        ("11010519850412001X,王芳,13912345678,p.jpg,110105,housekeeper,,x\n", "8 fields"),
        ("11010519850412001X,王芳,13912345678,p.jpg,110105,gardener,\n", "trades: 'gardener' is not one of"),
        ("11010519850412001X,王芳,13912345678,p.jpg,110105,unspecified,\n", "trades: 'unspecified'"),
    ],
)
def test_a_csv_problem_fails_its_row_with_the_reason(line: str, reason: str) -> None:
    [row] = rows(HEADER + line)
    assert isinstance(row, RowResult)
    assert (row.line, row.outcome) == (2, Outcome.FAILED)
    assert reason in row.detail


def test_an_id_number_twice_in_the_file_fails_the_later_row_naming_the_first() -> None:
    again = GOOD.replace("001X", "001x").replace("王芳", "王芳芳")
    result = rows(HEADER + GOOD + again)
    assert isinstance(result[0], RowRequest)
    assert result[1] == RowResult(3, Outcome.FAILED, "the ID number of line 2 again")


def test_line_numbers_are_the_files_across_blank_lines_and_quoted_line_breaks() -> None:
    quoted = GOOD.replace("p/1.jpg", '"p/\n2.jpg"').replace("001X", "0028")
    result = rows(HEADER + "\n" + GOOD + ",,,,,,\n" + quoted + "bad\n")
    assert [r.line for r in result] == [3, 5, 7]
    assert isinstance(result[1], RowRequest)
    assert result[1].request.photo_ref == "p/\n2.jpg"


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, violations: Sequence[tuple[str, str]] = ()) -> None:
        self._code = code
        detail = any_pb2.Any()
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
            ]
        )
        detail.Pack(bad_request)
        self._status = status_pb2.Status(code=code.value[0], message="bad", details=[detail])

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "the service's message"

    def trailing_metadata(self) -> Any:  # grpc's own are (key, value) pairs too
        return (("grpc-status-details-bin", self._status.SerializeToString()),)


def row_request() -> RowRequest:
    [row] = rows(HEADER + GOOD)
    assert isinstance(row, RowRequest)
    return row


def created_at(when: datetime) -> pb.CreateWorkerResponse:
    reply = pb.CreateWorkerResponse(worker=pb.Worker(name="workers/w-1"))
    reply.worker.create_time.FromDatetime(when)
    return reply


def test_a_worker_created_by_this_run_is_registered() -> None:
    sent = []

    def create(request: pb.CreateWorkerRequest) -> pb.CreateWorkerResponse:
        sent.append(request)
        return created_at(STARTED + timedelta(seconds=1))

    result = register(row_request(), create, STARTED)
    assert result == RowResult(2, Outcome.REGISTERED, "workers/w-1")
    assert sent == [row_request().request]


def test_a_worker_the_same_request_created_before_this_run_is_already_registered() -> None:
    result = register(row_request(), lambda _: created_at(STARTED - timedelta(hours=1)), STARTED)
    assert (result.outcome, result.detail) == (Outcome.ALREADY_REGISTERED, "workers/w-1")


def test_already_exists_is_already_registered_not_a_failure() -> None:
    def create(request: pb.CreateWorkerRequest) -> pb.CreateWorkerResponse:
        raise FakeRpcError(grpc.StatusCode.ALREADY_EXISTS)

    assert register(row_request(), create, STARTED).outcome == Outcome.ALREADY_REGISTERED


def test_a_refused_row_fails_with_the_status_and_each_field_violation() -> None:
    def create(request: pb.CreateWorkerRequest) -> pb.CreateWorkerResponse:
        raise FakeRpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            [("id_number", "check character does not match (GB 11643)"), ("mobile", "must be a number")],
        )

    result = register(row_request(), create, STARTED)
    assert result.outcome == Outcome.FAILED
    assert result.text() == (
        "line 2: failed: INVALID_ARGUMENT: id_number: check character does not match (GB 11643);"
        " mobile: must be a number"
    )


def test_an_error_without_violations_fails_with_its_message() -> None:
    def create(request: pb.CreateWorkerRequest) -> pb.CreateWorkerResponse:
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)

    assert register(row_request(), create, STARTED).detail == "UNAVAILABLE: the service's message"


def test_the_summary_counts_every_outcome() -> None:
    results = [RowResult(2, Outcome.REGISTERED, ""), RowResult(3, Outcome.FAILED, "")]
    assert summary(results) == {Outcome.REGISTERED: 1, Outcome.ALREADY_REGISTERED: 0, Outcome.FAILED: 1}
