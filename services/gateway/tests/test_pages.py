"""The gateway's pages over a fake of the services: what a consumer and a regulator see, the
cookies and CSRF tokens that guard them, and the error pages that replace any failure."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from jiazheng.regulator.v1 import regulator_pb2
from jiazheng.workers.v1 import workers_pb2
from services.gateway.app import make_web_app
from services.gateway.sealed import Sealer
from services.gateway.tests.fakes import PLATFORM_KEY, REGULATOR_KEY, FakeServices, green_card, rpc_error
from services.gateway.web import Gateway, templates

ORDER = str(uuid.uuid4())
Client = TestClient[web.Request, web.Application]


def gateway(services: FakeServices, secure: bool = False) -> Gateway:
    return Gateway(services, Sealer(b"k" * 32), {"demo-platform": PLATFORM_KEY}, secure, 8.0, templates())


@pytest.fixture
def services() -> FakeServices:
    return FakeServices(cards={"good": green_card()})


@pytest.fixture
async def client(services: FakeServices) -> AsyncIterator[Client]:
    async with TestClient(TestServer(make_web_app(gateway(services)))) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def test_a_green_card_shows_its_status_and_worker_without_a_check_in_button(client: Client) -> None:
    reply = await client.get("/v", params={"t": "good"})
    html = await reply.text()
    assert reply.status == 200
    assert "绿码：可以上门服务" in html
    assert "王*芳" in html
    assert "北京好家政有限公司" in html
    assert "家庭照护员" in html
    assert "四级/中级工" in html
    assert "2027-06-30" in html
    assert "2027-11-29" in html
    assert '<dd id="credit-level">A</dd>' in html
    assert "确认入户" not in html


async def test_a_red_card_lists_its_reasons_in_chinese(client: Client, services: FakeServices) -> None:
    red = green_card()
    red.colour = workers_pb2.CARD_COLOUR_RED
    red.reasons[:] = ["credit_level_d", "health_check_expired"]
    services.cards["red"] = red
    html = await (await client.get("/v", params={"t": "red", "o": ORDER, "p": "demo-platform"})).text()
    assert "红码：不得上门服务" in html
    assert "信用等级为 D，已暂停派单" in html
    assert "健康体检已过期" in html
    assert "确认入户</button>" not in html
    assert "不能确认入户" in html


@pytest.mark.parametrize(
    ("verdict", "text"),
    [
        (workers_pb2.TOKEN_VERDICT_BAD_SIGNATURE, "内容被改动过"),
        (workers_pb2.TOKEN_VERDICT_REVOKED, "已被吊销"),
        (workers_pb2.TOKEN_VERDICT_EXPIRED, "已过期"),
        (workers_pb2.TOKEN_VERDICT_UNKNOWN_KEY, "签发密钥"),
        (workers_pb2.TOKEN_VERDICT_MALFORMED, "不是居家上门服务证"),
    ],
)
async def test_a_token_that_is_not_a_valid_card_gets_a_refusal_page(
    client: Client,
    services: FakeServices,
    verdict: workers_pb2.TokenVerdict.ValueType,
    text: str,
) -> None:
    services.cards["bad"] = workers_pb2.VerifyCardResponse(
        verdict=verdict, colour=workers_pb2.CARD_COLOUR_RED
    )
    reply = await client.get("/v", params={"t": "bad"})
    html = await reply.text()
    assert reply.status == 403
    assert "服务证无效，请勿让其入户" in html
    assert text in html
    assert "王*芳" not in html


async def test_the_platform_link_then_the_card_offers_check_in_and_checks_the_order_in(
    client: Client,
    services: FakeServices,
) -> None:
    linked = await client.get("/order", params={"o": ORDER, "p": "demo-platform"})
    assert linked.status == 200
    cookie = linked.headers["Set-Cookie"]
    assert "jz_order=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    card = await (await client.get("/v", params={"t": "good"})).text()
    assert "确认入户</button>" in card
    done = await client.post("/v/check-in", data={"t": "good", "csrf": csrf_of(card)})
    assert done.status == 200
    assert "已确认入户" in await done.text()
    assert services.check_ins == [(PLATFORM_KEY, ORDER, "good")]


async def test_a_check_in_without_the_pages_token_is_refused(client: Client, services: FakeServices) -> None:
    await client.get("/order", params={"o": ORDER, "p": "demo-platform"})
    forged = await client.post("/v/check-in", data={"t": "good", "csrf": "guessed"})
    assert forged.status == 403
    client.session.cookie_jar.clear()
    no_order = await client.post("/v/check-in", data={"t": "good", "csrf": "guessed"})
    assert no_order.status == 400
    assert services.check_ins == []


async def test_a_check_in_the_orders_service_refuses_shows_why(
    client: Client, services: FakeServices
) -> None:
    card = await (await client.get("/v", params={"t": "good", "o": ORDER, "p": "demo-platform"})).text()
    services.check_in_error = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION, "the card scanned is not the card"
    )
    refused = await client.post("/v/check-in", data={"t": "good", "csrf": csrf_of(card)})
    html = await refused.text()
    assert refused.status == 409
    assert "无法确认入户" in html
    assert "the card scanned is not the card" in html


async def test_a_link_naming_an_unknown_platform_or_a_malformed_order_is_a_clear_400(
    client: Client,
) -> None:
    unknown = await client.get("/v", params={"t": "good", "o": ORDER, "p": "nobody"})
    assert unknown.status == 400
    assert "平台未接入" in await unknown.text()
    malformed = await client.get("/order", params={"o": "x", "p": "demo-platform"})
    assert malformed.status == 400
    assert "订单号格式不对" in await malformed.text()
    missing = await client.get("/v")
    assert missing.status == 400


async def test_a_service_outage_is_a_503_page_and_a_bug_a_500_page_without_a_trace(
    client: Client,
    services: FakeServices,
) -> None:
    services.failure = rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused")
    down = await client.get("/v", params={"t": "good"})
    assert down.status == 503
    assert down.headers["Retry-After"] == "10"
    assert "服务暂时不可用" in await down.text()
    services.failure = RuntimeError("boom")
    broken = await client.get("/v", params={"t": "good"})
    html = await broken.text()
    assert broken.status == 500
    assert "出错了" in html
    assert "Traceback" not in html
    assert "boom" not in html


async def test_every_page_carries_the_security_headers(client: Client) -> None:
    for path in ("/v?t=good", "/regulator/login", "/nowhere"):
        reply = await client.get(path)
        assert "script-src 'self'" in reply.headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"], path
        assert reply.headers["Referrer-Policy"] == "no-referrer", path
        assert reply.headers["Cache-Control"] == "no-store", path
    assert (await client.get("/nowhere")).status == 404


async def login(client: Client, key: str) -> int:
    form = await (await client.get("/regulator/login")).text()
    reply = await client.post(
        "/regulator/login", data={"api_key": key, "csrf": csrf_of(form)}, allow_redirects=False
    )
    return reply.status


async def test_only_a_regulator_key_logs_in_and_the_dashboard_needs_the_session(client: Client) -> None:
    before = await client.get("/regulator", allow_redirects=False)
    assert (before.status, before.headers["Location"]) == (303, "/regulator/login")
    assert (await client.get("/regulator/indicators")).status == 401
    assert await login(client, PLATFORM_KEY) == 403
    assert await login(client, REGULATOR_KEY) == 303
    assert (await client.get("/regulator")).status == 200


async def test_a_login_without_the_forms_token_is_refused(client: Client) -> None:
    reply = await client.post("/regulator/login", data={"api_key": REGULATOR_KEY, "csrf": "x"})
    assert reply.status == 403
    assert (await client.get("/regulator", allow_redirects=False)).status == 303


async def test_the_session_cookie_is_httponly_secure_and_strict(services: FakeServices) -> None:
    async with TestClient(TestServer(make_web_app(gateway(services, secure=True)))) as client:
        form = await client.get("/regulator/login")
        csrf = csrf_of(await form.text())
        login_cookie = form.cookies["jz_login"]
        reply = await client.post(
            "/regulator/login",
            data={"api_key": REGULATOR_KEY, "csrf": csrf},
            cookies={"jz_login": login_cookie.value},
            allow_redirects=False,
        )
        session = reply.cookies["jz_session"]
        assert reply.status == 303
        assert session["httponly"]
        assert session["secure"]
        assert session["samesite"] == "Strict"
        assert session["path"] == "/regulator"
        assert REGULATOR_KEY not in session.value  # sealed, not merely encoded
        assert REGULATOR_KEY.encode() not in base64.urlsafe_b64decode(session.value + "==")


def day(date: str, district: str, **counts: int) -> regulator_pb2.DistrictDay:
    indicators = regulator_pb2.DistrictDay(date=date, district_code=district)
    for name, count in counts.items():
        setattr(indicators, name, count)
    return indicators


async def test_the_dashboard_shows_the_days_of_the_asked_range_and_districts(
    client: Client,
    services: FakeServices,
) -> None:
    services.days = [
        day("2026-11-28", "110105", orders_placed=40, orders_completed=30, complaints_filed=2),
        day("2026-11-28", "110108", orders_placed=60, orders_completed=50, complaints_filed=1),
    ]
    await login(client, REGULATOR_KEY)
    query = {"start": "2026-11-28", "end": "2026-11-28", "district": ["110105"]}
    html = await (await client.get("/regulator", params=query)).text()
    assert services.queries[-1][1:] == (
        services.queries[-1][1].fromisoformat("2026-11-28"),
        services.queries[-1][1].fromisoformat("2026-11-28"),
        ("110105",),
    )
    assert '<th scope="row">2026-11-28</th><td>40</td><td>30</td>' in html
    assert 'value="110105" checked' in html
    series = await (await client.get("/regulator/indicators", params=query)).json()
    assert series["orders_placed"] == [40]
    assert series["complaints_per_thousand"] == [50.0]
    bad = await client.get("/regulator", params={"start": "2026-12-01", "end": "2026-11-01"})
    assert bad.status == 400
    assert "起止日期有误" in await bad.text()
    not_a_code = await client.get("/regulator", params={"district": "朝阳"})
    assert not_a_code.status == 400
    assert "区划代码应为 6 位数字" in await not_a_code.text()


async def test_logging_out_needs_the_sessions_token_and_ends_the_session(client: Client) -> None:
    await login(client, REGULATOR_KEY)
    page = await (await client.get("/regulator")).text()
    assert (await client.post("/regulator/logout", data={"csrf": "x"})).status == 403
    out = await client.post("/regulator/logout", data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/regulator", allow_redirects=False)).status == 303


async def test_the_live_stream_reports_each_change_of_figures_and_closes_its_feed(
    client: Client, services: FakeServices
) -> None:
    services.feed = [
        regulator_pb2.SubscribeResponse(
            event=regulator_pb2.RegulatorEvent(
                type="jiazheng.regulator.v1.DistrictDay", subject="110105/2026-11-30"
            ),
            cursor="c1",
        )
    ]
    await login(client, REGULATOR_KEY)
    reply = await client.get("/regulator/live")
    body = await reply.text()  # the fake feed ends, so the stream does
    assert reply.headers["Content-Type"] == "text/event-stream"
    assert (
        'event: change\ndata: {"type": "jiazheng.regulator.v1.DistrictDay", "subject": "110105/2026-11-30"}'
        in body
    )
    assert [f.cancelled for f in services.watching] == [True]


async def test_the_live_stream_is_unavailable_while_the_feed_cannot_be_positioned(
    client: Client, services: FakeServices
) -> None:
    await login(client, REGULATOR_KEY)
    services.failure = rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "feed not positioned")

    reply = await client.get("/regulator/live")

    assert reply.status == 503
    assert reply.headers["Content-Type"].startswith("text/html")
