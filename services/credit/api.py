"""gRPC CreditService: protobuf ↔ use cases, nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc

from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from libs.common.auth import Role, current_principal
from libs.common.errors import InvalidArgument
from libs.common.protoutil import calendar_date, request_uuid, timestamp
from services.credit import lookups, model
from services.credit.lookups import LookupUnitOfWork, SourcedLine, WorkerCredit
from services.credit.queries import LedgerReads, RecordedEntry, ledger_page

SERVICE = credit_pb2.DESCRIPTOR.services_by_name["CreditService"]
SERVICE_NAME = SERVICE.full_name
# Anyone authenticated may look a worker up (家政信用查); what they see depends on who they are.
POLICY = {
    f"/{SERVICE_NAME}/ListLedgerEntries": frozenset({Role.OPERATOR, Role.SERVICE}),
    f"/{SERVICE_NAME}/GetWorkerCredit": frozenset(Role),
    f"/{SERVICE_NAME}/RecordWorkerAward": frozenset({Role.OPERATOR}),
}
LEVEL_TO_PROTO = {level: credit_pb2.Level.Value(f"LEVEL_{level.value}") for level in model.Level}

Context = grpc.aio.ServicerContext[Any, Any]


def entry_to_proto(recorded: RecordedEntry) -> credit_pb2.LedgerEntry:
    e = recorded.entry
    return credit_pb2.LedgerEntry(
        name=f"workers/{e.worker_id}/ledgerEntries/{recorded.entry_id}",
        worker_id=e.worker_id,
        event_id=e.event_id,
        event_type=e.event_type,
        score_delta=e.score_delta,
        reason=e.reason,
        rule_version=e.rule_version,
        trace_id=e.trace_id,
        occur_time=timestamp(e.occurred_at),
        record_time=timestamp(recorded.recorded_at),
    )


def credit_to_proto(credit: WorkerCredit) -> credit_pb2.WorkerCredit:
    """The record in its view: the public one carries no score, model version or line."""
    profile = credit.profile
    message = credit_pb2.WorkerCredit(
        worker=f"workers/{credit.worker_id}",
        view=credit_pb2.VIEW_PUBLIC,
        level=LEVEL_TO_PROTO[credit.level],
        card_colour=profile.card_colour,
        company=f"companies/{profile.company_id}" if profile.company_id else "",
        company_grade=profile.company_grade,
        evaluate_time=timestamp(credit.evaluated_at),
    )
    if credit.explanation is not None:
        message.view = credit_pb2.VIEW_FULL
        message.score = credit.explanation.score
        message.model_version = credit.explanation.model_version
        message.lines.extend(line_to_proto(line) for line in credit.explanation.lines)
    return message


def line_to_proto(sourced: SourcedLine) -> credit_pb2.ScoreLine:
    line = sourced.line
    return credit_pb2.ScoreLine(
        fact_id=line.fact_id,
        kind=line.kind.value,
        reason=line.reason,
        points=line.points,
        occur_time=timestamp(line.occurred_at),
        source=sourced.source,
    )


def worker_id_of(name: str, field: str = "name") -> str:
    """The id of ``workers/{worker_id}``."""
    collection, _, worker_id = name.partition("/")
    if collection != "workers" or not worker_id or "/" in worker_id:
        raise InvalidArgument(field, "must be workers/{worker_id}")
    return worker_id


def award_from_proto(request: credit_pb2.RecordWorkerAwardRequest) -> tuple[uuid.UUID, lookups.Award]:
    """The request id and the award of a RecordWorkerAward request."""
    request_id = request_uuid(request.request_id)
    awarded_on = calendar_date(request.award_date, "award_date")
    return request_id, lookups.Award(request.title, request.tier, awarded_on)


class CreditServicer(credit_pb2_grpc.CreditServiceServicer):
    def __init__(self, reads: LedgerReads, uow_factory: Callable[[], LookupUnitOfWork]) -> None:
        self._reads = reads
        self._uow = uow_factory

    async def ListLedgerEntries(
        self, request: credit_pb2.ListLedgerEntriesRequest, context: Context
    ) -> credit_pb2.ListLedgerEntriesResponse:
        worker_id = request.parent.removeprefix("workers/")
        page, next_token = await ledger_page(self._reads, worker_id, request.page_token, request.page_size)
        return credit_pb2.ListLedgerEntriesResponse(
            ledger_entries=[entry_to_proto(r) for r in page], next_page_token=next_token
        )

    async def GetWorkerCredit(
        self, request: credit_pb2.GetWorkerCreditRequest, context: Context
    ) -> credit_pb2.GetWorkerCreditResponse:
        worker_id = worker_id_of(request.name)
        credit = await lookups.get_worker_credit(
            self._uow().reading(), current_principal(), worker_id, request.consumer_ref
        )
        return credit_pb2.GetWorkerCreditResponse(credit=credit_to_proto(credit))

    async def RecordWorkerAward(
        self, request: credit_pb2.RecordWorkerAwardRequest, context: Context
    ) -> credit_pb2.RecordWorkerAwardResponse:
        worker_id = worker_id_of(request.name)
        request_id, award = award_from_proto(request)
        credit = await lookups.record_award(self._uow(), worker_id, request_id, award)
        return credit_pb2.RecordWorkerAwardResponse(credit=credit_to_proto(credit))
