"""Offline validation of the Kubernetes manifests (`make k8s-validate`).

Builds the base and every overlay with ``kubectl kustomize`` and validates each object in strict
mode (an unknown field is an error): Kubernetes' own kinds with kubernetes-validate, for the
Kubernetes version it bundles; the operators' kinds (Strimzi, CloudNativePG, the Prometheus
operator) against the OpenAPI schemas of their CRDs, vendored in deploy/k8s/crds. A kind with
no schema is an error too. ``--out DIR`` also writes each build as ``DIR/<name>.yaml`` (what
checkov scans).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]  # no type information
import yaml

K8S = Path(__file__).resolve().parent
CRDS = K8S / "crds"
# Schema keywords whose value is one schema, or a list or map of schemas.
_SUBSCHEMA = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")

Manifest = dict[str, Any]


def kustomizations() -> dict[str, Path]:
    """The base and every overlay, by name (``base``, ``dev``, ``prod``...)."""
    overlays = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
    return {"base": K8S / "base", **{p.name: p for p in overlays}}


def build(kustomization: Path) -> list[Manifest]:
    """The objects ``kubectl kustomize`` renders from ``kustomization``."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(kustomization)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def strict(schema: Any) -> Any:
    """``schema`` with every object closed to properties it does not declare, as the API
    server's strict field validation does (``x-kubernetes-preserve-unknown-fields`` stays open)."""
    if not isinstance(schema, dict):
        return schema
    closed = {key: _strict_child(key, value) for key, value in schema.items()}
    open_ended = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not open_ended:
        closed["additionalProperties"] = False
    return closed


def _strict_child(key: str, value: Any) -> Any:
    if key == "properties":
        return {name: strict(sub) for name, sub in value.items()}
    if key in _SUBSCHEMA:
        return strict(value)
    if key in _SUBSCHEMA_LISTS:
        return [strict(sub) for sub in value]
    return value


@cache
def crd_schemas() -> Mapping[tuple[str, str], Any]:
    """(apiVersion, kind) -> the strict schema of every served version of the vendored CRDs."""
    schemas = {}
    for crd in _vendored_crds():
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                api_version = f"{spec['group']}/{version['name']}"
                schemas[api_version, spec["names"]["kind"]] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _vendored_crds() -> Iterator[Manifest]:
    for path in sorted(CRDS.rglob("*.yaml")):
        yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc)


def errors(manifest: Manifest) -> list[str]:
    """What is wrong with one object; empty when it is valid."""
    schema = crd_schemas().get((manifest.get("apiVersion", ""), manifest.get("kind", "")))
    if schema is not None:
        found = jsonschema.Draft7Validator(schema).iter_errors(manifest)
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found]
    try:
        kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return ["no schema for this apiVersion and kind (neither Kubernetes' nor a vendored CRD's)"]
    return []


def report(name: str, manifests: list[Manifest]) -> int:
    """Prints every invalid object of build ``name``; the number of errors."""
    count = 0
    for manifest in manifests:
        for error in errors(manifest):
            print(f"{name}: {manifest.get('kind')}/{manifest['metadata'].get('name')}: {error}")
            count += 1
    print(f"{name}: {len(manifests)} objects, {count} errors")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write each build as <OUT>/<name>.yaml")
    args = parser.parse_args(argv)
    failures = 0
    for name, path in kustomizations().items():
        manifests = build(path)
        failures += report(name, manifests)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{name}.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
