"""Insurance products (险种产品) and their premiums: the catalogue is configuration
(services/insurance/products.json), checked when it is loaded; the premium rules are
docs/insurance.md's (age bands by full years, pro rata rounded half up to the fen)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from libs.common.errors import InvalidArgument
from services.insurance.domain.cover import CoverKind, CoverTerms, Exclusion

DEFAULT_PRODUCTS = Path(__file__).resolve().parent.parent / "products.json"

# The age bands of every premium table, in full years on the day cover starts (DOMAIN §8: 16–70).
AGE_BANDS = ((16, 50), (51, 60), (61, 70))
JOB_CLASSES = (1, 2, 3)


@dataclass(frozen=True)
class Product:
    """An insurance product an insurer underwrites: a cover term per kind it offers, its
    exclusions (除外责任) and its premium table, fen per insured worker and policy year by job
    class (职业类别), one amount per age band of ``AGE_BANDS``."""

    id: str
    name: str
    insurer: str
    terms: Mapping[CoverKind, CoverTerms]
    exclusions: frozenset[Exclusion]
    premiums_fen: Mapping[int, tuple[int, ...]]

    def annual_premium(self, job_class: int, age: int) -> int:
        """Fen per year for a worker of ``age`` (full years) insured under ``job_class``."""
        row = self.premiums_fen.get(job_class)
        if row is None:
            classes = ", ".join(str(c) for c in sorted(self.premiums_fen))
            raise InvalidArgument("job_class", f"unknown job class {job_class} (known: {classes})")
        return row[age_band(age)]


class Catalogue:
    """The products on offer, by id, in the order of the file."""

    def __init__(self, products: list[Product]) -> None:
        self._by_id = {p.id: p for p in products}

    def get(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)

    def __iter__(self) -> Iterator[Product]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


def age_on(birth_date: date, day: date) -> int:
    """Age in full years on ``day`` (someone born on 29 February comes of age on 1 March)."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday


def age_band(age: int) -> int:
    """The index in ``AGE_BANDS`` of ``age``; outside 16–70 nobody is insured."""
    for index, (low, high) in enumerate(AGE_BANDS):
        if low <= age <= high:
            return index
    low, high = AGE_BANDS[0][0], AGE_BANDS[-1][1]
    raise InvalidArgument("birth_date", f"age {age} is outside the insurable ages {low}–{high}")


def pro_rata(annual_fen: int, days: int, term_days: int) -> int:
    """``annual_fen`` for ``days`` of a ``term_days`` term, rounded half up to the fen in integers."""
    return (2 * annual_fen * days + term_days) // (2 * term_days)


_E = TypeVar("_E", CoverKind, Exclusion)


class CatalogueError(ValueError):
    """A products file that cannot be used; the message names the file and what is wrong."""


def load_catalogue(path: Path) -> Catalogue:
    """The catalogue in ``path``; a malformed file raises CatalogueError naming the faulty entry."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        products = [_product(entry, f"products[{i}]") for i, entry in enumerate(_list(document, "products"))]
    except (OSError, ValueError) as error:
        raise CatalogueError(f"{path}: {error}") from error
    ids = [p.id for p in products]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CatalogueError(f"{path}: duplicate product ids {', '.join(duplicates)}")
    if not products:
        raise CatalogueError(f"{path}: no products")
    return Catalogue(products)


def _field(entry: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(entry, dict) or not isinstance(entry.get(key), kind) or isinstance(entry[key], bool):
        raise ValueError(f"{where}.{key}: missing or not a {kind.__name__}")
    return entry[key]


def _list(entry: Any, key: str, where: str = "") -> list[Any]:
    value: list[Any] = _field(entry, key, list, where or "file")
    return value


def _text(entry: Any, key: str, where: str) -> str:
    value: str = _field(entry, key, str, where)
    if not value.strip():
        raise ValueError(f"{where}.{key}: empty")
    return value


def _fen(entry: Any, key: str, where: str, minimum: int) -> int:
    value: int = _field(entry, key, int, where)
    if value < minimum:
        raise ValueError(f"{where}.{key}: {value} is below {minimum}")
    return value


def _enum(kind: type[_E], name: Any, where: str) -> _E:
    try:
        return kind[name]
    except (KeyError, TypeError):
        raise ValueError(f"{where}: unknown {kind.__name__} {name!r}") from None


def _terms(entry: Any, where: str) -> dict[CoverKind, CoverTerms]:
    terms: dict[CoverKind, CoverTerms] = {}
    for i, term in enumerate(_list(entry, "terms", where)):
        at = f"{where}.terms[{i}]"
        kind = _enum(CoverKind, _field(term, "kind", str, at), f"{at}.kind")
        limit = _fen(term, "limit_fen", at, 1)
        deductible = _fen(term, "deductible_fen", at, 0)
        if kind in terms:
            raise ValueError(f"{at}.kind: {kind.name} repeated")
        if deductible >= limit:
            raise ValueError(f"{at}.deductible_fen: not below the limit")
        terms[kind] = CoverTerms(kind, limit, deductible)
    if not terms:
        raise ValueError(f"{where}.terms: no cover term")
    return terms


def _premiums(entry: Any, where: str) -> dict[int, tuple[int, ...]]:
    table = _field(entry, "premiums_fen", dict, where)
    if sorted(table) != [str(c) for c in JOB_CLASSES]:
        raise ValueError(f"{where}.premiums_fen: job classes {sorted(table)}, expected {list(JOB_CLASSES)}")
    rows = {int(c): row for c, row in table.items()}
    for job_class, row in rows.items():
        fine = isinstance(row, list) and len(row) == len(AGE_BANDS)
        if not fine or not all(isinstance(a, int) and not isinstance(a, bool) and a > 0 for a in row):
            raise ValueError(
                f"{where}.premiums_fen.{job_class}: expected {len(AGE_BANDS)} positive fen amounts"
            )
    return {c: tuple(row) for c, row in sorted(rows.items())}


def _product(entry: Any, where: str) -> Product:
    exclusions = _list(entry, "exclusions", where)
    return Product(
        id=_text(entry, "id", where),
        name=_text(entry, "name", where),
        insurer=_text(entry, "insurer", where),
        terms=_terms(entry, where),
        exclusions=frozenset(
            _enum(Exclusion, e, f"{where}.exclusions[{i}]") for i, e in enumerate(exclusions)
        ),
        premiums_fen=_premiums(entry, where),
    )
