"""The workers service through gRPC: companies, workers, checks, scoping, personal data at rest."""

from __future__ import annotations

import base64
from datetime import date, timedelta

import asyncpg
import grpc
import pytest

from deploy.local.services import DEMO_COMPANY_ID, OTHER_COMPANY_ID
from jiazheng.workers.v1 import workers_pb2 as pb
from tests.integration.clients import field_violations
from tests.integration.harness import RunningService, ServiceHarness
from tests.integration.workers_client import (
    call,
    create_worker,
    ensure_company,
    id_number,
    worker_request,
)

DEMO_COMPANY = f"companies/{DEMO_COMPANY_ID}"


@pytest.fixture(scope="module")
async def demo_company(harness: ServiceHarness, workers: RunningService) -> str:
    await ensure_company(workers, harness.key("operator"), DEMO_COMPANY_ID)
    await ensure_company(workers, harness.key("operator"), OTHER_COMPANY_ID)
    return DEMO_COMPANY


async def test_a_registered_worker_is_answered_masked_and_yellow_until_checked(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    number = id_number(date(1985, 4, 12))
    worker = await create_worker(workers, harness.key("demo-company"), demo_company, id_number=number)

    assert worker.company == demo_company
    assert worker.masked_id_number == number[:3] + "*" * 11 + number[-4:]
    assert (worker.masked_full_name, worker.masked_mobile) == ("王*", "139****5678")
    assert worker.card_colour == pb.CARD_COLOUR_YELLOW
    assert list(worker.card_reasons) == [
        "background_check_pending",
        "health_check_missing",
        "insurance_missing",
    ]
    assert [e.company for e in worker.employments] == [demo_company]


async def test_the_same_id_number_twice_is_already_exists_and_a_retry_is_the_same_worker(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    request = worker_request(demo_company)
    first = await call(workers, harness.key("demo-company"), "CreateWorker", request)
    retry = await call(workers, harness.key("demo-company"), "CreateWorker", request)
    assert retry.worker.name == first.worker.name

    again = worker_request(demo_company, id_number=request.id_number.lower())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(workers, harness.key("demo-company"), "CreateWorker", again)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id_number": "110105198504121230"}, "id_number"),  # check character wrong (correct: 6?)
        ({"service_districts": ["110105", "110103"]}, "service_districts[1]"),
        ({"id_number": "110105201512010015"}, "id_number"),  # 10 years old
    ],
)
async def test_bad_worker_input_names_the_field_and_stores_nothing(
    harness: ServiceHarness, workers: RunningService, demo_company: str, fields: dict[str, object], field: str
) -> None:
    request = worker_request(demo_company, **fields)
    if field == "id_number" and "2015" in request.id_number:
        request.id_number = id_number(date.today() - timedelta(days=3650))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(workers, harness.key("demo-company"), "CreateWorker", request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(err.value)


async def test_a_company_cannot_touch_another_companys_worker(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    worker = await create_worker(workers, harness.key("demo-company"), demo_company)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(workers, harness.key("other-company"), "GetWorker", pb.GetWorkerRequest(name=worker.name))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(
            workers,
            harness.key("other-company"),
            "CreateWorker",
            worker_request(demo_company),
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_checks_move_the_colour_and_a_flagged_background_check_is_red(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    key = harness.key("demo-company")
    worker = await create_worker(workers, key, demo_company)
    health = await call(
        workers,
        key,
        "RecordHealthCheck",
        pb.RecordHealthCheckRequest(
            worker=worker.name,
            tier=pb.HEALTH_TIER_LIVE_IN,
            issue_date=date.today().isoformat(),
            hospital="北京协和医院",
            certificate_number="TJ-2026-001",
        ),
    )
    assert health.card_colour == pb.CARD_COLOUR_YELLOW  # background check pending, no insurance yet

    flagged = pb.RecordBackgroundCheckRequest(
        worker=worker.name, identity_genuine=True, listed_crime_within_5_years=True, check_date="2026-01-05"
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(workers, key, "RecordBackgroundCheck", flagged)  # operators only
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    reply = await call(workers, harness.key("operator"), "RecordBackgroundCheck", flagged)
    assert reply.card_colour == pb.CARD_COLOUR_RED


async def test_an_expired_health_check_is_refused(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    worker = await create_worker(workers, harness.key("demo-company"), demo_company)
    request = pb.RecordHealthCheckRequest(
        worker=worker.name,
        tier=pb.HEALTH_TIER_GENERAL,
        issue_date=(date.today() - timedelta(days=400)).isoformat(),
        hospital="医院",
        certificate_number="TJ-1",
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(workers, harness.key("demo-company"), "RecordHealthCheck", request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["issue_date"]


async def test_a_transfer_keeps_the_history_and_lists_filter_with_page_tokens(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    key = harness.key("demo-company")
    worker = await create_worker(workers, key, demo_company, service_districts=["110119"])
    moved = await call(
        workers,
        key,
        "TransferWorker",
        pb.TransferWorkerRequest(name=worker.name, company=f"companies/{OTHER_COMPANY_ID}"),
    )
    assert [e.company for e in moved.worker.employments] == [demo_company, f"companies/{OTHER_COMPANY_ID}"]
    assert moved.worker.employments[0].HasField("end_time")

    made = [
        (await create_worker(workers, key, demo_company, service_districts=["110116"])).name for _ in range(3)
    ]
    listed: list[pb.Worker] = []
    tokens: list[str] = []
    while True:
        request = pb.ListWorkersRequest(
            parent="companies/-", district_code="110116", page_size=2, page_token=tokens[-1] if tokens else ""
        )
        page = await call(workers, harness.key("operator"), "ListWorkers", request)
        listed += page.workers
        if not page.next_page_token:
            break
        tokens.append(page.next_page_token)
    seen = [w.name for w in listed]
    assert len(seen) == len(set(seen)) >= 3
    # Oldest registered first, page after page (worker ids are random: id order is no order).
    assert [name for name in seen if name in made] == made
    registered = [w.create_time.ToDatetime() for w in listed]
    assert registered == sorted(registered)
    # A token whose worker id is not an id, with the right filters' digest: the field, not INTERNAL.
    version, digest, moment = base64.urlsafe_b64decode(tokens[0]).decode().split(":", 2)
    forged = base64.urlsafe_b64encode(f"{version}:{digest}:{moment.split('|')[0]}|nobody".encode()).decode()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(
            workers,
            harness.key("operator"),
            "ListWorkers",
            pb.ListWorkersRequest(
                parent="companies/-", district_code="110116", page_size=2, page_token=forged
            ),
        )
    assert (err.value.code(), field_violations(err.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["page_token"],
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(workers, key, "ListWorkers", pb.ListWorkersRequest(parent="companies/-"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_no_id_number_name_or_phone_is_stored_or_logged_in_plain_text(
    harness: ServiceHarness, workers: RunningService, demo_company: str, workers_database: str
) -> None:
    number = id_number(date(1979, 9, 30))
    await create_worker(
        workers, harness.key("demo-company"), demo_company, id_number=number, mobile="13687654321"
    )
    conn = await asyncpg.connect(harness.endpoints.dsn(workers_database))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for table in (t["tablename"] for t in tables):
            dump = "".join(str(r) for r in await conn.fetch(f"SELECT t::text FROM {table} t"))
            for plain in (number, "王芳", "13687654321"):
                assert plain not in dump, f"{plain!r} in {table}"
    finally:
        await conn.close()
    logged = workers.log.read_text()
    assert "worker registered" in logged  # the service logged the registration, masked or not
    for plain in (number, "王芳", "13687654321"):
        assert plain not in logged


async def test_consent_code_is_redeemed_once_by_a_platform_and_revocable(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    worker = await create_worker(workers, harness.key("demo-company"), demo_company)
    code = await call(
        workers,
        harness.key("demo-company"),
        "CreateConsentCode",
        pb.CreateConsentCodeRequest(worker=worker.name),
    )
    redeem = pb.RedeemConsentCodeRequest(worker=worker.name, code=code.code, consumer_ref="consumer-7")
    grant = (await call(workers, harness.key("demo-platform"), "RedeemConsentCode", redeem)).grant
    assert grant.platform_id == "demo-platform"
    assert grant.expire_time.ToSeconds() - grant.create_time.ToSeconds() == 24 * 3600
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(workers, harness.key("demo-platform"), "RedeemConsentCode", redeem)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    revoke = pb.RevokeConsentGrantRequest(name=grant.name)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(workers, harness.key("other-platform"), "RevokeConsentGrant", revoke)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    revoked = (await call(workers, harness.key("demo-platform"), "RevokeConsentGrant", revoke)).grant
    assert revoked.HasField("revoke_time")
    active = await call(
        workers,
        harness.key("demo-company"),
        "ListConsentGrants",
        pb.ListConsentGrantsRequest(parent=worker.name, active_only=True),
    )
    assert list(active.grants) == []


async def test_training_certificates_availability_and_pay_bands(
    harness: ServiceHarness, workers: RunningService, demo_company: str
) -> None:
    key = harness.key("demo-company")
    worker = await create_worker(workers, key, demo_company, service_districts=["110117"])
    today = date.today().isoformat()
    training = pb.RecordTrainingRequest(
        worker=worker.name, course="母婴护理", provider="北京家政学院", hours=40, completion_date=today
    )
    await call(workers, key, "RecordTraining", training)
    certificate = pb.RecordSkillCertificateRequest(
        worker=worker.name,
        trade=pb.TRADE_MATERNITY_NURSE,
        level=pb.SKILL_LEVEL_3,
        certificate_number="ZS-3-001",
        issue_date=today,
        special_abilities=[pb.SPECIAL_ABILITY_MATERNAL_INFANT_CARE],
    )
    reply = await call(workers, key, "RecordSkillCertificate", certificate)
    assert reply.skill_level == pb.SKILL_LEVEL_3
    lower = await call(
        workers,
        key,
        "RecordSkillCertificate",
        pb.RecordSkillCertificateRequest(
            worker=worker.name,
            trade=pb.TRADE_HOUSEKEEPER,
            level=pb.SKILL_LEVEL_5,
            certificate_number="ZS-5-001",
            issue_date=today,
        ),
    )
    assert lower.skill_level == pb.SKILL_LEVEL_3  # the highest level stays
    listed = await call(
        workers,
        key,
        "ListWorkers",
        pb.ListWorkersRequest(parent=demo_company, district_code="110117", min_skill_level=pb.SKILL_LEVEL_3),
    )
    assert [w.name for w in listed.workers] == [worker.name]

    week = pb.SetAvailabilityRequest(
        worker=worker.name,
        weekly_slots=[pb.WeeklySlot(day_of_week=1, start_minute=480, end_minute=720)],
    )
    await call(workers, key, "SetAvailability", week)
    overlapping = pb.SetAvailabilityRequest(
        worker=worker.name,
        weekly_slots=[
            pb.WeeklySlot(day_of_week=1, start_minute=480, end_minute=720),
            pb.WeeklySlot(day_of_week=1, start_minute=700, end_minute=800),
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(workers, key, "SetAvailability", overlapping)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    bands = await call(workers, harness.key("demo-platform"), "ListPayBands", pb.ListPayBandsRequest())
    assert [b.level for b in bands.pay_bands] == [
        pb.SKILL_LEVEL_5,
        pb.SKILL_LEVEL_4,
        pb.SKILL_LEVEL_3,
        pb.SKILL_LEVEL_2,
    ]
    assert all(b.min_fen_per_hour < b.max_fen_per_hour for b in bands.pay_bands)
