"""Attacks on the service card's token through the real processes: the workers service's VerifyCard
(online) and the orders service's CheckIn (确认入户, verified offline with JZ_CARD_JWKS) are shown
forged, re-signed, re-keyed, unsigned, HMAC-confused, truncated, oversized, garbage and revoked
tokens. Each is answered with its exact verdict (or INVALID_ARGUMENT), never INTERNAL, and CheckIn
checks nothing in: the order stays ASSIGNED until the genuine card is scanned. Tampered claims,
rotation and revocation at VerifyCard alone: test_workers_cards.py."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp

from deploy.local.stack import Endpoints
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.type.v1 import service_type_pb2 as st
from jiazheng.workers.v1 import workers_pb2 as w
from libs.common.beijing import BEIJING
from libs.common.card_token import token_from_scan
from tests.integration.clients import db_value
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.test_orders_lifecycle import orders_call
from tests.integration.workers_client import call, create_company, ready_worker

pytestmark = pytest.mark.integration

DISTRICT = "110114"  # 昌平: served by no other test's workers
TYP = "jz-card+jwt"
MALFORMED, UNKNOWN_KEY, BAD_SIGNATURE = (
    w.TOKEN_VERDICT_MALFORMED,
    w.TOKEN_VERDICT_UNKNOWN_KEY,
    w.TOKEN_VERDICT_BAD_SIGNATURE,
)
# What CheckIn says of a verdict (services/orders/service_layer/visits.py).
CHECK = {MALFORMED: "malformed", UNKNOWN_KEY: "unknown_key", BAD_SIGNATURE: "bad_signature"}
TOO_LONG = "too long"  # refused by the request's validation: VerifyCard's 4096, CheckIn's 1024 characters


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Card:
    """A genuine token and what an attacker reads from it."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    public_key: bytes  # the raw Ed25519 key its kid names in the published JWK Set

    @property
    def parts(self) -> list[str]:
        return self.token.split(".")

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    def with_header(self, **fields: Any) -> str:
        """The token with its header changed (fields of None removed), payload and signature kept."""
        header = {k: v for k, v in {**self.header, **fields}.items() if v is not None}
        return ".".join([segment(header), *self.parts[1:]])


def _flip_signature_byte(card: Card) -> str:
    header, payload, signature = card.parts
    raw = bytearray(unb64(signature))
    raw[10] ^= 0x01
    return f"{header}.{payload}.{b64(bytes(raw))}"


def _other_card_id(card: Card) -> str:
    header, _, signature = card.parts
    return f"{header}.{segment({**card.claims, 'jti': str(uuid.uuid4())})}.{signature}"


def _signed_by_another_key(card: Card, kid: str) -> str:
    headers = {"kid": kid, "typ": TYP}
    return jwt.encode(card.claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=headers)


def _alg_none(card: Card, signature: str | None) -> str:
    header = segment({"alg": "none", "kid": card.kid, "typ": TYP})
    payload = card.parts[1]
    return f"{header}.{payload}" if signature is None else f"{header}.{payload}.{signature}"


def _hs256(card: Card, secret: bytes) -> str:
    return jwt.encode(card.claims, secret, algorithm="HS256", headers={"kid": card.kid, "typ": TYP})


def _padded(card: Card, length: int) -> str:
    return card.token + "A" * (length - len(card.token))


def _nested_header(card: Card) -> str:
    """A header of JSON nested 300 deep (still within 1,024 characters)."""
    return f"{b64(b'[' * 300 + b']' * 300)}.{card.parts[1]}.{card.parts[2]}"


NOT_UTF8 = b64(b'{"alg":"\x80"}')  # a header whose bytes are not UTF-8
# (what the attacker sends, made from the genuine card; VerifyCard's verdict or TOO_LONG)
ATTACKS: dict[str, tuple[Callable[[Card], str], Any]] = {
    "signature-byte-changed": (_flip_signature_byte, BAD_SIGNATURE),
    "claims-changed-signature-kept": (_other_card_id, BAD_SIGNATURE),
    "signed-by-another-key-with-the-right-kid": (lambda c: _signed_by_another_key(c, c.kid), BAD_SIGNATURE),
    "signed-by-another-key-with-an-unknown-kid": (
        lambda c: _signed_by_another_key(c, "dev-card-9"),
        UNKNOWN_KEY,
    ),
    "kid-renamed": (lambda c: c.with_header(kid="dev-card-9"), UNKNOWN_KEY),
    "kid-empty": (lambda c: c.with_header(kid=""), UNKNOWN_KEY),
    "kid-not-a-string": (lambda c: c.with_header(kid=1), MALFORMED),
    "kid-missing": (lambda c: c.with_header(kid=None), MALFORMED),
    "crit-header": (lambda c: c.with_header(crit=["exp"]), MALFORMED),
    "typ-jwt": (lambda c: c.with_header(typ="JWT"), MALFORMED),
    "alg-none-empty-signature": (lambda c: _alg_none(c, ""), MALFORMED),
    "alg-none-no-signature-segment": (lambda c: _alg_none(c, None), MALFORMED),
    "alg-none-genuine-signature": (lambda c: _alg_none(c, c.parts[2]), MALFORMED),
    "alg-hs256-public-key-bytes-as-secret": (lambda c: _hs256(c, c.public_key), MALFORMED),
    "alg-hs256-jwk-x-as-secret": (lambda c: _hs256(c, b64(c.public_key).encode()), MALFORMED),
    "truncated-to-the-header": (lambda c: c.token[: len(c.parts[0])], MALFORMED),
    "truncated-after-the-header-dot": (lambda c: c.token[: len(c.parts[0]) + 1], MALFORMED),
    "truncated-in-the-payload": (lambda c: c.token[: len(c.parts[0]) + 1 + len(c.parts[1]) // 2], MALFORMED),
    "truncated-before-the-signature": (lambda c: c.token[: -len(c.parts[2])], MALFORMED),
    "truncated-by-one-character": (lambda c: c.token[:-1], MALFORMED),  # 85 characters: not base64
    "truncated-by-two-characters": (lambda c: c.token[:-2], BAD_SIGNATURE),  # a 63-byte signature
    "padded-to-2000-characters": (lambda c: _padded(c, 2000), MALFORMED),
    "padded-to-5000-characters": (lambda c: _padded(c, 5000), TOO_LONG),
    "padded-to-100000-characters": (lambda c: _padded(c, 100_000), TOO_LONG),
    "json-nested-300-deep": (_nested_header, MALFORMED),
    "standard-base64-with-padding": (lambda c: c.token.replace("-", "+").replace("_", "/") + "==", MALFORMED),
    "words": (lambda c: "not a token", MALFORMED),
    "punctuation": (lambda c: "!!!.@@@.###", MALFORMED),
    "chinese": (lambda c: "居家.上门.服务证", MALFORMED),
    "control-characters": (lambda c: "\x00\x01\x02.\x7f.\x1b", MALFORMED),
    "header-bytes-not-utf8": (lambda c: f"{NOT_UTF8}.{c.parts[1]}.{c.parts[2]}", MALFORMED),
    "base64-but-not-json": (lambda c: "YWJj.ZGVm.Z2hp", MALFORMED),
    "header-a-json-array": (lambda c: f"{segment([1])}.{c.parts[1]}.{c.parts[2]}", MALFORMED),
    "a-link-without-a-token": (lambda c: "https://verify.example/card?x=1", MALFORMED),
}


@dataclass(frozen=True)
class Visit:
    """An order assigned to a GREEN worker, and the worker's genuine card."""

    order: str
    worker_id: str
    card: Card


def _start(days_ahead: int) -> Timestamp:
    day = datetime.now(BEIJING).date() + timedelta(days=days_ahead)
    stamp = Timestamp()
    stamp.FromDatetime(datetime(day.year, day.month, day.day, 10, tzinfo=BEIJING).astimezone(UTC))
    return stamp


async def _assigned_order(orders: RunningService, platform: str, worker_id: str, days_ahead: int) -> str:
    """A new elderly-care order, offered to ``worker_id`` once matching knows it, and accepted."""
    draft = o.Order(
        service_type=st.SERVICE_TYPE_ELDERLY_CARE,
        district_code=DISTRICT,
        consumer_ref=f"c-{uuid.uuid4().hex[:8]}",
        scheduled_start_time=_start(days_ahead),
        duration_hours=4,
        contact=o.Contact(full_name="赵奶奶", mobile="13800005678"),
        address="北京市昌平区回龙观西大街1号",
    )
    created = await orders_call(
        orders, platform, "CreateOrder", o.CreateOrderRequest(request_id=str(uuid.uuid4()), order=draft)
    )
    name = created.order.name

    async def matched() -> bool:
        reply = await orders_call(
            orders, platform, "MatchOrder", o.MatchOrderRequest(name=name, max_candidates=50)
        )
        return f"workers/{worker_id}" in {c.worker for c in reply.candidates}

    await eventually(matched, within=60)
    offer = await orders_call(
        orders, platform, "OfferOrder", o.OfferOrderRequest(name=name, worker_id=worker_id)
    )
    accepted = await orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=offer.offer.name))
    assert accepted.order.state == o.ORDER_STATE_ASSIGNED
    return str(name)


async def _card(workers: RunningService, key: str, link: str) -> tuple[Card, str]:
    token = token_from_scan(link)
    header, claims = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    keys: w.GetCardKeysResponse = await call(workers, key, "GetCardKeys", w.GetCardKeysRequest())
    public = next(unb64(k.x) for k in keys.keys if k.kid == header["kid"])
    return Card(token, header, claims, public), f"workers/{claims['sub']}/cards/{claims['jti']}"


async def _ready_visit(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    orders_count: int,
) -> tuple[list[str], str, Card, str]:
    operator, platform = harness.key("operator"), harness.key("demo-platform")
    company = await create_company(workers, operator)
    worker_id, link = await ready_worker(endpoints, workers, operator, company.name, DISTRICT)
    card, card_name = await _card(workers, operator, link)
    names = [
        await _assigned_order(orders, platform, worker_id, days_ahead=20 + n) for n in range(orders_count)
    ]
    return names, worker_id, card, card_name


@pytest.fixture(scope="module")
async def visit(
    endpoints: Endpoints, harness: ServiceHarness, orders: RunningService, workers: RunningService
) -> Visit:
    [order], worker_id, card, _ = await _ready_visit(endpoints, harness, orders, workers, 1)
    return Visit(order, worker_id, card)


async def _verdict(workers: RunningService, key: str, token: str) -> Any:
    try:
        reply: w.VerifyCardResponse = await call(workers, key, "VerifyCard", w.VerifyCardRequest(token=token))
    except grpc.aio.AioRpcError as err:
        return TOO_LONG if err.code() == grpc.StatusCode.INVALID_ARGUMENT else err.code()
    return reply


async def _check_in(orders: RunningService, key: str, order: str, token: str) -> tuple[grpc.StatusCode, str]:
    try:
        await orders_call(orders, key, "CheckIn", o.CheckInRequest(name=order, card_token=token))
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


async def _state(orders: RunningService, key: str, order: str) -> o.Order:
    reply: o.GetOrderResponse = await orders_call(orders, key, "GetOrder", o.GetOrderRequest(name=order))
    return reply.order


@pytest.mark.parametrize("attack", ATTACKS)
async def test_a_forged_token_is_refused_by_verify_card_and_check_in(
    harness: ServiceHarness, orders: RunningService, workers: RunningService, visit: Visit, attack: str
) -> None:
    make, want = ATTACKS[attack]
    token = make(visit.card)
    platform = harness.key("demo-platform")

    verified = await _verdict(workers, platform, token)
    checked = await _check_in(orders, platform, visit.order, token)

    if want == TOO_LONG:
        assert verified == TOO_LONG
    else:
        assert (verified.verdict, verified.colour) == (want, w.CARD_COLOUR_RED)
        assert not verified.HasField("worker")
    too_long_for_check_in = len(token) > 1024
    if too_long_for_check_in:
        assert checked[0] == grpc.StatusCode.INVALID_ARGUMENT
        assert checked[1].startswith("card_token: ")
    else:
        assert checked == (grpc.StatusCode.FAILED_PRECONDITION, f"the card is not valid: {CHECK[want]}")
    order = await _state(orders, platform, visit.order)
    assert (order.state, order.HasField("check_in_time")) == (o.ORDER_STATE_ASSIGNED, False)


async def test_an_empty_token_is_invalid_argument_at_both(
    harness: ServiceHarness, orders: RunningService, workers: RunningService, visit: Visit
) -> None:
    platform = harness.key("demo-platform")
    assert await _verdict(workers, platform, "") == TOO_LONG  # INVALID_ARGUMENT: min_len 1
    assert (await _check_in(orders, platform, visit.order, ""))[0] == grpc.StatusCode.INVALID_ARGUMENT


def _signed_with_the_real_key(workers_keys: dict[str, str], card: Card, **claims: Any) -> str:
    """A token as only the workers service (or a thief of its key) can sign."""
    kid = workers_keys["card_active_key"]
    seed = base64.b64decode(json.loads(workers_keys["card_signing_keys"])[kid])
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return jwt.encode({**card.claims, **claims}, key, algorithm="EdDSA", headers={"kid": kid, "typ": TYP})


NOW = int(datetime.now(UTC).timestamp())
ON_RECORD = "the card was revoked or replaced by a newer card"
# Well signed, but not of the card on record, or not now: (the claims changed, VerifyCard's verdict,
# CheckIn's refusal).
WELL_SIGNED: dict[str, tuple[dict[str, Any], Any, str]] = {
    "card-not-on-record": ({"jti": str(uuid.uuid4())}, w.TOKEN_VERDICT_REVOKED, ON_RECORD),
    "card-id-not-a-uuid": ({"jti": "card-1"}, MALFORMED, ON_RECORD),
    "another-worker": (
        {"sub": str(uuid.uuid4())},
        w.TOKEN_VERDICT_REVOKED,
        "the card scanned is not the card of the worker assigned to this order",
    ),
    "expired": ({"exp": NOW - 60}, w.TOKEN_VERDICT_EXPIRED, "the card is not valid: expired"),
    "issued-in-an-hour": (
        {"iat": NOW + 3600},
        w.TOKEN_VERDICT_NOT_YET_VALID,
        "the card is not valid: not_yet_valid",
    ),
    "claims-version-2": ({"ver": 2}, MALFORMED, "the card is not valid: malformed"),
    "exp-beyond-any-date": ({"exp": 10**30}, MALFORMED, "the card is not valid: malformed"),
}


@pytest.mark.parametrize("case", WELL_SIGNED)
async def test_a_well_signed_token_not_of_the_card_on_record_is_refused(
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    workers_keys: dict[str, str],
    visit: Visit,
    case: str,
) -> None:
    claims, verdict, refusal = WELL_SIGNED[case]
    token = _signed_with_the_real_key(workers_keys, visit.card, **claims)
    platform = harness.key("demo-platform")

    assert (await _verdict(workers, platform, token)).verdict == verdict
    assert await _check_in(orders, platform, visit.order, token) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        refusal,
    )
    assert (await _state(orders, platform, visit.order)).state == o.ORDER_STATE_ASSIGNED


async def test_after_every_attack_the_genuine_card_checks_in_once(
    harness: ServiceHarness, orders: RunningService, workers: RunningService, visit: Visit
) -> None:
    platform = harness.key("demo-platform")
    other = await _check_in(orders, harness.key("other-platform"), visit.order, visit.card.token)
    assert other[0] == grpc.StatusCode.NOT_FOUND  # another platform's order, even with the genuine card

    assert await _check_in(orders, platform, visit.order, visit.card.token) == (grpc.StatusCode.OK, "")
    order = await _state(orders, platform, visit.order)
    assert (order.state, order.assigned_worker_id) == (o.ORDER_STATE_CHECKED_IN, visit.worker_id)
    again = await _check_in(orders, platform, visit.order, visit.card.token)
    assert again[0] == grpc.StatusCode.FAILED_PRECONDITION  # replayed on the order checked in


async def _card_on_file(endpoints: Endpoints, worker_id: str) -> tuple[str, bool] | None:
    row = await db_value(
        endpoints.dsn("jz_orders"),
        "SELECT to_json(ARRAY[card_id, card_revoked::text]) FROM worker_eligibility WHERE worker_id = $1",
        worker_id,
    )
    if row is None:
        return None
    card_id, revoked = json.loads(row)
    return card_id, revoked == "true"


async def test_a_replaced_or_revoked_card_replayed_is_refused_at_check_in(
    endpoints: Endpoints, harness: ServiceHarness, orders: RunningService, workers: RunningService
) -> None:
    """A reissue makes the old token stale; a revocation the new one; orders learns both from
    workers' events and refuses them although their signatures are good offline."""
    operator, platform = harness.key("operator"), harness.key("demo-platform")
    [first, second], worker_id, old, old_name = await _ready_visit(endpoints, harness, orders, workers, 2)

    reissued: w.ReissueCardResponse = await call(
        workers, operator, "ReissueCard", w.ReissueCardRequest(name=old_name)
    )
    new, new_name = await _card(workers, operator, reissued.card.verification_url)
    new_id = new_name.rsplit("/", 1)[1]

    async def replaced() -> bool:
        return await _card_on_file(endpoints, worker_id) == (new_id, False)

    await eventually(replaced, within=60)
    stale = await _verdict(workers, platform, old.token)
    assert (stale.verdict, list(stale.reasons)) == (w.TOKEN_VERDICT_REVOKED, ["card_revoked"])
    refused = (grpc.StatusCode.FAILED_PRECONDITION, "the card was revoked or replaced by a newer card")
    assert await _check_in(orders, platform, first, old.token) == refused
    assert (await _state(orders, platform, first)).state == o.ORDER_STATE_ASSIGNED
    assert await _check_in(orders, platform, first, new.token) == (grpc.StatusCode.OK, "")

    await call(workers, operator, "RevokeCard", w.RevokeCardRequest(name=new_name))

    async def revoked() -> bool:
        return await _card_on_file(endpoints, worker_id) == (new_id, True)

    await eventually(revoked, within=60)
    assert (await _verdict(workers, platform, new.token)).verdict == w.TOKEN_VERDICT_REVOKED
    assert await _check_in(orders, platform, second, new.token) == refused
    assert await _check_in(orders, platform, second, old.token) == refused
    assert (await _state(orders, platform, second)).state == o.ORDER_STATE_ASSIGNED
