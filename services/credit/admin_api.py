"""gRPC CreditAdminService: the rebuild of every score from the ledger, its progress streamed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from jiazheng.credit.v1 import credit_pb2
from libs.common.auth import Role
from libs.common.uow import Clock
from services.credit.rebuild import Ledger, Progress, RebuildUnitOfWork, rebuild

SERVICE = credit_pb2.DESCRIPTOR.services_by_name["CreditAdminService"]
SERVICE_NAME = SERVICE.full_name
POLICY = {
    f"/{SERVICE_NAME}/RebuildScores": frozenset({Role.OPERATOR}),
}

Context = grpc.aio.ServicerContext[Any, Any]


def progress_to_proto(progress: Progress) -> credit_pb2.RebuildScoresResponse:
    return credit_pb2.RebuildScoresResponse(
        workers_done=progress.workers_done,
        workers_total=progress.workers_total,
        entries_done=progress.entries_done,
        mismatches=progress.mismatches,
        model_version=progress.model_version,
        finished=progress.finished,
    )


class CreditAdminServicer:
    def __init__(self, ledger: Ledger, uow: Callable[[], RebuildUnitOfWork], clock: Clock) -> None:
        self._ledger = ledger
        self._uow = uow
        self._clock = clock

    async def RebuildScores(
        self, request: credit_pb2.RebuildScoresRequest, context: Context
    ) -> AsyncIterator[credit_pb2.RebuildScoresResponse]:
        """One response per batch of the ledger, then the totals, finished. The rebuild runs as a
        task of its own and waits for each report to be taken, so a slow caller slows it; a caller
        that leaves stops it (the batches already applied stay applied: running it again finishes
        the job)."""
        reports: asyncio.Queue[Progress] = asyncio.Queue(maxsize=1)

        async def run() -> None:
            at = self._clock.now()
            await reports.put(await rebuild(self._ledger, self._uow, at, request.apply, reports.put))

        rebuilding = asyncio.create_task(run())
        try:
            while True:
                progress = await _next(reports, rebuilding)
                yield progress_to_proto(progress)
                if progress.finished:
                    return
        finally:
            rebuilding.cancel()
            await asyncio.gather(rebuilding, return_exceptions=True)


async def _next(reports: asyncio.Queue[Progress], rebuilding: asyncio.Task[None]) -> Progress:
    """The next report, or the rebuild's failure."""
    taking = asyncio.ensure_future(reports.get())
    await asyncio.wait({taking, rebuilding}, return_when=asyncio.FIRST_COMPLETED)
    if taking.done():
        return taking.result()
    taking.cancel()
    rebuilding.result()  # the rebuild ended before its totals were put: raises what ended it
    raise RuntimeError("the rebuild ended without its totals")
