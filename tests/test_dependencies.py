"""constraints.txt pins every package pyproject.toml asks for, inside the ranges it allows."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in pairs}


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in project["dependencies"] + extras]


def test_every_requirement_is_pinned_at_a_version_its_range_allows() -> None:
    pins = _pins()
    outside = {
        str(r): pin
        for r in _requirements()
        if (pin := pins.get(canonicalize_name(r.name))) is None or pin not in r.specifier
    }
    assert outside == {}, "run `make lock` after changing pyproject.toml's dependencies"


def test_every_line_pins_one_exact_version() -> None:
    lines = [line for line in (REPO / "constraints.txt").read_text().splitlines() if not line.startswith("#")]
    assert all(str(Requirement(line).specifier).startswith("==") for line in lines)
    assert len(_pins()) == len(lines) > 50
