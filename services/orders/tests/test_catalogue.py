"""The service catalogue: entries, prices in integer fen, versioned changes, and orders' enums
kept equal to the workers and credit contracts."""

from __future__ import annotations

import dataclasses
from enum import Enum, IntEnum
from typing import Any

import pytest
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from jiazheng.credit.events.v1 import events_pb2 as credit_events_pb2
from jiazheng.workers.v1 import workers_pb2
from libs.common.errors import InvalidArgument
from services.orders.domain import (
    DEFAULT_CATALOGUE,
    CardColour,
    Catalogue,
    CatalogueEntry,
    CreditLevel,
    HealthTier,
    HourlyRate,
    ServiceType,
    SkillLevel,
    TermPrice,
    Trade,
    change_entry,
)


def _cleaning(**changes: Any) -> CatalogueEntry:
    return dataclasses.replace(DEFAULT_CATALOGUE.entry(ServiceType.CLEANING), **changes)


def test_the_default_catalogue_has_every_service_type_at_version_1() -> None:
    assert set(DEFAULT_CATALOGUE.entries) == set(ServiceType)
    assert DEFAULT_CATALOGUE.version == 1
    assert all(t is e.service_type for t, e in DEFAULT_CATALOGUE.entries.items())


def test_needs_of_a_maternity_nurse() -> None:
    entry = DEFAULT_CATALOGUE.entry(ServiceType.MATERNITY)

    assert (entry.trade, entry.min_skill_level, entry.health_tier) == (
        Trade.MATERNITY_NURSE,
        SkillLevel.LEVEL_4,
        HealthTier.MATERNAL_INFANT,
    )


@pytest.mark.parametrize(
    ("service_type", "hours", "fen"),
    [
        (ServiceType.CLEANING, 3, 13_500),
        (ServiceType.MATERNITY, 26 * 24, 1_500_000),
        (ServiceType.MATERNITY, 39 * 24, 2_250_000),
        (ServiceType.PATIENT_CARE, 36, 45_000),
    ],
)
def test_prices_in_fen(service_type: ServiceType, hours: int, fen: int) -> None:
    assert DEFAULT_CATALOGUE.entry(service_type).price_fen(hours) == fen


@pytest.mark.parametrize(("hours", "fen"), [(1, 33), (2, 67), (3, 100), (4, 133)])
def test_a_part_term_is_prorated_by_the_hour_rounded_half_up_to_the_fen(hours: int, fen: int) -> None:
    assert TermPrice(fen_per_term=100, term_hours=3).price_fen(hours) == fen


def test_an_exact_half_fen_rounds_up() -> None:
    assert TermPrice(fen_per_term=1, term_hours=2).price_fen(1) == 1


def test_change_entry_bumps_the_version_and_replaces_only_that_entry() -> None:
    entry = _cleaning(price=HourlyRate(5_000), max_hours=10)

    changed = change_entry(DEFAULT_CATALOGUE, entry)

    assert changed.version == 2
    assert changed.entry(ServiceType.CLEANING) == entry
    assert {t: e for t, e in changed.entries.items() if t is not ServiceType.CLEANING} == {
        t: e for t, e in DEFAULT_CATALOGUE.entries.items() if t is not ServiceType.CLEANING
    }
    assert DEFAULT_CATALOGUE.entry(ServiceType.CLEANING).price == HourlyRate(4_500)


def test_max_equal_to_default_duration_is_accepted() -> None:
    assert change_entry(DEFAULT_CATALOGUE, _cleaning(default_hours=8, max_hours=8)).version == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"default_hours": 0}, "default_hours"),
        ({"default_hours": 5, "max_hours": 4}, "max_hours"),
        ({"price": HourlyRate(0)}, "price.fen_per_hour"),
        ({"price": TermPrice(0)}, "price.fen_per_term"),
        ({"price": TermPrice(100, term_hours=0)}, "price.term_hours"),
    ],
)
def test_change_entry_refuses_an_entry_that_makes_no_sense(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        change_entry(DEFAULT_CATALOGUE, _cleaning(**changes))

    assert refused.value.field == field


def test_a_service_type_missing_from_a_catalogue_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as refused:
        Catalogue(3, {}).entry(ServiceType.ORGANISING)

    assert refused.value.field == "service_type"


@pytest.mark.parametrize(
    ("ours", "theirs", "prefix"),
    [
        (Trade, workers_pb2.Trade, "TRADE_"),
        (SkillLevel, workers_pb2.SkillLevel, "SKILL_"),
        (HealthTier, workers_pb2.HealthTier, "HEALTH_TIER_"),
        (CardColour, workers_pb2.CardColour, "CARD_COLOUR_"),
        (CreditLevel, credit_events_pb2.CreditLevel, "CREDIT_LEVEL_"),
    ],
)
def test_orders_enums_match_the_contracts(ours: type[Enum], theirs: EnumTypeWrapper, prefix: str) -> None:
    contract = {name: number for name, number in theirs.items() if not name.endswith("_UNSPECIFIED")}

    assert {prefix + member.name for member in ours} == set(contract)
    assert [contract[prefix + member.name] for member in ours] == sorted(contract.values())
    if issubclass(ours, IntEnum):
        assert all(contract[prefix + member.name] == member.value for member in ours)
