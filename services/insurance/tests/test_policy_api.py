"""The PolicyService servicer through the in-memory unit of work as the current principal: its
role policy, products, quotes naming the field of a bad age or job class, policies created and
endorsed from protobuf, pages of policies, and malformed names and dates naming their fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from jiazheng.insurance.v1 import cover_pb2
from jiazheng.insurance.v1 import policies_pb2 as pb
from jiazheng.type.v1 import service_type_pb2 as st
from libs.common.auth import Principal, Role, acting_as
from libs.common.errors import InvalidArgument, NotFound
from libs.common.testing import FixedClock
from services.insurance.api import POLICY_SERVICE, PolicyServicer
from services.insurance.api.policies import POLICY as POLICY_POLICY
from services.insurance.api.policies import Context
from services.insurance.domain.products import DEFAULT_PRODUCTS, load_catalogue
from services.insurance.tests.policy_fakes import FakePolicyUnitOfWork

COMPANY = Principal("demo-company", Role.COMPANY, "c-1")
OPERATOR = Principal("operator", Role.OPERATOR, "ops")
CONTEXT = cast(Context, None)
TODAY = "2026-11-30"


@pytest.fixture
def uow() -> FakePolicyUnitOfWork:
    return FakePolicyUnitOfWork(FixedClock(datetime(2026, 11, 30, 2, 0, tzinfo=UTC)))


@pytest.fixture
def servicer(uow: FakePolicyUnitOfWork) -> PolicyServicer:
    return PolicyServicer(lambda: uow, load_catalogue(DEFAULT_PRODUCTS), uow.clock)


def insured(age_born: int = 1990, job_class: int = 2) -> pb.InsuredWorkerInput:
    return pb.InsuredWorkerInput(
        worker_id=str(uuid.uuid4()),
        birth_date=f"{age_born}-01-01",
        service_types=[st.SERVICE_TYPE_CLEANING],
        job_class=job_class,
    )


async def as_(principal: Principal, method: Any, request: Any) -> Any:
    with acting_as(principal):
        return await method(request, CONTEXT)


def test_every_method_has_its_roles() -> None:
    assert set(POLICY_POLICY) == {f"/{POLICY_SERVICE.full_name}/{m.name}" for m in POLICY_SERVICE.methods}
    create = POLICY_POLICY[f"/{POLICY_SERVICE.full_name}/CreatePolicy"]
    assert create == {Role.COMPANY, Role.OPERATOR}
    assert Role.INSURER in POLICY_POLICY[f"/{POLICY_SERVICE.full_name}/ListPolicies"]


async def test_products_and_their_premium_rows(servicer: PolicyServicer) -> None:
    products = (await as_(COMPANY, servicer.ListProducts, pb.ListProductsRequest())).products
    assert [p.name for p in products][:2] == ["products/el-100k", "products/el-300k"]
    got = (await as_(COMPANY, servicer.GetProduct, pb.GetProductRequest(name="products/el-800k"))).product
    row = got.premiums[2]
    assert (row.job_class, row.age_16_to_50_fen, row.age_61_to_70_fen) == (3, 40500, 46500)
    assert [t.kind for t in got.terms] == [cover_pb2.COVER_KIND_EMPLOYER_LIABILITY]
    with pytest.raises(NotFound):
        await as_(COMPANY, servicer.GetProduct, pb.GetProductRequest(name="products/fire"))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.QuotePremiumRequest(product="products/el-100k", job_class=4, age=30), "job_class"),
        (pb.QuotePremiumRequest(product="products/el-100k", job_class=2, age=71), "age"),
        (
            pb.QuotePremiumRequest(product="products/el-100k", job_class=2, birth_date="2011-06-01"),
            "birth_date",
        ),
        (
            pb.QuotePremiumRequest(product="products/el-100k", job_class=2, birth_date="2011-13-01"),
            "birth_date",
        ),
        (pb.QuotePremiumRequest(product="products/none", job_class=2, age=30), "product"),
    ],
)
async def test_quotes_name_the_bad_field(
    servicer: PolicyServicer, request_: pb.QuotePremiumRequest, field: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await as_(COMPANY, servicer.QuotePremium, request_)
    assert raised.value.field == field


async def test_a_quote_by_birth_date_takes_the_age_on_the_start_date(servicer: PolicyServicer) -> None:
    request = pb.QuotePremiumRequest(
        product="products/el-100k", job_class=2, birth_date="1975-12-01", start_date="2026-12-01"
    )
    reply = await as_(COMPANY, servicer.QuotePremium, request)
    assert (reply.annual_premium_fen, reply.term_premium_fen, reply.end_date) == (7500, 7500, "2027-11-30")


async def test_create_get_endorse_and_list(servicer: PolicyServicer, uow: FakePolicyUnitOfWork) -> None:
    create = pb.CreatePolicyRequest(
        request_id=str(uuid.uuid4()), product="products/el-100k", start_date=TODAY, workers=[insured()]
    )
    policy = (await as_(COMPANY, servicer.CreatePolicy, create)).policy
    assert (policy.company, policy.premium_fen, policy.state) == (
        "companies/c-1",
        7000,
        pb.POLICY_STATE_ACTIVE,
    )
    newcomer = insured(1960)
    endorse = pb.EndorsePolicyRequest(
        request_id=str(uuid.uuid4()),
        name=policy.name,
        kind=cover_pb2.ENDORSEMENT_KIND_ADD,
        effective_date=TODAY,
        add_workers=[newcomer],
    )
    reply = await as_(COMPANY, servicer.EndorsePolicy, endorse)
    assert reply.endorsement.premium_delta_fen == 8000
    assert [w.worker_id for w in reply.policy.insured_workers][1] == newcomer.worker_id
    got = (await as_(OPERATOR, servicer.GetPolicy, pb.GetPolicyRequest(name=policy.name))).policy
    assert got == reply.policy
    for _ in range(2):
        await as_(
            OPERATOR,
            servicer.CreatePolicy,
            pb.CreatePolicyRequest(
                request_id=str(uuid.uuid4()),
                company="companies/c-2",
                product="products/pl-200k",
                start_date=TODAY,
                workers=[insured()],
            ),
        )
    first = await as_(OPERATOR, servicer.ListPolicies, pb.ListPoliciesRequest(page_size=2))
    rest = await as_(
        OPERATOR, servicer.ListPolicies, pb.ListPoliciesRequest(page_size=2, page_token=first.next_page_token)
    )
    assert (len(first.policies), len(rest.policies), rest.next_page_token) == (2, 1, "")
    names = {p.name for p in [*first.policies, *rest.policies]}
    assert names == {f"policies/{i}" for i in uow.policies.by_id}
    with pytest.raises(InvalidArgument) as raised:
        await as_(COMPANY, servicer.ListPolicies, pb.ListPoliciesRequest(page_token=first.next_page_token))
    assert raised.value.field == "page_token"  # issued for another caller's listing


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start_date": "2026-02-30"}, "start_date"),
        ({"product": "policies/el-100k"}, "product"),
        (
            {"workers": [pb.InsuredWorkerInput(worker_id="w-1", birth_date="1990-01-01", job_class=2)]},
            "workers[0].worker_id",
        ),
        ({"workers": [insured(2012)]}, "workers[0].birth_date"),
        ({"workers": [insured(job_class=1)]}, "workers[0].job_class"),
    ],
)
async def test_bad_policy_requests_name_the_field(
    servicer: PolicyServicer, change: dict[str, Any], field: str
) -> None:
    fields: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "product": "products/el-100k",
        "start_date": TODAY,
    }
    request = pb.CreatePolicyRequest(**{**fields, "workers": [insured()], **change})
    with pytest.raises(InvalidArgument) as raised:
        await as_(COMPANY, servicer.CreatePolicy, request)
    assert raised.value.field == field
