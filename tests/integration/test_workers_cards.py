"""The service card through gRPC on the real stack: issue, reissue (concurrently), revoke, verify,
the published keys (verified offline with PyJWT), QR images, and a key rotation across restarts."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Awaitable
from datetime import date
from urllib.parse import urlencode

import grpc
import jwt
import pytest

from deploy.local.services import DEMO_COMPANY_ID, OTHER_COMPANY_ID, new_dev_pii_keys, stopped_after
from jiazheng.workers.v1 import workers_pb2 as pb
from services.workers import card_qr
from tests.integration.harness import RunningService, ServiceHarness
from tests.integration.workers_client import call, create_company, create_worker, ensure_company

DEMO_COMPANY = f"companies/{DEMO_COMPANY_ID}"


@pytest.fixture(scope="module")
async def demo_company(harness: ServiceHarness, workers: RunningService) -> str:
    await ensure_company(workers, harness.key("operator"), DEMO_COMPANY_ID)
    await ensure_company(workers, harness.key("operator"), OTHER_COMPANY_ID)
    return DEMO_COMPANY


async def _issue(svc: RunningService, key: str, worker: str) -> pb.Card:
    reply: pb.IssueCardResponse = await call(svc, key, "IssueCard", pb.IssueCardRequest(worker=worker))
    return reply.card


async def _verify(svc: RunningService, key: str, token: str) -> pb.VerifyCardResponse:
    reply: pb.VerifyCardResponse = await call(svc, key, "VerifyCard", pb.VerifyCardRequest(token=token))
    return reply


async def _status(call_result: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call_result
    return err.value.code()


async def test_an_issued_card_verifies_for_any_role_with_its_colour_and_the_masked_view(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    worker = await create_worker(workers, harness.key("demo-company"), demo_company)
    card = await _issue(workers, harness.key("demo-company"), worker.name)

    assert card.name.startswith(f"{worker.name}/cards/")
    assert card.verification_url.endswith(f"?{urlencode({'t': card.token})}")
    for role in ("demo-platform", "regulator", "operator"):
        verified = await _verify(workers, harness.key(role), card.token)
        assert verified.verdict == pb.TOKEN_VERDICT_VALID
        assert verified.colour == pb.CARD_COLOUR_YELLOW
        assert "background_check_pending" in verified.reasons
        assert (verified.worker.masked_full_name, verified.worker.photo_ref) == ("王*", "photos/wang.jpg")
        assert verified.worker.company_display_name == "北京好家政有限公司"
        assert list(verified.worker.trades) == [pb.TRADE_HOUSEKEEPER]


async def test_one_person_one_card_and_only_the_workers_company_issues_it(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    worker = await create_worker(workers, harness.key("demo-company"), demo_company)
    request = pb.IssueCardRequest(worker=worker.name)

    assert await _status(call(workers, harness.key("other-company"), "IssueCard", request)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    await _issue(workers, harness.key("demo-company"), worker.name)
    assert await _status(call(workers, harness.key("operator"), "IssueCard", request)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


async def test_of_concurrent_reissues_exactly_one_wins_and_the_old_token_is_revoked(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    key = harness.key("demo-company")
    worker = await create_worker(workers, key, demo_company)
    old = await _issue(workers, key, worker.name)

    request = pb.ReissueCardRequest(name=old.name)
    results = await asyncio.gather(
        *(call(workers, key, "ReissueCard", request) for _ in range(5)), return_exceptions=True
    )

    won = [r for r in results if isinstance(r, pb.ReissueCardResponse)]
    lost = [r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1
    assert lost == [grpc.StatusCode.ABORTED] * 4
    stale = await _verify(workers, harness.key("demo-platform"), old.token)
    assert (stale.verdict, stale.colour, list(stale.reasons)) == (
        pb.TOKEN_VERDICT_REVOKED,
        pb.CARD_COLOUR_RED,
        ["card_revoked"],
    )
    fresh = await _verify(workers, harness.key("demo-platform"), won[0].card.token)
    assert (fresh.verdict, fresh.colour) == (pb.TOKEN_VERDICT_VALID, pb.CARD_COLOUR_YELLOW)


async def test_a_tampered_token_is_a_bad_signature_and_red_without_a_view(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    worker = await create_worker(workers, harness.key("demo-company"), demo_company)
    card = await _issue(workers, harness.key("demo-company"), worker.name)
    header, payload, signature = card.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 86400 * 365  # a longer life, the signature left as it was
    forged = (
        base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
    )

    verified = await _verify(workers, harness.key("demo-platform"), f"{header}.{forged}.{signature}")

    assert (verified.verdict, verified.colour) == (pb.TOKEN_VERDICT_BAD_SIGNATURE, pb.CARD_COLOUR_RED)
    assert not verified.HasField("worker")


async def test_a_red_workers_card_verifies_valid_with_colour_red_and_its_reason(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    worker = await create_worker(workers, harness.key("demo-company"), demo_company)
    flagged = pb.RecordBackgroundCheckRequest(
        worker=worker.name,
        identity_genuine=True,
        listed_crime_within_5_years=True,
        check_date=date.today().isoformat(),
    )
    await call(workers, harness.key("operator"), "RecordBackgroundCheck", flagged)
    card = await _issue(workers, harness.key("demo-company"), worker.name)

    verified = await _verify(workers, harness.key("demo-platform"), card.token)

    assert (verified.verdict, verified.colour) == (pb.TOKEN_VERDICT_VALID, pb.CARD_COLOUR_RED)
    assert verified.reasons[0] == "background_check_failed"


async def test_a_revoked_card_is_revoked_and_its_worker_red(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    key = harness.key("demo-company")
    worker = await create_worker(workers, key, demo_company)
    card = await _issue(workers, key, worker.name)

    await call(workers, key, "RevokeCard", pb.RevokeCardRequest(name=card.name))

    assert (await _verify(workers, key, card.token)).verdict == pb.TOKEN_VERDICT_REVOKED
    now: pb.GetWorkerResponse = await call(workers, key, "GetWorker", pb.GetWorkerRequest(name=worker.name))
    assert now.worker.card_colour == pb.CARD_COLOUR_RED
    qr = pb.GetCardQrCodeRequest(name=card.name, format=pb.QR_FORMAT_PNG)
    assert await _status(call(workers, key, "GetCardQrCode", qr)) == grpc.StatusCode.FAILED_PRECONDITION


async def test_the_qr_code_of_a_card_is_its_verification_url_as_png_or_svg(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    key = harness.key("demo-company")
    worker = await create_worker(workers, key, demo_company)
    card = await _issue(workers, key, worker.name)

    svg: pb.GetCardQrCodeResponse = await call(
        workers, key, "GetCardQrCode", pb.GetCardQrCodeRequest(name=card.name, format=pb.QR_FORMAT_SVG)
    )
    png: pb.GetCardQrCodeResponse = await call(
        workers, key, "GetCardQrCode", pb.GetCardQrCodeRequest(name=card.name, format=pb.QR_FORMAT_PNG)
    )

    assert svg.content_type == "image/svg+xml"
    assert svg.image.decode() == card_qr.card_svg(card.verification_url)
    assert (png.content_type, png.image) == ("image/png", card_qr.card_png(card.verification_url))


async def test_a_platform_verifies_a_card_offline_with_only_the_published_keys(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    worker = await create_worker(workers, harness.key("demo-company"), demo_company)
    card = await _issue(workers, harness.key("demo-company"), worker.name)

    keys: pb.GetCardKeysResponse = await call(
        workers, harness.key("demo-platform"), "GetCardKeys", pb.GetCardKeysRequest()
    )

    jwks = jwt.PyJWKSet.from_json(keys.jwks_json)
    kid = jwt.get_unverified_header(card.token)["kid"]
    claims = jwt.decode(card.token, key=jwks[kid], algorithms=["EdDSA"])
    assert (claims["jti"], claims["sub"]) == (card.name.split("/")[-1], worker.name.split("/")[-1])
    assert [(k.kid, k.kty, k.crv) for k in keys.keys] == [(kid, "OKP", "Ed25519")]


def _card_keys(active: str, **seeds: str) -> dict[str, str]:
    return {"card_signing_keys": json.dumps(seeds), "card_active_key": active}


async def _workers_with(harness: ServiceHarness, database: str, env: dict[str, str]) -> RunningService:
    return await harness.start("workers", database, 0, False, **env)


async def test_a_card_signed_before_a_key_rotation_verifies_until_its_key_is_removed(
    harness: ServiceHarness, scratch_database: str
) -> None:
    pii = {k.removeprefix("JZ_").lower(): v for k, v in new_dev_pii_keys().items()}
    k1, k2 = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(2))
    operator, company, platform = (harness.key(p) for p in ("operator", "demo-company", "demo-platform"))

    async with stopped_after(
        await _workers_with(harness, scratch_database, {**pii, **_card_keys("k1", k1=k1)})
    ) as svc:
        await create_company(svc, operator, DEMO_COMPANY_ID)
        old = await _issue(svc, company, (await create_worker(svc, company, DEMO_COMPANY)).name)
    assert jwt.get_unverified_header(old.token)["kid"] == "k1"

    rotated = {**pii, **_card_keys("k2", k1=k1, k2=k2)}
    async with stopped_after(await _workers_with(harness, scratch_database, rotated)) as svc:
        assert (await _verify(svc, platform, old.token)).verdict == pb.TOKEN_VERDICT_VALID
        new = await _issue(svc, company, (await create_worker(svc, company, DEMO_COMPANY)).name)
    assert jwt.get_unverified_header(new.token)["kid"] == "k2"

    async with stopped_after(
        await _workers_with(harness, scratch_database, {**pii, **_card_keys("k2", k2=k2)})
    ) as svc:
        assert (await _verify(svc, platform, old.token)).verdict == pb.TOKEN_VERDICT_UNKNOWN_KEY
        assert (await _verify(svc, platform, new.token)).verdict == pb.TOKEN_VERDICT_VALID
