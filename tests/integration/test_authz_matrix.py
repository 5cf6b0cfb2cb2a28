"""The authorisation matrix on the real processes: every RPC of every gRPC service, called by every
kind of caller, is answered as the service's POLICY says (no key or an unknown key:
UNAUTHENTICATED; a role the policy does not name: PERMISSION_DENIED; a role it names: let through
to the request's own checks, never INTERNAL); and one tenant's orders, workers and cases are out of
reach of another tenant of the same role. The rows come from the generated descriptors, so a new
RPC (or a new service) cannot be left out. What the matrix means: docs/security.md."""

from __future__ import annotations

import asyncio
import importlib
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from deploy.local.services import DEMO_COMPANY_ID, OTHER_COMPANY_ID, new_dev_keys, stopped_after
from deploy.local.stack import ROOT, Endpoints
from deploy.local.stack import scratch_database as new_scratch_database
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.workers.v1 import workers_pb2 as w
from libs.common.auth import Role
from services.complaints import api as complaints_api
from services.credit import admin_api as credit_admin_api
from services.credit import api as credit_api
from services.credit import company_api as credit_company_api
from services.insurance import api as insurance_api
from services.orders import api as orders_api
from services.regulator import api as regulator_api
from services.workers import api as workers_api
from tests.integration.clients import auth, create_order, order_request
from tests.integration.complaints_client import complaints_call, file_company_complaint
from tests.integration.harness import RunningService, ServiceHarness
from tests.integration.test_orders_lifecycle import orders_call
from tests.integration.workers_client import call, create_worker, ensure_company

pytestmark = pytest.mark.integration

Policy = Mapping[str, frozenset[Role]]

# Each process that serves gRPC: its services and the policy it gives its GrpcServer (services/*/app.py).
SERVED: dict[str, tuple[tuple[ServiceDescriptor, ...], Policy]] = {
    "orders": (orders_api.SERVICES, orders_api.POLICY),
    "workers": (workers_api.SERVICES, workers_api.POLICY),
    "credit": (
        (credit_api.SERVICE, credit_company_api.SERVICE, credit_admin_api.SERVICE),
        {**credit_api.POLICY, **credit_company_api.POLICY, **credit_admin_api.POLICY},
    ),
    "complaints": (complaints_api.SERVICES, complaints_api.POLICY),
    "insurance": (insurance_api.SERVICES, insurance_api.POLICY),
    "regulator": (regulator_api.SERVICES, regulator_api.POLICY),
}
PROCESS_OF = {service.full_name: process for process, (services, _) in SERVED.items() for service in services}

# The callers, by the harness's principals (deploy/local/services.py new_dev_keys). "anonymous"
# sends no key; "worker" an unknown one: workers have no key of their own (they act through their
# company or a union), so a key a worker might present is unknown to every service.
ANONYMOUS, WORKER = "anonymous", "worker"
CALLERS = {
    "platform A": "demo-platform",
    "platform B": "other-platform",
    "company A": "demo-company",
    "company B": "other-company",
    "mediator": "consumer-mediator",
    "union": "union",
    "insurer": "demo-insurer",
    "regulator": "regulator",
    "operator": "operator",
    "service": "gateway",
    ANONYMOUS: "",
    WORKER: "",
}

# Methods whose empty request is a whole, valid request that acts: they get a body that does not
# parse instead (the guard decides who may call before it reads the body), so that the matrix
# changes nothing in the session's shared services.
NOT_CALLED_EMPTY = {
    "/jiazheng.complaints.v1.MediationService/ClaimNextCase": "would claim the next case of the queue",
}
UNDECODABLE = b"\xff\xff\xff\xff"
ADMITTED = "admitted"
# What an admitted call may not answer: a refusal by the guard, or a failure of the service.
NOT_ADMITTED = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNAVAILABLE,
}
CALL_TIMEOUT_S = 20.0
STREAM_WAIT_S = 3.0  # a stream admitted but with nothing to send yet ends at this deadline
CONCURRENT_CALLS = 32


def generated_services() -> dict[str, ServiceDescriptor]:
    """Every gRPC service of every generated module (gen/jiazheng/**/*_pb2.py)."""
    found: dict[str, ServiceDescriptor] = {}
    gen = ROOT / "gen"
    for path in sorted((gen / "jiazheng").rglob("*_pb2.py")):
        module = importlib.import_module(".".join(path.relative_to(gen).with_suffix("").parts))
        found.update({s.full_name: s for s in module.DESCRIPTOR.services_by_name.values()})
    return found


def path_of(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def test_every_method_of_every_service_has_a_policy_entry() -> None:
    served = {service.full_name for services, _ in SERVED.values() for service in services}
    assert set(generated_services()) == served, "a generated gRPC service that no process serves here"
    for process, (services, policy) in SERVED.items():
        methods = {path_of(m) for s in services for m in s.methods}
        assert set(policy) == methods, f"{process}: methods without a policy entry, or entries of no method"
        assert all(policy[m] for m in methods), f"{process}: a method open to no role"
    assert {Role(role) for role in _roles_of_callers()} == set(Role), "a role no caller of the matrix has"
    assert WORKER not in set(Role), "workers have a role now: give the matrix a worker's key"


def _roles_of_callers() -> set[str]:
    roles = {k.principal: k.role for k in new_dev_keys()}
    return {roles[p] for p in CALLERS.values() if p}


@dataclass(frozen=True)
class Served:
    service: ServiceDescriptor
    policy: Policy
    process: RunningService


@pytest.fixture(scope="module")
async def insurance(
    harness: ServiceHarness, endpoints: Endpoints, orders_keys: dict[str, str]
) -> AsyncIterator[RunningService]:
    pii = {k: v for k, v in orders_keys.items() if k.startswith("pii_")}
    async with (
        new_scratch_database(endpoints, "jz_insurance_authz") as database,
        stopped_after(await harness.start("insurance", database, 0, False, **pii)) as svc,
    ):
        yield svc


@pytest.fixture
async def regulator(harness: ServiceHarness) -> AsyncIterator[RunningService]:
    """A regulator of its own, stopped with its test (it projects every source topic while it runs)."""
    svc = await harness.start("regulator", consumer_group_prefix=f"test-authz-{uuid.uuid4().hex[:8]}")
    yield svc
    harness.stop(svc)


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Served:
    """The service named by the test's parameter, on its running process."""
    name: str = request.param
    process = PROCESS_OF[name]
    services, policy = SERVED[process]
    service = next(s for s in services if s.full_name == name)
    return Served(service, policy, request.getfixturevalue(process))


def _metadata(harness: ServiceHarness, caller: str) -> tuple[tuple[str, str], ...]:
    if caller == ANONYMOUS:
        return ()
    if caller == WORKER:
        return tuple(auth(f"jzk_{secrets.token_urlsafe(24)}"))
    return tuple(auth(harness.key(CALLERS[caller])))


def _role(harness: ServiceHarness, caller: str) -> Role | None:
    principal = CALLERS[caller]
    return Role(next(k.role for k in harness.keys if k.principal == principal)) if principal else None


def _want(policy: Policy, method: MethodDescriptor, role: Role | None) -> str:
    if role is None:
        return grpc.StatusCode.UNAUTHENTICATED.name
    return (
        ADMITTED
        if role in policy.get(path_of(method), frozenset())
        else grpc.StatusCode.PERMISSION_DENIED.name
    )


def _agrees(
    want: str, got: grpc.StatusCode, details: str, method: MethodDescriptor, role: Role | None
) -> bool:
    if want == ADMITTED:
        timed_out = got is grpc.StatusCode.DEADLINE_EXCEEDED and not method.server_streaming
        return got not in NOT_ADMITTED and not timed_out
    if got is grpc.StatusCode.PERMISSION_DENIED:  # refused by the guard, not by the method
        return want == got.name and details == f"role {role} may not call {path_of(method)}"
    return want == got.name


def _identity(body: bytes) -> bytes:
    return body


async def _answer(
    channel: grpc.aio.Channel, method: MethodDescriptor, metadata: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str]:
    """The status of ``method`` called with an empty request (or one that does not parse, for the
    methods NOT_CALLED_EMPTY); for a stream, of its first response."""
    path = path_of(method)
    empty = message_factory.GetMessageClass(method.input_type)().SerializeToString()
    body = UNDECODABLE if path in NOT_CALLED_EMPTY else empty
    try:
        if method.server_streaming:
            stream = channel.unary_stream(path, request_serializer=_identity, response_deserializer=_identity)
            call = stream(body, metadata=metadata, timeout=STREAM_WAIT_S)
            try:
                await call.read()
            finally:
                call.cancel()
        else:
            unary = channel.unary_unary(path, request_serializer=_identity, response_deserializer=_identity)
            await unary(body, metadata=metadata, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


async def _mismatches(harness: ServiceHarness, served: Served) -> list[str]:
    """Every method of the service called by every caller: the answers otherwise than the policy says."""
    limit = asyncio.Semaphore(CONCURRENT_CALLS)

    async def one(method: MethodDescriptor, caller: str) -> str | None:
        role = _role(harness, caller)
        want = _want(served.policy, method, role)
        async with limit:
            got, details = await _answer(channel, method, _metadata(harness, caller))
        if _agrees(want, got, details, method, role):
            return None
        return f"{method.name} as {caller} ({role or 'no role'}): got {got.name} ({details!r}), want {want}"

    async with served.process.channel() as channel:
        found = await asyncio.gather(*(one(m, caller) for m in served.service.methods for caller in CALLERS))
    return [f for f in found if f]


def _ids(process: str) -> list[str]:
    return [s.full_name for s in SERVED[process][0]]


async def _assert_matrix(harness: ServiceHarness, served: Served) -> None:
    wrong = await _mismatches(harness, served)
    called = len(served.service.methods) * len(CALLERS)
    assert not wrong, f"{served.service.full_name}: {len(wrong)} of {called} calls answered otherwise:\n" + (
        "\n".join(wrong)
    )


@pytest.mark.parametrize(
    "served", [*_ids("orders"), *_ids("workers"), *_ids("credit"), *_ids("complaints")], indirect=True
)
async def test_each_caller_is_answered_as_the_policy_says(harness: ServiceHarness, served: Served) -> None:
    await _assert_matrix(harness, served)


@pytest.mark.parametrize("served", _ids("insurance"), indirect=True)
async def test_each_caller_of_insurance_is_answered_as_the_policy_says(
    harness: ServiceHarness, served: Served
) -> None:
    await _assert_matrix(harness, served)


@pytest.mark.parametrize("served", _ids("regulator"), indirect=True)
async def test_each_caller_of_the_regulator_is_answered_as_the_policy_says(
    harness: ServiceHarness, served: Served
) -> None:
    await _assert_matrix(harness, served)


# -- tenants ---------------------------------------------------------------------------------


async def _code(call_result: Any) -> grpc.StatusCode:
    try:
        await call_result
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def test_another_platform_reaches_none_of_a_platforms_order(
    harness: ServiceHarness, orders: RunningService
) -> None:
    order = await create_order(orders, harness.key("demo-platform"), order_request())
    name, other = order.name, harness.key("other-platform")
    attempts = {
        "GetOrder": o.GetOrderRequest(name=name),
        "MatchOrder": o.MatchOrderRequest(name=name),
        "OfferOrder": o.OfferOrderRequest(name=name),
        "ReplaceWorker": o.ReplaceWorkerRequest(name=name, reason="another platform's try"),
        "CheckIn": o.CheckInRequest(name=name, card_token="a.b.c"),
        "CheckOut": o.CheckOutRequest(name=name),
        "CancelOrder": o.CancelOrderRequest(name=name, cancelled_by=o.PARTY_CONSUMER, reason="not mine"),
        "ReportNoShow": o.ReportNoShowRequest(name=name, at_fault=o.PARTY_WORKER),
        "RateOrder": o.RateOrderRequest(name=name, rater=o.PARTY_CONSUMER, stars=1),
        "DisputeCharge": o.DisputeChargeRequest(name=name, disputed_by=o.PARTY_CONSUMER, reason="not mine"),
    }

    codes = {m: await _code(orders_call(orders, other, m, r)) for m, r in attempts.items()}

    assert codes == dict.fromkeys(attempts, grpc.StatusCode.NOT_FOUND)
    mine = await orders_call(orders, harness.key("demo-platform"), "GetOrder", o.GetOrderRequest(name=name))
    assert (mine.order.name, mine.order.state) == (name, o.ORDER_STATE_CREATED)


async def test_another_company_reaches_none_of_a_companys_workers(
    harness: ServiceHarness, workers: RunningService
) -> None:
    operator = harness.key("operator")
    for company_id in (DEMO_COMPANY_ID, OTHER_COMPANY_ID):
        await ensure_company(workers, operator, company_id)
    demo = f"companies/{DEMO_COMPANY_ID}"
    worker = await create_worker(workers, harness.key("demo-company"), demo)
    other = harness.key("other-company")
    attempts = {
        "GetCompany": w.GetCompanyRequest(name=demo),
        "GetWorker": w.GetWorkerRequest(name=worker.name),
        "ListWorkers": w.ListWorkersRequest(parent=demo),
        "TransferWorker": w.TransferWorkerRequest(name=worker.name, company=f"companies/{OTHER_COMPANY_ID}"),
        "SetAvailability": w.SetAvailabilityRequest(worker=worker.name),
        "CreateConsentCode": w.CreateConsentCodeRequest(worker=worker.name),
        "ListConsentGrants": w.ListConsentGrantsRequest(parent=worker.name),
        "IssueCard": w.IssueCardRequest(worker=worker.name),
    }

    codes = {m: await _code(call(workers, other, m, r)) for m, r in attempts.items()}

    # The workers service answers a company's reach for another's worker PERMISSION_DENIED, not
    # NOT_FOUND (docs/security.md).
    assert codes == dict.fromkeys(attempts, grpc.StatusCode.PERMISSION_DENIED)
    grants: w.ListConsentGrantsResponse = await call(
        workers,
        harness.key("other-platform"),
        "ListConsentGrants",
        w.ListConsentGrantsRequest(parent=worker.name),
    )
    assert list(grants.grants) == []  # a platform sees only the grants it holds
    mine: w.GetWorkerResponse = await call(
        workers, harness.key("demo-company"), "GetWorker", w.GetWorkerRequest(name=worker.name)
    )
    assert (mine.worker.name, mine.worker.company) == (worker.name, demo)


async def test_a_case_is_out_of_sight_of_every_tenant_not_party_to_it(
    harness: ServiceHarness, complaints: RunningService
) -> None:
    name = await file_company_complaint(
        complaints, harness.key("demo-platform"), f"companies/{DEMO_COMPANY_ID}", "打扫不干净"
    )
    reads = {
        principal: await _code(
            complaints_call(complaints, harness.key(principal), "GetCase", c.GetCaseRequest(name=name))
        )
        for principal in ("other-platform", "other-company", "consumer-mediator", "union", "demo-insurer")
    }
    writes = {
        ("other-platform", "WithdrawCase"): c.WithdrawCaseRequest(name=name),
        ("other-company", "RespondToCase"): c.RespondToCaseRequest(name=name),
        ("other-company", "DecideCase"): c.DecideCaseRequest(name=name, accept=True),
        ("other-company", "WithdrawCase"): c.WithdrawCaseRequest(name=name),
    }
    written = {
        attempt: await _code(complaints_call(complaints, harness.key(attempt[0]), attempt[1], request))
        for attempt, request in writes.items()
    }

    assert reads == dict.fromkeys(reads, grpc.StatusCode.NOT_FOUND)
    assert written == dict.fromkeys(writes, grpc.StatusCode.NOT_FOUND)
    for party in ("demo-platform", "demo-company"):
        seen = await complaints_call(complaints, harness.key(party), "GetCase", c.GetCaseRequest(name=name))
        assert (seen.complaint_case.name, seen.complaint_case.state) == (name, c.CASE_STATE_FILED)
