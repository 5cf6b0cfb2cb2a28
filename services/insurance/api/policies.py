"""gRPC PolicyService: products, premium quotes, group policies and endorsements, protobuf ↔ use
cases, with the roles allowed per method (docs/insurance.md, "Who may do what")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import grpc

from jiazheng.insurance.v1 import policies_pb2 as pb
from jiazheng.insurance.v1 import policies_pb2_grpc
from libs.common.auth import Role, current_principal
from libs.common.beijing import beijing_day
from libs.common.errors import InvalidArgument, NotFound
from libs.common.protoutil import calendar_date, request_uuid
from libs.common.uow import Clock
from services.insurance.api.convert import (
    applicant,
    endorsement_to_proto,
    optional_day,
    policy_id,
    policy_to_proto,
    product_to_proto,
    resource_id,
)
from services.insurance.domain import policies as domain
from services.insurance.domain.products import Catalogue, age_on
from services.insurance.service_layer import policies as service_layer
from services.insurance.service_layer.policy_ports import PolicyUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["PolicyService"]
_EVERYONE = frozenset({Role.COMPANY, Role.INSURER, Role.OPERATOR})
_BUYERS = frozenset({Role.COMPANY, Role.OPERATOR})
POLICY = {
    f"/{SERVICE.full_name}/{method}": roles
    for method, roles in {
        "ListProducts": _EVERYONE,
        "GetProduct": _EVERYONE,
        "QuotePremium": _EVERYONE,
        "CreatePolicy": _BUYERS,
        "GetPolicy": _EVERYONE,
        "ListPolicies": _EVERYONE,
        "EndorsePolicy": _BUYERS,
    }.items()
}

Context = grpc.aio.ServicerContext[Any, Any]


class PolicyServicer(policies_pb2_grpc.PolicyServiceServicer):
    def __init__(
        self, uow_factory: Callable[[], PolicyUnitOfWork], catalogue: Catalogue, clock: Clock
    ) -> None:
        self._uow = uow_factory
        self._catalogue = catalogue
        self._clock = clock

    def _today(self) -> date:
        return beijing_day(self._clock.now())

    async def ListProducts(
        self, request: pb.ListProductsRequest, context: Context
    ) -> pb.ListProductsResponse:
        return pb.ListProductsResponse(products=[product_to_proto(p) for p in self._catalogue])

    async def GetProduct(self, request: pb.GetProductRequest, context: Context) -> pb.GetProductResponse:
        product = self._catalogue.get(resource_id(request.name, "products", "name"))
        if product is None:
            raise NotFound(f"no product {request.name}")
        return pb.GetProductResponse(product=product_to_proto(product))

    async def QuotePremium(
        self, request: pb.QuotePremiumRequest, context: Context
    ) -> pb.QuotePremiumResponse:
        product = service_layer.product_of(
            self._catalogue, resource_id(request.product, "products", "product")
        )
        start = optional_day(request.start_date, "start_date") or self._today()
        end = optional_day(request.end_date, "end_date")
        if request.WhichOneof("age_of") == "birth_date":
            age, age_field = age_on(calendar_date(request.birth_date, "birth_date"), start), "birth_date"
        else:
            age, age_field = request.age, "age"
        try:
            quote = service_layer.quote(product, request.job_class, age, start, end, self._today())
        except InvalidArgument as error:
            field = age_field if error.field == "birth_date" else error.field
            raise InvalidArgument(field, error.description) from None
        return pb.QuotePremiumResponse(
            annual_premium_fen=quote.annual_fen,
            term_premium_fen=quote.pro_rata_fen,
            term_days=quote.days,
            policy_year_days=quote.year_days,
            start_date=start.isoformat(),
            end_date=(end or domain.default_end(start)).isoformat(),
        )

    async def CreatePolicy(
        self, request: pb.CreatePolicyRequest, context: Context
    ) -> pb.CreatePolicyResponse:
        principal = current_principal()
        company = resource_id(request.company, "companies", "company") if request.company else ""
        product_id = resource_id(request.product, "products", "product")
        issue = domain.Issue(
            company_id=service_layer.buyer(principal, company),
            product=service_layer.product_of(self._catalogue, product_id),
            start=calendar_date(request.start_date, "start_date"),
            end=optional_day(request.end_date, "end_date"),
            workers=tuple(applicant(w, f"workers[{i}]") for i, w in enumerate(request.workers)),
        )
        policy = await service_layer.create_policy(
            self._uow(), principal, request_uuid(request.request_id), issue
        )
        return pb.CreatePolicyResponse(policy=policy_to_proto(policy))

    async def GetPolicy(self, request: pb.GetPolicyRequest, context: Context) -> pb.GetPolicyResponse:
        policy = await service_layer.get_policy(self._uow(), current_principal(), policy_id(request.name))
        return pb.GetPolicyResponse(policy=policy_to_proto(policy))

    async def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: Context
    ) -> pb.ListPoliciesResponse:
        shown, token = await service_layer.list_policies(
            self._uow(), current_principal(), request.page_token, request.page_size
        )
        return pb.ListPoliciesResponse(policies=[policy_to_proto(p) for p in shown], next_page_token=token)

    async def EndorsePolicy(
        self, request: pb.EndorsePolicyRequest, context: Context
    ) -> pb.EndorsePolicyResponse:
        change = domain.Change(
            kind=domain.EndorsementKind(request.kind),
            effective_date=calendar_date(request.effective_date, "effective_date"),
            add=tuple(applicant(w, f"add_workers[{i}]") for i, w in enumerate(request.add_workers)),
            remove=tuple(
                str(request_uuid(w, f"remove_worker_ids[{i}]"))
                for i, w in enumerate(request.remove_worker_ids)
            ),
        )
        policy, endorsement = await service_layer.endorse_policy(
            self._uow(),
            self._catalogue,
            current_principal(),
            policy_id(request.name),
            request_uuid(request.request_id),
            change,
        )
        return pb.EndorsePolicyResponse(
            policy=policy_to_proto(policy), endorsement=endorsement_to_proto(endorsement)
        )
