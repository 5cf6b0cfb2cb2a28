"""The service card token: signing, every verification outcome, rotation, JWKS and settings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from libs.common.card_token import (
    IAT_SKEW,
    MAX_TOKEN_CHARS,
    TOKEN_TYPE,
    CardCheck,
    CardClaims,
    SigningKeyring,
    b64url_decode,
    b64url_encode,
    keys_from_jwks,
    verify,
)
from services.workers.settings import WorkersSettings

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CLAIMS = CardClaims(
    card_id="0b5e6a3c-1f7d-4c1e-9a51-6d2f3e4a5b6c",
    worker_ref="w_7f3c9a1e5b2d4c6e8f0a1b2c3d4e5f60",
    issued_at=NOW,
    expires_at=NOW + timedelta(days=365),
)


def _seed(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def ring(key: Ed25519PrivateKey) -> SigningKeyring:
    return SigningKeyring({"card-2024-06": key}, "card-2024-06")


def _jws(header: dict[str, Any], payload: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """A token signed outside the keyring, to hand the verifier what we would never issue."""
    signing_input = (
        f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(json.dumps(payload).encode())}"
    )
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"


def _decoded(segment: str) -> Any:
    return json.loads(b64url_decode(segment))


def test_a_signed_card_verifies_with_its_claims(ring: SigningKeyring) -> None:
    result = ring.verify(ring.sign(CLAIMS), NOW)

    assert result.check is CardCheck.VALID
    assert result.valid
    assert result.claims == CLAIMS


def test_the_header_names_eddsa_the_key_and_the_card_type(ring: SigningKeyring) -> None:
    header = _decoded(ring.sign(CLAIMS).split(".")[0])

    assert header == {"alg": "EdDSA", "kid": "card-2024-06", "typ": TOKEN_TYPE}


def test_the_token_is_unpadded_base64url(ring: SigningKeyring) -> None:
    token = ring.sign(CLAIMS)

    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_the_token_carries_no_personal_data(ring: SigningKeyring) -> None:
    payload = _decoded(ring.sign(CLAIMS).split(".")[1])

    assert payload == {
        "jti": CLAIMS.card_id,
        "sub": CLAIMS.worker_ref,
        "iat": int(NOW.timestamp()),
        "exp": int(CLAIMS.expires_at.timestamp()),
        "ver": 1,
    }


def test_a_changed_payload_byte_is_a_bad_signature(ring: SigningKeyring) -> None:
    header, payload, signature = ring.sign(CLAIMS).split(".")
    forged = b64url_decode(payload).replace(b"w_7f3c", b"w_7f3d")

    result = ring.verify(f"{header}.{b64url_encode(forged)}.{signature}", NOW)

    assert result.check is CardCheck.BAD_SIGNATURE
    assert result.claims is None


def test_a_changed_signature_byte_is_a_bad_signature(ring: SigningKeyring) -> None:
    header, payload, signature = ring.sign(CLAIMS).split(".")
    raw = bytearray(b64url_decode(signature))
    raw[10] ^= 0x01

    result = ring.verify(f"{header}.{payload}.{b64url_encode(bytes(raw))}", NOW)

    assert result.check is CardCheck.BAD_SIGNATURE


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "kid": "card-2024-06", "typ": TOKEN_TYPE},
        {"alg": "HS256", "kid": "card-2024-06", "typ": TOKEN_TYPE},
        {"alg": "EdDSA", "kid": "card-2024-06", "typ": "JWT"},
        {"alg": "EdDSA", "typ": TOKEN_TYPE},
        {"alg": "EdDSA", "kid": "card-2024-06", "typ": TOKEN_TYPE, "crit": ["exp"]},
    ],
    ids=["alg-none", "alg-hs256", "other-type", "no-kid", "crit"],
)
def test_a_header_we_never_issue_is_malformed(
    ring: SigningKeyring, key: Ed25519PrivateKey, header: dict[str, Any]
) -> None:
    # Signed with the real key: only the header is wrong.
    assert ring.verify(_jws(header, CLAIMS.to_jwt(), key), NOW).check is CardCheck.MALFORMED


def test_an_unsigned_alg_none_token_is_malformed(ring: SigningKeyring) -> None:
    header = b64url_encode(json.dumps({"alg": "none", "kid": "card-2024-06", "typ": TOKEN_TYPE}).encode())
    payload = b64url_encode(json.dumps(CLAIMS.to_jwt()).encode())

    assert ring.verify(f"{header}.{payload}.", NOW).check is CardCheck.MALFORMED


@pytest.mark.parametrize(
    "payload",
    [
        {"sub": "w_1", "iat": 1717243200, "exp": 1748779200, "ver": 1},
        {"jti": "c", "sub": "w_1", "iat": "1717243200", "exp": 1748779200, "ver": 1},
        {"jti": "c", "sub": "w_1", "iat": 1717243200, "exp": True, "ver": 1},
        {"jti": "c", "sub": "w_1", "iat": 1717243200, "exp": 10**30, "ver": 1},
        {"jti": "c", "sub": "w_1", "iat": 1717243200, "exp": 1748779200, "ver": 2},
    ],
    ids=["no-jti", "string-iat", "bool-exp", "exp-out-of-range", "unknown-version"],
)
def test_well_signed_but_unreadable_claims_are_malformed(
    ring: SigningKeyring, key: Ed25519PrivateKey, payload: dict[str, Any]
) -> None:
    header = {"alg": "EdDSA", "kid": "card-2024-06", "typ": TOKEN_TYPE}

    assert ring.verify(_jws(header, payload, key), NOW).check is CardCheck.MALFORMED


def test_a_key_id_not_in_the_ring_is_unknown(ring: SigningKeyring) -> None:
    stranger = SigningKeyring({"card-2024-06-x": Ed25519PrivateKey.generate()}, "card-2024-06-x")

    assert ring.verify(stranger.sign(CLAIMS), NOW).check is CardCheck.UNKNOWN_KEY


def test_a_same_named_key_of_someone_else_is_a_bad_signature(ring: SigningKeyring) -> None:
    impostor = SigningKeyring({"card-2024-06": Ed25519PrivateKey.generate()}, "card-2024-06")

    assert ring.verify(impostor.sign(CLAIMS), NOW).check is CardCheck.BAD_SIGNATURE


def test_a_card_expires_at_exp_and_still_names_the_card(ring: SigningKeyring) -> None:
    token = ring.sign(CLAIMS)

    assert ring.verify(token, CLAIMS.expires_at - timedelta(seconds=1)).check is CardCheck.VALID
    expired = ring.verify(token, CLAIMS.expires_at)
    assert expired.check is CardCheck.EXPIRED
    assert expired.claims == CLAIMS


@pytest.mark.parametrize(
    ("issued_ahead", "check"),
    [(IAT_SKEW, CardCheck.VALID), (IAT_SKEW + timedelta(seconds=1), CardCheck.NOT_YET_VALID)],
)
def test_a_card_issued_in_the_future_is_valid_only_within_the_clock_skew(
    ring: SigningKeyring, issued_ahead: timedelta, check: CardCheck
) -> None:
    claims = CardClaims("c-1", "w_1", NOW + issued_ahead, NOW + timedelta(days=1))

    assert ring.verify(ring.sign(claims), NOW).check is check


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "abc.def",
        "abc.def.ghi.jkl",
        "..",
        "eyJhbGciOiJFZERTQSJ9.e30.a+b/",
        "eyJhbGciOiJFZERTQSJ9=.e30.AAAA",
        "A.e30.AAAA",
        "bm90IGpzb24.e30.AAAA",
        "WzFd.e30.AAAA",
        "_w.e30.AAAA",
        "ä.é.ü",
    ],
    ids=[
        "empty",
        "words",
        "two-segments",
        "four-segments",
        "empty-segments",
        "standard-base64",
        "padding",
        "impossible-length",
        "header-not-json",
        "header-not-object",
        "header-not-utf8",
        "non-ascii",
    ],
)
def test_garbage_is_malformed(ring: SigningKeyring, token: str) -> None:
    assert ring.verify(token, NOW).check is CardCheck.MALFORMED


def _bump_last_char(segment: str) -> str:
    """The same bytes spelt differently: a signature's last character carries 4 unused bits."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) ^ 0b0001]


@pytest.mark.parametrize(
    "respell",
    [_bump_last_char, lambda signature: signature + "==", lambda signature: signature + "\n"],
    ids=["non-canonical-bits", "padding", "trailing-newline"],
)
def test_another_spelling_of_a_good_signature_is_malformed(ring: SigningKeyring, respell: Any) -> None:
    header, payload, signature = ring.sign(CLAIMS).split(".")
    respelt = respell(signature)

    assert b64url_decode(respelt.strip("=\n")) == b64url_decode(signature)
    assert ring.verify(f"{header}.{payload}.{respelt}", NOW).check is CardCheck.MALFORMED


def test_a_huge_input_is_refused_by_its_length(ring: SigningKeyring) -> None:
    token = ring.sign(CLAIMS)
    padded = token[:-1] + "A" * (MAX_TOKEN_CHARS - len(token) + 2)

    assert ring.verify("A." * 5_000_000, NOW).check is CardCheck.MALFORMED
    assert ring.verify(padded, NOW).check is CardCheck.MALFORMED


def test_rotation_keeps_old_cards_valid_until_the_old_key_is_withdrawn() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    old_card = SigningKeyring({"k1": old}, "k1").sign(CLAIMS)
    rotated = SigningKeyring({"k1": old, "k2": new}, "k2")
    withdrawn = SigningKeyring({"k2": new}, "k2")

    assert _decoded(rotated.sign(CLAIMS).split(".")[0])["kid"] == "k2"
    assert rotated.verify(old_card, NOW).check is CardCheck.VALID
    assert verify(old_card, rotated.jwks(), NOW).check is CardCheck.VALID
    assert withdrawn.verify(old_card, NOW).check is CardCheck.UNKNOWN_KEY
    assert verify(old_card, withdrawn.jwks(), NOW).check is CardCheck.UNKNOWN_KEY


def test_the_jwks_publishes_every_public_key_and_no_private_part(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    jwks = SigningKeyring({"k1": key, "k2": other}, "k2").jwks()

    assert [jwk["kid"] for jwk in jwks["keys"]] == ["k1", "k2"]
    for jwk in jwks["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
        assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
        assert len(b64url_decode(jwk["x"])) == 32
    assert _seed(key) not in json.dumps(jwks)


def test_a_platform_verifies_offline_with_only_the_published_json(ring: SigningKeyring) -> None:
    published = json.loads(json.dumps(ring.jwks()))

    result = verify(ring.sign(CLAIMS), published, NOW)

    assert result.check is CardCheck.VALID
    assert result.claims == CLAIMS


def test_keys_of_other_kinds_in_a_jwks_are_skipped(ring: SigningKeyring) -> None:
    jwks = {"keys": [{"kty": "RSA", "kid": "rsa-1", "n": "AQAB", "e": "AQAB"}, *ring.jwks()["keys"]]}

    assert set(keys_from_jwks(jwks)) == {"card-2024-06"}


def test_pyjwt_accepts_our_token_with_only_the_published_key(ring: SigningKeyring) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    claims = CardClaims("c-1", "w_1", now, now + timedelta(days=1))
    jwk = json.loads(json.dumps(ring.jwks()))["keys"][0]

    decoded = jwt.decode(ring.sign(claims), key=jwt.PyJWK(jwk), algorithms=["EdDSA"])

    assert decoded == claims.to_jwt()
    assert jwt.get_unverified_header(ring.sign(claims))["typ"] == TOKEN_TYPE


def test_pyjwt_rejects_a_tampered_token(ring: SigningKeyring) -> None:
    now = datetime.now(UTC)
    header, _, signature = ring.sign(CardClaims("c-1", "w_1", now, now + timedelta(days=1))).split(".")
    forged = b64url_encode(
        json.dumps(CardClaims("c-1", "w_2", now, now + timedelta(days=1)).to_jwt()).encode()
    )

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            f"{header}.{forged}.{signature}", key=jwt.PyJWK(ring.jwks()["keys"][0]), algorithms=["EdDSA"]
        )


def test_the_active_key_must_be_in_theSigningKeyring(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="'k9'"):
        SigningKeyring({"k1": key}, "k9")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ('["k1"]', "JSON object"),
        ('{"k1": 7}', "JSON object"),
        ('{"k1": "not base64!"}', "'k1' is not base64"),
        ('{"k1": "' + base64.b64encode(b"x" * 31).decode() + '"}', "31 bytes"),
    ],
)
def test_bad_key_entries_are_refused_without_echoing_them(entries: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        SigningKeyring.from_json(entries, "k1")

    assert "eHh4" not in str(raised.value)


def test_settings_build_the_keyring_from_environment_json(
    monkeypatch: pytest.MonkeyPatch, key: Ed25519PrivateKey
) -> None:
    monkeypatch.setenv("JZ_CARD_SIGNING_KEYS", json.dumps({"env-1": _seed(key)}))
    monkeypatch.setenv("JZ_CARD_ACTIVE_KEY", "env-1")
    keyring = WorkersSettings().card_keyring()

    token = keyring.sign(CLAIMS)

    assert _decoded(token.split(".")[0])["kid"] == "env-1"
    assert SigningKeyring({"env-1": key}, "env-1").verify(token, NOW).check is CardCheck.VALID


def test_a_keys_file_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    keys_file = tmp_path / "card-keys.json"
    keys_file.write_text(json.dumps({"file-1": _seed(key)}))
    monkeypatch.setenv("JZ_CARD_SIGNING_KEYS", json.dumps({"env-1": _seed(Ed25519PrivateKey.generate())}))
    monkeypatch.setenv("JZ_CARD_KEYS_FILE", str(keys_file))
    monkeypatch.setenv("JZ_CARD_ACTIVE_KEY", "file-1")

    keyring = WorkersSettings().card_keyring()

    assert [jwk["kid"] for jwk in keyring.jwks()["keys"]] == ["file-1"]
    assert SigningKeyring({"file-1": key}, "file-1").verify(keyring.sign(CLAIMS), NOW).valid


def test_seeds_show_in_no_repr(monkeypatch: pytest.MonkeyPatch, key: Ed25519PrivateKey) -> None:
    monkeypatch.setenv("JZ_CARD_SIGNING_KEYS", json.dumps({"env-1": _seed(key)}))
    monkeypatch.setenv("JZ_CARD_ACTIVE_KEY", "env-1")
    settings = WorkersSettings()

    shown = [repr(settings), str(settings), repr(settings.card_keyring())]

    assert settings.card_signing_keys.get_secret_value() != "{}"
    assert all(_seed(key) not in text for text in shown)
    assert "env-1" in shown[2]
