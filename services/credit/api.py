"""gRPC CreditService: protobuf ↔ domain, nothing else."""

from __future__ import annotations

from typing import Any

import grpc

from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from libs.common.auth import Role
from libs.common.protoutil import timestamp
from services.credit.queries import LedgerReads, RecordedEntry, ledger_page

SERVICE = credit_pb2.DESCRIPTOR.services_by_name["CreditService"]
SERVICE_NAME = SERVICE.full_name
# Consumers and platforms get grant-gated lookups with the credit-lookup capability (家政信用查).
POLICY = {
    f"/{SERVICE_NAME}/ListLedgerEntries": frozenset({Role.OPERATOR, Role.SERVICE}),
}

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


class CreditServicer(credit_pb2_grpc.CreditServiceServicer):
    def __init__(self, reads: LedgerReads) -> None:
        self._reads = reads

    async def ListLedgerEntries(
        self, request: credit_pb2.ListLedgerEntriesRequest, context: Context
    ) -> credit_pb2.ListLedgerEntriesResponse:
        worker_id = request.parent.removeprefix("workers/")
        page, next_token = await ledger_page(self._reads, worker_id, request.page_token, request.page_size)
        return credit_pb2.ListLedgerEntriesResponse(
            ledger_entries=[entry_to_proto(r) for r in page], next_page_token=next_token
        )
