"""Insurance's group policies on the real stack, through the real gRPC API of `python -m
services.insurance`: the lifecycle with endorsements (批增, 批改, 批减) and their premiums, the
events read back from Kafka, retries, bad input, tenants; and a policy's expiry, fired by the
durable timer in a process whose clock is a day ahead, turning the worker's card YELLOW through
the real workers service, once however often insurance restarts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta

import grpc
import pytest

from deploy.local.services import OTHER_COMPANY_ID, stopped_after
from deploy.local.stack import Endpoints
from deploy.local.stack import scratch_database as new_scratch_database
from jiazheng.insurance.events.v1 import events_pb2 as ev
from jiazheng.insurance.v1 import cover_pb2
from jiazheng.insurance.v1 import policies_pb2 as pb
from jiazheng.type.v1 import service_type_pb2 as st
from jiazheng.workers.v1 import workers_pb2 as wpb
from tests.integration.clients import field_violations
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.insurance_client import (
    beijing_today,
    create_policy,
    events_about,
    insured,
    policy_call,
    seconds_until_beijing_day,
)
from tests.integration.workers_client import becomes, call, create_company, ready_worker

pytestmark = pytest.mark.integration
# el-100k, job class 2 (DOMAIN §8: ¥70–80 for a ¥100k limit), by age band 16–50, 51–60, 61–70.
EL_100K = (7000, 7500, 8000)


def pro_rata(annual: int, days: int, year_days: int) -> int:
    return (2 * annual * days + year_days) // (2 * year_days)


def born(age: int) -> date:
    """A birth date that makes someone ``age`` in full years today (1 January)."""
    return date(beijing_today().year - age, 1, 1)


@pytest.fixture(scope="module")
async def database(endpoints: Endpoints) -> AsyncIterator[str]:
    async with new_scratch_database(endpoints, "jz_insurance_test") as name:
        yield name


@pytest.fixture
def pii(orders_keys: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in orders_keys.items() if k.startswith("pii_")}


@pytest.fixture
async def insurance(
    harness: ServiceHarness, database: str, pii: dict[str, str]
) -> AsyncIterator[RunningService]:
    async with stopped_after(await harness.start("insurance", database, 0, False, **pii)) as svc:
        yield svc


async def _endorse(
    svc: RunningService,
    key: str,
    policy: str,
    kind: cover_pb2.EndorsementKind.ValueType,
    day: date,
    request_id: str = "",
    add: Sequence[pb.InsuredWorkerInput] = (),
    remove: Sequence[str] = (),
) -> pb.EndorsePolicyResponse:
    request = pb.EndorsePolicyRequest(
        request_id=request_id or str(uuid.uuid4()),
        name=policy,
        kind=kind,
        effective_date=day.isoformat(),
        add_workers=add,
        remove_worker_ids=remove,
    )
    reply: pb.EndorsePolicyResponse = await policy_call(svc, key, "EndorsePolicy", request)
    return reply


async def _refused(call_result: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call_result  # type: ignore[misc]
    return err.value


async def test_policy_lifecycle_with_endorsements_premiums_and_events(
    harness: ServiceHarness, endpoints: Endpoints, insurance: RunningService
) -> None:
    company, today = harness.key("demo-company"), beijing_today()
    end = date(today.year + 1, today.month, today.day) - timedelta(days=1)
    year_days, bootstrap = (end - today).days + 1, endpoints.kafka_bootstrap
    w1, w2, w3, w4 = (str(uuid.uuid4()) for _ in range(4))
    request = pb.CreatePolicyRequest(
        request_id=str(uuid.uuid4()),
        product="products/el-100k",
        start_date=today.isoformat(),
        workers=[insured(w1, born(30)), insured(w2, born(55))],
    )
    policy = (await policy_call(insurance, company, "CreatePolicy", request)).policy
    assert policy.end_date == end.isoformat()
    assert policy.premium_fen == EL_100K[0] + EL_100K[1]  # a full policy year each
    retried = (await policy_call(insurance, company, "CreatePolicy", request)).policy
    assert retried.name == policy.name

    # 批增 from tomorrow, 批改 (w1 out, w4 in) from the day after, 批减 of w2 from today.
    added = await _endorse(
        insurance,
        company,
        policy.name,
        cover_pb2.ENDORSEMENT_KIND_ADD,
        today + timedelta(days=1),
        add=[insured(w3, born(65))],
    )
    assert added.endorsement.premium_delta_fen == pro_rata(EL_100K[2], year_days - 1, year_days)
    replace_id = str(uuid.uuid4())
    replaced = await _endorse(
        insurance,
        company,
        policy.name,
        cover_pb2.ENDORSEMENT_KIND_REPLACE,
        today + timedelta(days=2),
        replace_id,
        add=[insured(w4, born(58))],
        remove=[w1],
    )
    days = year_days - 2
    assert replaced.endorsement.premium_delta_fen == pro_rata(EL_100K[1], days, year_days) - pro_rata(
        EL_100K[0], days, year_days
    )
    again = await _endorse(
        insurance,
        company,
        policy.name,
        cover_pb2.ENDORSEMENT_KIND_REPLACE,
        today + timedelta(days=2),
        replace_id,
        add=[insured(w4, born(58))],
        remove=[w1],
    )
    assert again.endorsement.endorsement_id == replaced.endorsement.endorsement_id
    removed = await _endorse(
        insurance, company, policy.name, cover_pb2.ENDORSEMENT_KIND_REMOVE, today, remove=[w2]
    )
    assert removed.endorsement.premium_delta_fen == -EL_100K[1]  # removed on the first day: all refunded
    stints = {(w.worker_id, w.start_date, w.end_date) for w in removed.policy.insured_workers}
    assert stints == {
        (w1, today.isoformat(), (today + timedelta(days=1)).isoformat()),
        (w2, today.isoformat(), (today - timedelta(days=1)).isoformat()),
        (w3, (today + timedelta(days=1)).isoformat(), end.isoformat()),
        (w4, (today + timedelta(days=2)).isoformat(), end.isoformat()),
    }

    async def issued() -> list[ev.PolicyIssued]:
        return await events_about(bootstrap, policy.name, ev.PolicyIssued)

    [issue] = await eventually(issued)
    assert (issue.premium_fen, issue.insured_count, issue.insurer) == (policy.premium_fen, 2, "demo-insurer")

    async def endorsed() -> list[ev.PolicyEndorsed] | None:
        found = await events_about(bootstrap, policy.name, ev.PolicyEndorsed)
        return found if len(found) >= 3 else None

    deltas = [(e.kind, e.premium_delta_fen) for e in await eventually(endorsed)]
    assert deltas == [
        (cover_pb2.ENDORSEMENT_KIND_ADD, added.endorsement.premium_delta_fen),
        (cover_pb2.ENDORSEMENT_KIND_REPLACE, replaced.endorsement.premium_delta_fen),
        (cover_pb2.ENDORSEMENT_KIND_REMOVE, -EL_100K[1]),
    ]

    async def coverage(worker: str, count: int) -> list[ev.WorkerCoverageChanged] | None:
        found = await events_about(bootstrap, f"workers/{worker}", ev.WorkerCoverageChanged)
        return found if len(found) >= count else None

    [w1_now] = await eventually(lambda: coverage(w1, 1))
    assert (w1_now.covered, w1_now.valid_until, w1_now.policy) == (True, end.isoformat(), policy.name)
    w2_issued, w2_removed = await eventually(lambda: coverage(w2, 2))
    assert (w2_issued.covered, w2_removed.covered, w2_removed.valid_until) == (True, False, "")
    # w3's and w4's cover starts on a later day: a timer publishes it then, nothing now.
    assert await events_about(bootstrap, f"workers/{w3}", ev.WorkerCoverageChanged) == []
    assert (
        len(await events_about(bootstrap, policy.name, ev.PolicyIssued)) == 1
    )  # the retry published nothing


async def test_bad_input_and_other_tenants(harness: ServiceHarness, insurance: RunningService) -> None:
    company, today = harness.key("demo-company"), beijing_today()
    for age in (15, 71):
        refused = await _refused(
            create_policy(insurance, company, "el-100k", today, None, insured(str(uuid.uuid4()), born(age)))
        )
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(refused) == ["workers[0].birth_date"]
    low_class = insured(str(uuid.uuid4()), born(30), job_class=1, service_types=(st.SERVICE_TYPE_CLEANING,))
    refused = await _refused(create_policy(insurance, company, "el-100k", today, None, low_class))
    assert (refused.code(), field_violations(refused)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["workers[0].job_class"],
    )
    quote = pb.QuotePremiumRequest(product="products/el-300k", job_class=7, age=30)
    refused = await _refused(policy_call(insurance, company, "QuotePremium", quote))
    assert (refused.code(), field_violations(refused)) == (grpc.StatusCode.INVALID_ARGUMENT, ["job_class"])
    ok = pb.QuotePremiumRequest(product="products/el-300k", job_class=2, age=55)
    assert (await policy_call(insurance, company, "QuotePremium", ok)).annual_premium_fen == 10800

    policy = await create_policy(
        insurance, company, "el-300k", today, None, insured(str(uuid.uuid4()), born(45))
    )
    other = harness.key("other-company")
    refused = await _refused(
        policy_call(insurance, other, "GetPolicy", pb.GetPolicyRequest(name=policy.name))
    )
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    listed = await policy_call(insurance, other, "ListPolicies", pb.ListPoliciesRequest())
    assert all(p.company == f"companies/{OTHER_COMPANY_ID}" for p in listed.policies)
    seen = await policy_call(
        insurance, harness.key("demo-insurer"), "GetPolicy", pb.GetPolicyRequest(name=policy.name)
    )
    assert seen.policy.premium_fen == 10000
    refused = await _refused(
        policy_call(insurance, harness.key("demo-insurer"), "CreatePolicy", pb.CreatePolicyRequest())
    )
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_policy_expiry_turns_the_card_yellow_once(
    harness: ServiceHarness, endpoints: Endpoints, database: str, pii: dict[str, str], workers: RunningService
) -> None:
    operator, today = harness.key("operator"), beijing_today()
    company = await create_company(workers, operator)
    worker_id, url = await ready_worker(endpoints, workers, operator, company.name, insured=False)
    worker = f"workers/{worker_id}"
    async with stopped_after(await harness.start("insurance", database, 0, False, **pii)) as insurance:
        policy = await create_policy(
            insurance, harness.key("demo-company"), "el-100k", today, today, insured(worker_id, born(50))
        )
        await becomes(workers, operator, worker, wpb.CARD_COLOUR_GREEN)  # its relay publishes the cover
    assert policy.premium_fen == pro_rata(
        EL_100K[0], 1, (date(today.year + 1, today.month, today.day) - today).days
    )

    # A day later: the expiry timer, due at 00:00 Beijing after the end date, fires.
    env = {**pii, "clock_offset_s": str(seconds_until_beijing_day(today + timedelta(days=1)) + 60)}
    async with stopped_after(await harness.start("insurance", database, 0, False, **env)):
        expired = await eventually(
            lambda: events_about(endpoints.kafka_bootstrap, policy.name, ev.PolicyExpired)
        )
        await becomes(workers, operator, worker, wpb.CARD_COLOUR_YELLOW)
    assert [e.end_date for e in expired] == [today.isoformat()]
    # Restarted a day ahead again: the timer fired once, in effect, so nothing more is published.
    async with stopped_after(await harness.start("insurance", database, 0, False, **env)):
        await asyncio.sleep(3)  # its timer worker claims due timers as it starts
    assert len(await events_about(endpoints.kafka_bootstrap, policy.name, ev.PolicyExpired)) == 1
    changes = await events_about(endpoints.kafka_bootstrap, worker, ev.WorkerCoverageChanged)
    assert [(c.covered, c.valid_until) for c in changes] == [(True, today.isoformat()), (False, "")]
    token = url.rsplit("t=", 1)[1]
    verified = await call(workers, operator, "VerifyCard", wpb.VerifyCardRequest(token=token))
    assert verified.colour == wpb.CARD_COLOUR_YELLOW
    assert any(reason.startswith("insurance_") for reason in verified.reasons)
