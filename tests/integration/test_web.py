"""The web gateway in a real browser (Debian's chromium, headless) against the real stack: the
card page a consumer opens at the door for a GREEN, a YELLOW, a RED and a tampered card, 确认入户
from the platform's link, and the regulator dashboard's charts for a generated day, updated live,
refused to anyone but a regulator. Every page is checked with axe-core; screenshots go to
.build/screenshots."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.async_api import Browser, Page

from deploy.local.services import DEMO_COMPANY_ID, gateway_env
from deploy.local.stack import Endpoints, free_port
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.workers.v1 import workers_pb2 as wpb
from libs.common.beijing import beijing_day
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.gateway.presenting import dashboard_series
from tests.integration.browser import (
    axe_violations,
    browser,
    describe,
    new_desktop_page,
    new_phone_page,
    screenshot,
)
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.test_insurance_claims import accepted_order
from tests.integration.test_orders_lifecycle import orders_call
from tests.integration.test_regulator_indicators import (
    SEED,
    Activity,
    _order_placed,
    expected,
    figures_become,
    fresh_districts,
)
from tests.integration.workers_client import becomes, ensure_company, produce, ready_worker

__all__ = ["browser"]  # the fixture, for pytest

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def regulator(harness: ServiceHarness) -> AsyncIterator[RunningService]:
    group = f"test-web-{uuid.uuid4().hex[:8]}"
    svc = await harness.start("regulator", supervised=True, consumer_group_prefix=group)
    yield svc
    harness.stop(svc)


@pytest.fixture(scope="module")
async def gateway(
    harness: ServiceHarness, workers: RunningService, orders: RunningService, regulator: RunningService
) -> AsyncIterator[str]:
    """The gateway process, as `jiazheng up` starts it; its base URL."""
    port = free_port()
    ports = {s.name: {"grpc_port": s.port} for s in (workers, orders, regulator)}
    session_key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = gateway_env(harness.keys, session_key, port, ports)
    svc = await harness.start(
        "gateway", None, 0, False, **{k.removeprefix("JZ_").lower(): v for k, v in env.items()}
    )
    yield f"http://127.0.0.1:{port}"
    harness.stop(svc)


@pytest.fixture(scope="module")
async def company(harness: ServiceHarness, workers: RunningService) -> str:
    return (await ensure_company(workers, harness.key("operator"), DEMO_COMPANY_ID)).name


def token_of(verification_url: str) -> str:
    return parse_qs(urlparse(verification_url).query)["t"][0]


def tampered(token: str) -> str:
    """The token with one character of its signature changed."""
    head, _, signature = token.rpartition(".")
    flipped = "A" if signature[5] != "A" else "B"
    return f"{head}.{signature[:5]}{flipped}{signature[6:]}"


async def until(page: Page, expression: str, within: float = 60) -> None:
    """Wait until ``expression`` is true in the page (polled from here: the pages' CSP forbids the
    eval that page.wait_for_function would use)."""

    async def holds() -> bool:
        return bool(await page.evaluate(f"() => Boolean({expression})"))

    await eventually(holds, within=within, interval=0.5)


async def accessible(page: Page) -> None:
    violations = await axe_violations(page)
    assert not violations, describe(violations)


async def test_card_pages_show_green_yellow_and_red_cards_and_refuse_a_tampered_one(
    browser: Browser,
    gateway: str,
    harness: ServiceHarness,
    endpoints: Endpoints,
    workers: RunningService,
    company: str,
) -> None:
    operator = harness.key("operator")
    _, green = await ready_worker(endpoints, workers, operator, company)
    _, yellow = await ready_worker(endpoints, workers, operator, company, insured=False)
    red_worker, red = await ready_worker(endpoints, workers, operator, company)
    await produce(endpoints.kafka_bootstrap, events_topic("credit"), credit_level_d(red_worker))
    await becomes(workers, operator, f"workers/{red_worker}", wpb.CARD_COLOUR_RED)

    page = await new_phone_page(browser, gateway)
    try:
        for name, url, heading, text in [
            ("card-green", green, "绿码：可以上门服务", "身份、背景审查、体检和保险均有效"),
            ("card-yellow", yellow, "黄码：资质待完善", "没有投保"),
            ("card-red", red, "红码：不得上门服务", "信用等级为 D，已暂停派单"),
            ("card-tampered", f"/v?t={tampered(token_of(green))}", "服务证无效，请勿让其入户", "签名不符"),
        ]:
            reply = await page.goto(f"/v?t={token_of(url)}" if url.startswith("http") else url)
            assert reply is not None
            assert await page.inner_text("h1") == heading, name
            assert text in await page.inner_text("main"), name
            if name != "card-tampered":
                assert (await page.inner_text("#worker-name")).count("*") >= 1
                assert await page.inner_text("#credit-level") in {"A", "B", "C", "D", "暂无"}
            else:
                assert reply.status == 403
            assert await page.evaluate("document.documentElement.scrollWidth") <= 375, name
            await accessible(page)
            await screenshot(page, name)
    finally:
        await page.context.close()


async def test_the_status_reads_without_javascript(
    browser: Browser,
    gateway: str,
    harness: ServiceHarness,
    endpoints: Endpoints,
    workers: RunningService,
    company: str,
) -> None:
    _, green = await ready_worker(endpoints, workers, harness.key("operator"), company)
    context = await browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 812})
    try:
        page = await context.new_page()
        await page.goto(f"{gateway}/v?t={token_of(green)}")
        assert await page.inner_text("h1") == "绿码：可以上门服务"
    finally:
        await context.close()


def credit_level_d(worker_id: str) -> EventEnvelope:
    message = credit_events.CreditLevelChanged(
        worker_id=worker_id,
        level=credit_events.CREDIT_LEVEL_D,
        score=300,
        model_version="test",
        change_time=timestamp(datetime.now(UTC)),
    )
    return new_event(message, source="/jiazheng/credit", subject=f"workers/{worker_id}")


async def test_check_in_from_the_platforms_link_checks_the_order_in(
    browser: Browser,
    gateway: str,
    harness: ServiceHarness,
    endpoints: Endpoints,
    workers: RunningService,
    orders: RunningService,
    company: str,
) -> None:
    platform = harness.key("demo-platform")
    worker, url = await ready_worker(endpoints, workers, harness.key("operator"), company)
    order = await accepted_order(orders, platform, worker, token_of(url), check_in=False)
    order_id = order.name.removeprefix("orders/")
    page = await new_phone_page(browser, gateway)
    try:
        await page.goto(f"/order?o={order_id}&p=demo-platform")
        assert await page.inner_text("h1") == "已记下您的订单"
        await page.goto(f"/v?t={token_of(url)}")
        await accessible(page)
        await screenshot(page, "card-check-in")
        await page.get_by_role("button", name="确认入户").click()
        await page.wait_for_url("**/v/check-in")
        assert await page.inner_text("h1") == "已确认入户"
        await accessible(page)
        await screenshot(page, "checked-in")
    finally:
        await page.context.close()
    stored = (await orders_call(orders, platform, "GetOrder", o.GetOrderRequest(name=order.name))).order
    assert stored.HasField("check_in_time")


async def login(page: Page, key: str) -> None:
    await page.goto("/regulator/login")
    await page.get_by_label("监管账号 API 密钥").fill(key)
    await page.get_by_role("button", name="登录").click()


async def test_a_non_regulator_cannot_open_the_dashboard(
    browser: Browser, gateway: str, harness: ServiceHarness
) -> None:
    page = await new_desktop_page(browser, gateway)
    try:
        await login(page, harness.key("demo-platform"))
        assert "不是监管账号" in await page.inner_text("#login-error")
        await accessible(page)
        await screenshot(page, "dashboard-refused")
        await page.goto("/regulator")
        assert page.url.endswith("/regulator/login")
        assert not [c for c in await page.context.cookies() if c["name"] == "jz_session"]
    finally:
        await page.context.close()


async def chart_data(page: Page, chart: str) -> Any:
    return await page.evaluate(
        """id => {
            const c = Chart.getChart(document.getElementById(id));
            const datasets = c.data.datasets.map(d => ({label: d.label, data: d.data}));
            return {labels: c.data.labels, datasets: datasets};
        }""",
        chart,
    )


async def test_the_dashboard_charts_a_generated_day_and_follows_the_feed(
    browser: Browser, gateway: str, harness: ServiceHarness, endpoints: Endpoints, regulator: RunningService
) -> None:
    day = beijing_day(datetime.now(UTC)) - timedelta(days=2)
    districts = sorted(await fresh_districts(endpoints.kafka_bootstrap, 3))
    activity = Activity(SEED, day, districts)
    for service, envelopes in activity.events().items():
        await produce(endpoints.kafka_bootstrap, events_topic(service), *envelopes)
    want = {d: expected(activity, d) for d in districts}
    await figures_become(endpoints.kafka_bootstrap, {f"{d}/{day.isoformat()}": want[d] for d in districts})
    series = dashboard_series(list(want.values()))

    page = await new_desktop_page(browser, gateway)
    try:
        await login(page, harness.key("regulator"))
        query = "&".join([f"start={day}", f"end={day}", *(f"district={d}" for d in districts)])
        await page.goto(f"/regulator?{query}")
        await until(page, "document.body.dataset.charts === 'drawn'")
        orders = await chart_data(page, "chart-orders")
        assert orders["labels"] == [day.isoformat()]
        assert [d["data"] for d in orders["datasets"]] == [
            series["orders_placed"],
            series["orders_completed"],
        ]
        shares = await chart_data(page, "chart-shares")
        assert [d["data"] for d in shares["datasets"]] == [series["green_share"], series["insured_share"]]
        credit = await chart_data(page, "chart-credit")
        assert [d["data"] for d in credit["datasets"]] == [
            series["credit_levels"]["levels"][lv] for lv in "ABCD"
        ]
        elderly = await chart_data(page, "chart-elderly")
        assert elderly["datasets"][0]["data"] == [sum(w.elderly_care_orders for w in want.values())]
        mediation = await chart_data(page, "chart-mediation")
        assert mediation["datasets"][0]["data"] == [sum(w.mediation_backlog for w in want.values())]
        row = await page.inner_text("#indicators-table tbody tr")
        assert row.split("\t")[:3] == [
            day.isoformat(),
            str(series["orders_placed"][0]),
            str(series["orders_completed"][0]),
        ]
        await accessible(page)
        await screenshot(page, "dashboard")

        await until(page, "document.body.dataset.live === 'open'")
        await produce(
            endpoints.kafka_bootstrap, events_topic("orders"), _order_placed(districts[0], activity.at(12))
        )
        placed = series["orders_placed"][0] + 1
        await until(
            page,
            f"Chart.getChart(document.getElementById('chart-orders')).data.datasets[0].data[0] === {placed}",
        )
    finally:
        await page.context.close()
