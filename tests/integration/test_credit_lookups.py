"""家政信用查 on the real stack: a GREEN worker of the session looked up in the credit service. A
platform whose consumer redeemed the worker's consent code (in the workers service, reaching credit
as an event) sees the full record; another consumer, another platform or a regulator the public
view; after the grant is revoked, or once it has expired (a credit process whose clock reads past
the 24 hours), the public view again. The CLI shows the record and runs a rebuild; an operator's
award is entered once and moves the level.

The process with the shifted clock serves the session's database and joins the session's consumer
group as a replica would, for a few seconds during which this module causes no event; a
re-evaluation timer due within the next day would fire early in it (none is, in this session's
data, unless a fading penalty crosses a level within a day)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from deploy.local.services import stopped_after
from deploy.local.stack import Endpoints
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.credit.v1 import credit_pb2 as pb
from jiazheng.credit.v1 import credit_pb2_grpc
from jiazheng.workers.v1 import workers_pb2 as w
from services.credit.model import BEIJING
from tests.integration.clients import auth, ledger
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.test_cli_orders import CLI, Run
from tests.integration.test_credit_chain import _levels
from tests.integration.workers_client import call, create_company, ready_worker

pytestmark = pytest.mark.integration
CERTIFICATE = "jiazheng.workers.events.v1.SkillCertificateRecorded"
SCORE = 630  # 600, and 30 for the 四级 certificate the worker was registered with
TOTALS = re.compile(r"(\d+) workers, (\d+) entries, (\d+) mismatches")


@dataclass(frozen=True)
class Hired:
    worker_id: str
    company: str  # companies/{id}


async def credit_of(
    credit: RunningService, key: str, worker_id: str, consumer_ref: str = ""
) -> pb.WorkerCredit:
    request = pb.GetWorkerCreditRequest(name=f"workers/{worker_id}", consumer_ref=consumer_ref)
    async with credit.channel() as channel:
        reply = await credit_pb2_grpc.CreditServiceStub(channel).GetWorkerCredit(request, metadata=auth(key))
    return reply.credit


@pytest.fixture(scope="module")
async def hired(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService, credit: RunningService
) -> Hired:
    """A GREEN worker, once credit has heard of its employer, its card and its certificate."""
    operator = harness.key("operator")
    company = await create_company(workers, operator)
    worker_id, _ = await ready_worker(endpoints, workers, operator, company.name)

    async def heard() -> pb.WorkerCredit | None:
        try:
            seen = await credit_of(credit, operator, worker_id)
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None
        return seen if seen.card_colour == "GREEN" and seen.company and seen.lines else None

    await eventually(heard, within=60)
    return Hired(worker_id, company.name)


async def granted(
    workers: RunningService, harness: ServiceHarness, worker_id: str, consumer_ref: str
) -> w.ConsentGrant:
    """The worker's consent code, made by an operator and redeemed by the demo platform for its consumer."""
    worker = f"workers/{worker_id}"
    made = await call(
        workers, harness.key("operator"), "CreateConsentCode", w.CreateConsentCodeRequest(worker=worker)
    )
    redeem = w.RedeemConsentCodeRequest(worker=worker, code=made.code, consumer_ref=consumer_ref)
    reply: w.RedeemConsentCodeResponse = await call(
        workers, harness.key("demo-platform"), "RedeemConsentCode", redeem
    )
    return reply.grant


async def in_view(
    credit: RunningService,
    key: str,
    worker_id: str,
    consumer_ref: str,
    view: pb.View.ValueType,
    within: float,
) -> pb.WorkerCredit:
    """The record, once the lookup answers it in ``view`` (events take a moment to reach credit)."""

    async def answered() -> pb.WorkerCredit | None:
        seen = await credit_of(credit, key, worker_id, consumer_ref)
        return seen if seen.view == view else None

    return await eventually(answered, within=within)


def assert_public(seen: pb.WorkerCredit, hired: Hired) -> None:
    assert (seen.view, seen.level, seen.card_colour, seen.company) == (
        pb.VIEW_PUBLIC,
        pb.LEVEL_C,
        "GREEN",
        hired.company,
    )
    assert (seen.score, seen.model_version, list(seen.lines)) == (0, "", [])


async def test_a_worker_credit_never_heard_of_is_not_found(
    harness: ServiceHarness, credit: RunningService
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit_of(credit, harness.key("demo-platform"), f"w-{uuid.uuid4().hex}")

    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_consumer_holding_the_grant_sees_the_full_record_others_the_public_view(
    harness: ServiceHarness, workers: RunningService, credit: RunningService, hired: Hired
) -> None:
    await granted(workers, harness, hired.worker_id, "consumer-granted")

    full = await in_view(
        credit, harness.key("demo-platform"), hired.worker_id, "consumer-granted", pb.VIEW_FULL, 30
    )

    assert (full.level, full.score, full.model_version) == (pb.LEVEL_C, SCORE, "2026.1")
    assert (full.card_colour, full.company, full.worker) == (
        "GREEN",
        hired.company,
        f"workers/{hired.worker_id}",
    )
    [certificate] = [line for line in full.lines if line.kind == "certificate_granted"]
    assert (certificate.points, certificate.source) == (30, CERTIFICATE)
    assert sum(line.points for line in full.lines) == SCORE - 600
    for principal, consumer_ref in [
        ("demo-platform", "consumer-other"),
        ("other-platform", "consumer-granted"),
        ("regulator", ""),
    ]:
        assert_public(await credit_of(credit, harness.key(principal), hired.worker_id, consumer_ref), hired)
    by_operator = await credit_of(credit, harness.key("operator"), hired.worker_id)
    assert (by_operator.view, by_operator.score) == (pb.VIEW_FULL, SCORE)


async def test_a_revoked_grant_gives_the_public_view_within_seconds(
    harness: ServiceHarness, workers: RunningService, credit: RunningService, hired: Hired
) -> None:
    platform = harness.key("demo-platform")
    grant = await granted(workers, harness, hired.worker_id, "consumer-revoking")
    await in_view(credit, platform, hired.worker_id, "consumer-revoking", pb.VIEW_FULL, 30)

    await call(workers, platform, "RevokeConsentGrant", w.RevokeConsentGrantRequest(name=grant.name))

    public = await in_view(credit, platform, hired.worker_id, "consumer-revoking", pb.VIEW_PUBLIC, 10)
    assert_public(public, hired)


def run(credit: RunningService, key: str, *args: str) -> Run:
    env = {**os.environ, "JZ_CREDIT_ADDRESS": f"127.0.0.1:{credit.port}", "JZ_API_KEY": key, "COLUMNS": "200"}
    result = subprocess.run([str(CLI), "credit", *args], env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stdout + result.stderr
    return Run(result.returncode, result.stdout, result.stderr)


async def jiazheng(credit: RunningService, key: str, *args: str) -> Run:
    return await asyncio.to_thread(run, credit, key, *args)


async def test_cli_credit_show_prints_the_record_and_its_lines_or_only_the_public_view(
    harness: ServiceHarness, credit: RunningService, hired: Hired
) -> None:
    full = await jiazheng(credit, harness.key("operator"), "show", hired.worker_id)
    public = await jiazheng(
        credit, harness.key("demo-platform"), "show", hired.worker_id, "--consumer-ref", "nobody"
    )

    assert (full.code, public.code) == (0, 0), full.text + public.text
    rows = full.rows()
    for row in (["view", "full"], ["level", "C"], ["score", str(SCORE)], ["card_colour", "GREEN"]):
        assert row in rows
    assert ["company", hired.company] in rows
    [certificate] = [row for row in rows if "certificate_granted" in row]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", certificate[0])
    assert certificate[-1] == "+30"
    assert ["total", f"+{SCORE - 600}"] in rows
    shown = public.rows()
    assert ["view", "public"] in shown
    assert ["level", "C"] in shown
    assert not [row for row in shown if row[:1] == ["score"] or "certificate_granted" in row]


async def test_cli_credit_rebuild_reports_workers_entries_and_mismatches(
    harness: ServiceHarness, credit: RunningService, hired: Hired
) -> None:
    done = await jiazheng(credit, harness.key("operator"), "rebuild")
    refused = await jiazheng(credit, harness.key("demo-platform"), "rebuild")

    totals = TOTALS.search(done.out)
    assert totals, done.text
    workers, entries, mismatches = map(int, totals.groups())
    assert workers >= 1
    assert entries >= 1
    assert done.code == (1 if mismatches else 0)
    assert refused.code == 1
    assert "PERMISSION_DENIED" in refused.text


async def test_a_grant_whose_expiry_passed_gives_the_public_view(
    harness: ServiceHarness, workers: RunningService, credit: RunningService, hired: Hired
) -> None:
    platform = harness.key("demo-platform")
    grant = await granted(workers, harness, hired.worker_id, "consumer-expiring")
    await in_view(credit, platform, hired.worker_id, "consumer-expiring", pb.VIEW_FULL, 30)
    expiry = grant.expire_time.ToDatetime(tzinfo=UTC)
    offset = (expiry + timedelta(minutes=5) - datetime.now(UTC)).total_seconds()

    later = await harness.start("credit", None, 0, False, clock_offset_s=str(offset))
    async with stopped_after(later):
        seen = await credit_of(later, platform, hired.worker_id, "consumer-expiring")
        by_operator = await credit_of(later, harness.key("operator"), hired.worker_id)

    assert_public(seen, hired)
    assert seen.evaluate_time.ToDatetime(tzinfo=UTC) > expiry  # that process's clock reads past the expiry
    assert (by_operator.view, by_operator.score) == (pb.VIEW_FULL, SCORE)


async def test_an_operators_award_is_entered_once_and_moves_the_level(
    endpoints: Endpoints, harness: ServiceHarness, credit: RunningService, hired: Hired
) -> None:
    operator = harness.key("operator")
    today = datetime.now(BEIJING).date().isoformat()
    request = pb.RecordWorkerAwardRequest(
        name=f"workers/{hired.worker_id}",
        request_id=str(uuid.uuid4()),
        title="北京市家政服务职业技能竞赛 三等奖",
        tier=1,
        award_date=today,
    )

    async with credit.channel() as channel:
        stub = credit_pb2_grpc.CreditServiceStub(channel)
        first = (await stub.RecordWorkerAward(request, metadata=auth(operator))).credit
        again = (await stub.RecordWorkerAward(request, metadata=auth(operator))).credit

    assert (first.view, first.level, first.score) == (pb.VIEW_FULL, pb.LEVEL_B, SCORE + 20)
    [award] = [line for line in first.lines if line.source == "operator"]
    assert (award.fact_id, award.kind, award.points) == (request.request_id, "award", 20)
    assert (
        award.occur_time.ToDatetime(tzinfo=UTC).astimezone(BEIJING).isoformat() == f"{today}T00:00:00+08:00"
    )
    assert (again.score, [line.fact_id for line in again.lines]) == (
        first.score,
        [line.fact_id for line in first.lines],
    )
    entries = await ledger(credit, operator, hired.worker_id)
    assert [(e.event_id, e.reason) for e in entries if e.event_type == "operator"] == [
        (request.request_id, "award: 北京市家政服务职业技能竞赛 三等奖")
    ]

    async def level_b() -> list[credit_events.CreditLevelChanged]:
        levels = await _levels(endpoints.kafka_bootstrap, hired.worker_id)
        return levels if levels and levels[-1].level == credit_events.CREDIT_LEVEL_B else []

    [*_, changed] = await eventually(level_b, within=30)
    assert (changed.previous_level, changed.score) == (credit_events.CREDIT_LEVEL_C, SCORE + 20)
