"""The service catalogue (服务目录): what each service type needs of a worker, how long it runs and
what it costs.

Prices are integer fen (分), never floats. An hourly type costs its rate × the booked hours. A
live-in or monthly type has a fixed price per term (26 days of 24 hours, the industry's "month");
a booking pays that price for each whole term, and the part of a term left over is prorated by
the hour, rounded half up to the fen. The entries of ``DEFAULT_CATALOGUE`` are our defaults, not
regulated figures; operators change them with ``change_entry``, which bumps the version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from libs.common.errors import InvalidArgument
from services.orders.domain.vocabulary import HealthTier, ServiceType, SkillLevel, Trade

MONTH_HOURS = 26 * 24  # the 26-day month of live-in and maternity contracts


@dataclass(frozen=True)
class HourlyRate:
    """A price per booked hour."""

    fen_per_hour: int

    def price_fen(self, hours: int) -> int:
        return self.fen_per_hour * hours

    def problems(self) -> list[tuple[str, str]]:
        return [] if self.fen_per_hour > 0 else [("price.fen_per_hour", "must be positive")]


@dataclass(frozen=True)
class TermPrice:
    """A fixed price per term of ``term_hours``; a part term prorated by the hour, half up."""

    fen_per_term: int
    term_hours: int = MONTH_HOURS

    def price_fen(self, hours: int) -> int:
        return (self.fen_per_term * hours * 2 + self.term_hours) // (self.term_hours * 2)

    def problems(self) -> list[tuple[str, str]]:
        found = [] if self.fen_per_term > 0 else [("price.fen_per_term", "must be positive")]
        return found + ([] if self.term_hours > 0 else [("price.term_hours", "must be positive")])


PriceRule = HourlyRate | TermPrice


@dataclass(frozen=True)
class CatalogueEntry:
    """One service type's needs (health tier, trade, minimum skill level), durations and price."""

    service_type: ServiceType
    health_tier: HealthTier
    trade: Trade
    min_skill_level: SkillLevel
    default_hours: int
    max_hours: int
    price: PriceRule

    def price_fen(self, hours: int) -> int:
        """What ``hours`` of this service cost, in fen."""
        return self.price.price_fen(hours)


@dataclass(frozen=True)
class Catalogue:
    """A version of the catalogue: one entry per service type."""

    version: int
    entries: Mapping[ServiceType, CatalogueEntry]

    def entry(self, service_type: ServiceType) -> CatalogueEntry:
        found = self.entries.get(service_type)
        if found is None:
            raise InvalidArgument(
                "service_type", f"{service_type} is not in catalogue version {self.version}"
            )
        return found


def check_entry(entry: CatalogueEntry) -> CatalogueEntry:
    """``entry`` when its durations and price make sense (max ≥ default > 0, prices > 0)."""
    problems = entry.price.problems()
    if entry.default_hours <= 0:
        problems.append(("default_hours", "must be positive"))
    if entry.max_hours < entry.default_hours:
        problems.append(("max_hours", "must be at least default_hours"))
    if problems:
        raise InvalidArgument(*problems[0], *problems[1:])
    return entry


def change_entry(catalogue: Catalogue, entry: CatalogueEntry) -> Catalogue:
    """The next version of ``catalogue``, with ``entry`` replacing its service type's entry."""
    entries = {**catalogue.entries, entry.service_type: check_entry(entry)}
    return Catalogue(catalogue.version + 1, MappingProxyType(entries))


_S, _H, _T, _L = ServiceType, HealthTier, Trade, SkillLevel
# Our defaults: needs, (default hours, max hours), hourly rates and prices per term in fen.
_DEFAULT_ENTRIES = (
    CatalogueEntry(_S.CLEANING, _H.GENERAL, _T.HOUSEKEEPER, _L.LEVEL_5, 3, 8, HourlyRate(4_500)),
    CatalogueEntry(
        _S.LIVE_IN_HOUSEKEEPER,
        _H.LIVE_IN,
        _T.HOUSEKEEPER,
        _L.LEVEL_4,
        MONTH_HOURS,
        12 * MONTH_HOURS,
        TermPrice(700_000),
    ),
    CatalogueEntry(
        _S.MATERNITY,
        _H.MATERNAL_INFANT,
        _T.MATERNITY_NURSE,
        _L.LEVEL_4,
        MONTH_HOURS,
        2 * MONTH_HOURS,
        TermPrice(1_500_000),
    ),
    CatalogueEntry(
        _S.INFANT_CARE,
        _H.MATERNAL_INFANT,
        _T.MATERNITY_NURSE,
        _L.LEVEL_5,
        MONTH_HOURS,
        12 * MONTH_HOURS,
        TermPrice(800_000),
    ),
    CatalogueEntry(_S.ELDERLY_CARE, _H.ELDERLY_CARE, _T.FAMILY_CARER, _L.LEVEL_5, 4, 12, HourlyRate(6_000)),
    CatalogueEntry(
        _S.PATIENT_CARE, _H.ELDERLY_CARE, _T.FAMILY_CARER, _L.LEVEL_4, 24, 720, TermPrice(30_000, 24)
    ),
    CatalogueEntry(_S.APPLIANCE_CLEANING, _H.GENERAL, _T.HOUSEKEEPER, _L.LEVEL_4, 2, 6, HourlyRate(8_000)),
    CatalogueEntry(_S.ORGANISING, _H.GENERAL, _T.HOUSEKEEPER, _L.LEVEL_4, 4, 10, HourlyRate(7_000)),
    CatalogueEntry(
        _S.AGE_FRIENDLY_ADAPTATION, _H.GENERAL, _T.FAMILY_CARER, _L.LEVEL_3, 4, 16, HourlyRate(9_000)
    ),
)
DEFAULT_CATALOGUE = Catalogue(1, MappingProxyType({e.service_type: check_entry(e) for e in _DEFAULT_ENTRIES}))
