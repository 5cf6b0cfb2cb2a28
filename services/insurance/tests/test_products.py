"""The product catalogue and premiums: the seeded grid is DOMAIN §8's read as docs/insurance.md
says, a malformed products file fails naming what is wrong, ages in full years and their bands,
and pro rata rounded half up in integers (never above the annual premium)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.errors import InvalidArgument
from services.insurance.domain.cover import CoverKind, Exclusion
from services.insurance.domain.products import (
    DEFAULT_PRODUCTS,
    CatalogueError,
    age_band,
    age_on,
    load_catalogue,
    pro_rata,
)

CATALOGUE = load_catalogue(DEFAULT_PRODUCTS)


def product(product_id: str) -> Any:
    found = CATALOGUE.get(product_id)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("product_id", "limit_yuan", "low", "middle", "high"),
    [
        ("el-100k", 100_000, 70, 75, 80),
        ("el-300k", 300_000, 100, 108, 115),  # 107.5 rounded half up to the yuan
        ("el-500k", 500_000, 180, 195, 210),
        ("el-800k", 800_000, 270, 290, 310),
    ],
)
def test_employer_liability_grid_is_domain_8_by_age_band(
    product_id: str, limit_yuan: int, low: int, middle: int, high: int
) -> None:
    p = product(product_id)
    assert p.terms[CoverKind.EMPLOYER_LIABILITY].limit_fen == limit_yuan * 100
    for job_class in (1, 2):
        assert [p.annual_premium(job_class, age) for age in (16, 50, 51, 60, 61, 70)] == [
            low * 100,
            low * 100,
            middle * 100,
            middle * 100,
            high * 100,
            high * 100,
        ]
    assert p.premiums_fen[3] == tuple(fen * 3 // 2 for fen in p.premiums_fen[1])


def test_catalogue_offers_every_kind_all_from_the_demo_insurer() -> None:
    assert len(CATALOGUE) == 7
    assert {p.insurer for p in CATALOGUE} == {"demo-insurer"}
    single = {kind for p in CATALOGUE if len(p.terms) == 1 for kind in p.terms}
    assert single == set(CoverKind)
    package = product("package-standard")
    assert set(package.terms) == set(CoverKind)
    assert Exclusion.WAR_OR_NUCLEAR in package.exclusions


def test_package_costs_90_percent_of_its_parts() -> None:
    parts = [product(i) for i in ("el-300k", "accident-200k", "pl-200k")]
    package = product("package-standard")
    for job_class in (1, 2, 3):
        for age in (30, 55, 65):
            whole = sum(p.annual_premium(job_class, age) for p in parts)
            assert package.annual_premium(job_class, age) * 10 == whole * 9


def test_unknown_job_class_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as raised:
        product("el-100k").annual_premium(4, 30)
    assert raised.value.field == "job_class"


@pytest.mark.parametrize("age", [15, 71, 0, 120])
def test_ages_outside_16_to_70_name_birth_date(age: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        age_band(age)
    assert raised.value.field == "birth_date"


def test_age_counts_full_years_and_leap_day_birthdays() -> None:
    assert age_on(date(2000, 12, 1), date(2026, 11, 30)) == 25
    assert age_on(date(2000, 12, 1), date(2026, 12, 1)) == 26
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_pro_rata_rounds_half_up() -> None:
    assert pro_rata(7000, 1, 365) == 19  # 19.18
    assert pro_rata(100, 1, 8) == 13  # 12.5 up
    assert pro_rata(100, 3, 8) == 38  # 37.5 up
    assert pro_rata(100, 1, 3) == 33  # 33.33 down
    assert pro_rata(7000, 365, 365) == 7000


@given(
    annual=st.integers(min_value=0, max_value=10_000_000),
    term_days=st.integers(min_value=1, max_value=366),
    data=st.data(),
)
def test_pro_rata_is_the_nearest_fen_and_never_above_the_annual(
    annual: int, term_days: int, data: Any
) -> None:
    days = data.draw(st.integers(min_value=0, max_value=term_days))
    fen = pro_rata(annual, days, term_days)
    assert 0 <= fen <= annual
    exact_twice = 2 * annual * days  # twice the exact amount, in units of 1/term_days fen
    assert abs(2 * fen * term_days - exact_twice) <= term_days  # within half a fen
    assert 2 * fen * term_days - exact_twice != -term_days  # an exact half goes up


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "products.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def seeded() -> Any:
    return json.loads(DEFAULT_PRODUCTS.read_text(encoding="utf-8"))


def broken(change: Any) -> Any:
    document = seeded()
    change(document["products"][1])
    return document


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda p: p.pop("insurer"), "products[1].insurer"),
        (lambda p: p.update(id=""), "products[1].id"),
        (lambda p: p["terms"][0].update(kind="FIRE"), "products[1].terms[0].kind"),
        (lambda p: p["terms"][0].update(limit_fen=1.5), "products[1].terms[0].limit_fen"),
        (lambda p: p["terms"][0].update(deductible_fen=-1), "products[1].terms[0].deductible_fen"),
        (
            lambda p: p["terms"][0].update(deductible_fen=p["terms"][0]["limit_fen"]),
            "terms[0].deductible_fen",
        ),
        (lambda p: p["terms"].append(p["terms"][0]), "products[1].terms[1].kind"),
        (lambda p: p.update(terms=[]), "products[1].terms"),
        (lambda p: p["exclusions"].append("BOREDOM"), "products[1].exclusions[4]"),
        (lambda p: p["premiums_fen"].pop("3"), "products[1].premiums_fen"),
        (lambda p: p["premiums_fen"]["2"].pop(), "products[1].premiums_fen.2"),
        (lambda p: p["premiums_fen"]["1"].__setitem__(0, 0), "products[1].premiums_fen.1"),
        (lambda p: p.update(id="el-100k"), "duplicate product ids el-100k"),
    ],
)
def test_a_malformed_file_fails_naming_what_is_wrong(tmp_path: Path, change: Any, named: str) -> None:
    path = write(tmp_path, broken(change))
    with pytest.raises(CatalogueError, match=str(path)) as raised:
        load_catalogue(path)
    assert named in str(raised.value)


def test_an_unreadable_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "products.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"products\.json"):
        load_catalogue(path)
    with pytest.raises(CatalogueError, match="no products"):
        load_catalogue(write(tmp_path, {"products": []}))
    with pytest.raises(CatalogueError, match="No such file"):
        load_catalogue(tmp_path / "absent.json")
