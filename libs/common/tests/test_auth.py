"""API-key authentication and deny-by-default authorisation."""

from __future__ import annotations

import json

import pytest

from libs.common.auth import ApiKeyStore, Principal, Role, authorization_of, authorize, hash_key
from libs.common.errors import PermissionDenied, Unauthenticated

PLATFORM_KEY = "pk-live-0123456789"
OPERATOR_KEY = "op-key-abcdef"


def _store() -> ApiKeyStore:
    return ApiKeyStore.from_json(
        json.dumps(
            [
                {
                    "key_sha256": hash_key(PLATFORM_KEY),
                    "principal": "meituan",
                    "role": "platform",
                    "tenant": "p-1",
                },
                {"key_sha256": hash_key(OPERATOR_KEY), "principal": "ops-alice", "role": "operator"},
            ]
        )
    )


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_good_key_authenticates_to_its_principal() -> None:
    assert _store().authenticate(f"Bearer {PLATFORM_KEY}") == Principal(
        id="meituan", role=Role.PLATFORM, tenant="p-1"
    )


def test_tenant_defaults_to_empty() -> None:
    principal = _store().authenticate(f"Bearer {OPERATOR_KEY}")

    assert principal == Principal(id="ops-alice", role=Role.OPERATOR, tenant="")


def test_scheme_is_case_insensitive_and_token_whitespace_ignored() -> None:
    store = _store()

    assert store.authenticate(f"bearer {PLATFORM_KEY}").id == "meituan"
    assert store.authenticate(f"BEARER  {PLATFORM_KEY} ").id == "meituan"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        PLATFORM_KEY,
        f"Basic {PLATFORM_KEY}",
        f"Token {PLATFORM_KEY}",
    ],
)
def test_missing_or_wrong_scheme_is_unauthenticated(authorization: str | None) -> None:
    with pytest.raises(Unauthenticated, match="Bearer"):
        _store().authenticate(authorization)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-configured-key",
        f"Bearer {hash_key(PLATFORM_KEY)}",  # the configured hash is not itself a key
        f"Bearer {PLATFORM_KEY}x",
    ],
)
def test_unknown_key_is_unauthenticated(authorization: str) -> None:
    with pytest.raises(Unauthenticated, match="unknown API key"):
        _store().authenticate(authorization)


def test_empty_config_knows_no_keys() -> None:
    for raw in ("", "[]"):
        with pytest.raises(Unauthenticated):
            ApiKeyStore.from_json(raw).authenticate(f"Bearer {PLATFORM_KEY}")


def test_unknown_role_in_config_is_rejected() -> None:
    raw = json.dumps([{"key_sha256": hash_key("k"), "principal": "x", "role": "superuser"}])

    with pytest.raises(ValueError, match="superuser"):
        ApiKeyStore.from_json(raw)


POLICY = {
    "/pkg.Svc/Create": frozenset({Role.PLATFORM}),
    "/pkg.Svc/List": frozenset({Role.OPERATOR, Role.SERVICE}),
}


def test_allowed_role_passes() -> None:
    authorize(POLICY, "/pkg.Svc/Create", Principal("meituan", Role.PLATFORM, "p-1"))
    authorize(POLICY, "/pkg.Svc/List", Principal("svc", Role.SERVICE, ""))
    authorize(POLICY, "/pkg.Svc/List", Principal("alice", Role.OPERATOR, ""))


@pytest.mark.parametrize(
    ("method", "role"), [("/pkg.Svc/Create", Role.OPERATOR), ("/pkg.Svc/List", Role.PLATFORM)]
)
def test_role_not_in_policy_is_denied(method: str, role: Role) -> None:
    with pytest.raises(PermissionDenied, match=method):
        authorize(POLICY, method, Principal("x", role, ""))


@pytest.mark.parametrize("role", list(Role))
def test_method_absent_from_policy_is_denied_to_every_role(role: Role) -> None:
    with pytest.raises(PermissionDenied):
        authorize(POLICY, "/pkg.Svc/Delete", Principal("x", role, ""))


def test_empty_policy_denies_everything() -> None:
    with pytest.raises(PermissionDenied):
        authorize({}, "/pkg.Svc/Create", Principal("meituan", Role.PLATFORM, "p-1"))


def test_one_authorization_header_is_taken() -> None:
    assert authorization_of([("x-other", "1"), ("authorization", "Bearer k")]) == "Bearer k"
    assert authorization_of([("x-other", "1")]) is None


def test_two_authorization_headers_are_refused_even_if_equal() -> None:
    with pytest.raises(Unauthenticated, match="more than one"):
        authorization_of([("authorization", "Bearer k"), ("authorization", "Bearer k")])


def test_binary_authorization_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        authorization_of([("authorization", b"Bearer k")])
