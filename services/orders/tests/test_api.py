"""Protobuf ↔ domain mapping of the OrderService API and the shared enum tables."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from jiazheng.orders.v1 import orders_pb2
from jiazheng.type.v1 import service_type_pb2
from services.orders.api import draft_from_proto, order_to_proto
from services.orders.api.convert import contract_to_proto, terms_from_proto
from services.orders.domain import Contact, Order, OrderDraft, OrderState, ServiceType, SpecialNeed
from services.orders.mapping import ORDER_STATE_TO_PROTO, SERVICE_TYPE_FROM_PROTO, SERVICE_TYPE_TO_PROTO
from services.orders.tests.test_contract import CLAUSE, make_contract, make_terms

ORDER_ID = uuid.UUID("0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c")
CREATED = datetime(2024, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)


def _draft(
    worker_id: str | None = "w-42", service_type: ServiceType = ServiceType.ELDERLY_CARE
) -> OrderDraft:
    return OrderDraft(
        service_type=service_type,
        district_code="110108",
        consumer_ref="c-123",
        worker_id=worker_id,
        scheduled_start=datetime(2024, 6, 3, 8, 30, 0, 123456, tzinfo=UTC),
        duration_hours=4,
        contact=Contact("张三", "13812345678"),
        address="北京市朝阳区某街道1号",
        price_fen=30_000,
        special_needs=(SpecialNeed.PETS, SpecialNeed.ELDERLY_CLIENT),
    )


def _order(draft: OrderDraft) -> Order:
    return Order(
        order_id=ORDER_ID,
        platform_id="p-meituan",
        draft=draft,
        state=OrderState.CREATED,
        created_at=CREATED,
        price_fen=draft.price_fen,
        catalogue_version=1,
    )


def test_order_to_proto_fills_every_field() -> None:
    proto = order_to_proto(_order(_draft()))

    assert proto.name == "orders/0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c"
    assert proto.platform_id == "p-meituan"
    assert proto.service_type == service_type_pb2.SERVICE_TYPE_ELDERLY_CARE
    assert proto.district_code == "110108"
    assert proto.consumer_ref == "c-123"
    assert proto.worker_id == "w-42"
    assert proto.scheduled_start_time.ToDatetime(tzinfo=UTC) == datetime(
        2024, 6, 3, 8, 30, 0, 123456, tzinfo=UTC
    )
    assert proto.duration_hours == 4
    assert proto.state == orders_pb2.ORDER_STATE_CREATED
    assert proto.create_time.ToDatetime(tzinfo=UTC) == CREATED


def test_no_worker_is_an_empty_worker_id() -> None:
    assert order_to_proto(_order(_draft(worker_id=None))).worker_id == ""


@pytest.mark.parametrize("worker_id", ["w-42", None])
@pytest.mark.parametrize("service_type", list(ServiceType))
def test_draft_round_trips_through_proto(worker_id: str | None, service_type: ServiceType) -> None:
    draft = _draft(worker_id=worker_id, service_type=service_type)

    back = draft_from_proto(order_to_proto(_order(draft)))

    assert back == _masked(draft)


def test_round_trip_survives_serialization() -> None:
    draft = _draft()
    wire = order_to_proto(_order(draft)).SerializeToString()

    assert draft_from_proto(orders_pb2.Order.FromString(wire)) == _masked(draft)


def _masked(draft: OrderDraft) -> OrderDraft:
    return dataclasses.replace(draft, contact=Contact("张*", "138****5678"), address="北京市朝阳区***")


def test_the_contact_and_address_are_answered_masked() -> None:
    proto = order_to_proto(_order(_draft()))

    assert (proto.contact.full_name, proto.contact.mobile, proto.address) == (
        "张*",
        "138****5678",
        "北京市朝阳区***",
    )


def test_draft_from_proto_gives_utc_aware_start() -> None:
    beijing = timezone(timedelta(hours=8))
    draft = OrderDraft(
        service_type=ServiceType.CLEANING,
        district_code="110105",
        consumer_ref="c",
        worker_id=None,
        scheduled_start=datetime(2024, 6, 3, 16, 30, tzinfo=beijing),
        duration_hours=2,
    )

    back = draft_from_proto(order_to_proto(_order(draft)))

    assert back.scheduled_start == datetime(2024, 6, 3, 8, 30, tzinfo=UTC)
    assert back.scheduled_start.utcoffset() == timedelta(0)


def test_draft_from_proto_reads_a_client_request() -> None:
    request = orders_pb2.Order(
        service_type=service_type_pb2.SERVICE_TYPE_APPLIANCE_CLEANING,
        district_code="110112",
        consumer_ref="c-9",
        duration_hours=2,
    )
    request.scheduled_start_time.FromDatetime(datetime(2024, 7, 1, 2, 0, tzinfo=UTC))

    assert draft_from_proto(request) == OrderDraft(
        service_type=ServiceType.APPLIANCE_CLEANING,
        district_code="110112",
        consumer_ref="c-9",
        worker_id=None,
        scheduled_start=datetime(2024, 7, 1, 2, 0, tzinfo=UTC),
        duration_hours=2,
    )


EXPECTED_SERVICE_TYPES = {
    ServiceType.CLEANING: service_type_pb2.SERVICE_TYPE_CLEANING,
    ServiceType.LIVE_IN_HOUSEKEEPER: service_type_pb2.SERVICE_TYPE_LIVE_IN_HOUSEKEEPER,
    ServiceType.MATERNITY: service_type_pb2.SERVICE_TYPE_MATERNITY,
    ServiceType.INFANT_CARE: service_type_pb2.SERVICE_TYPE_INFANT_CARE,
    ServiceType.ELDERLY_CARE: service_type_pb2.SERVICE_TYPE_ELDERLY_CARE,
    ServiceType.PATIENT_CARE: service_type_pb2.SERVICE_TYPE_PATIENT_CARE,
    ServiceType.APPLIANCE_CLEANING: service_type_pb2.SERVICE_TYPE_APPLIANCE_CLEANING,
    ServiceType.ORGANISING: service_type_pb2.SERVICE_TYPE_ORGANISING,
    ServiceType.AGE_FRIENDLY_ADAPTATION: service_type_pb2.SERVICE_TYPE_AGE_FRIENDLY_ADAPTATION,
}


def test_every_service_type_maps_to_its_proto_value() -> None:
    assert SERVICE_TYPE_TO_PROTO == EXPECTED_SERVICE_TYPES


def test_service_type_proto_values_are_distinct_and_specified() -> None:
    values = list(SERVICE_TYPE_TO_PROTO.values())

    assert len(set(values)) == len(ServiceType)
    assert service_type_pb2.SERVICE_TYPE_UNSPECIFIED not in values


def test_every_defined_proto_service_type_is_mapped() -> None:
    defined = {
        v for v in service_type_pb2.ServiceType.values() if v != service_type_pb2.SERVICE_TYPE_UNSPECIFIED
    }

    assert set(SERVICE_TYPE_FROM_PROTO) == defined


@pytest.mark.parametrize("service_type", list(ServiceType))
def test_service_type_maps_back(service_type: ServiceType) -> None:
    assert SERVICE_TYPE_FROM_PROTO[SERVICE_TYPE_TO_PROTO[service_type]] is service_type


def test_unspecified_service_type_has_no_domain_value() -> None:
    assert service_type_pb2.SERVICE_TYPE_UNSPECIFIED not in SERVICE_TYPE_FROM_PROTO


@pytest.mark.parametrize("state", list(OrderState))
def test_order_states_map_to_the_proto_value_of_their_name(state: OrderState) -> None:
    assert orders_pb2.OrderState.Name(ORDER_STATE_TO_PROTO[state]) == f"ORDER_STATE_{state.name}"


def test_every_proto_order_state_has_a_domain_state() -> None:
    assert set(ORDER_STATE_TO_PROTO.values()) == set(orders_pb2.OrderState.values()) - {0}


def test_a_contracts_cancellation_clause_goes_out_and_comes_back_as_set() -> None:
    contract = make_contract()

    terms = contract_to_proto(contract, contract.content_hash(), None).terms

    assert [(f.notice_hours, f.percent) for f in terms.cancellation.consumer] == [(48, 5), (6, 30)]
    request = orders_pb2.AcceptOfferRequest(name="orders/x/offers/y", terms=terms)
    assert terms_from_proto(request).cancellation == CLAUSE  # type: ignore[union-attr]


def test_terms_without_a_clause_leave_it_to_the_defaults_and_an_old_contract_answers_none() -> None:
    request = orders_pb2.AcceptOfferRequest(
        name="orders/x/offers/y", terms=orders_pb2.ContractTerms(wage_fen=1, management_fee_fen=0)
    )
    old = make_contract(terms=make_terms(cancellation=None))

    assert terms_from_proto(request).cancellation is None  # type: ignore[union-attr]
    assert not contract_to_proto(old, old.content_hash(), None).terms.HasField("cancellation")
