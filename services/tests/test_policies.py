"""Every servicer's authorisation policy names exactly its service's methods: a new RPC without
a policy entry (open to no one) or a policy entry for a method that does not exist fails here."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import ModuleType

import pytest
from google.protobuf.descriptor import ServiceDescriptor

import services
from libs.common.auth import Role


def _api_modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(services.__path__) if m.ispkg and m.name != "tests"]
    found = []
    for name in names:
        try:
            found.append(importlib.import_module(f"services.{name}.api"))
        except ModuleNotFoundError as exc:
            if exc.name != f"services.{name}.api":
                raise
    return found


API_MODULES = _api_modules()


def test_the_services_with_an_api_are_found() -> None:
    assert {m.__name__ for m in API_MODULES} >= {
        "services.orders.api",
        "services.credit.api",
        "services.workers.api",
    }


def _descriptors(api: ModuleType) -> list[ServiceDescriptor]:
    """The services an api module serves: its SERVICES, or the one named by SERVICE_NAME."""
    if hasattr(api, "SERVICES"):
        return list(api.SERVICES)
    return [
        s
        for module in vars(api).values()
        if isinstance(module, ModuleType) and hasattr(module, "DESCRIPTOR")
        for s in module.DESCRIPTOR.services_by_name.values()
        if s.full_name == api.SERVICE_NAME
    ][:1]


@pytest.mark.parametrize("api", API_MODULES, ids=lambda m: m.__name__)
def test_policy_keys_are_the_descriptors_methods(api: ModuleType) -> None:
    policy: Mapping[str, frozenset[Role]] = api.POLICY
    descriptors = _descriptors(api)

    assert descriptors
    assert set(policy) == {f"/{s.full_name}/{m.name}" for s in descriptors for m in s.methods}
    assert all(policy.values()), "a method with an empty role set is better left out of the service"
