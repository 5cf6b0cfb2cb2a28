"""The regulator dashboard: indicators by district and day as charts, filtered by date range and
district, refreshed live from the regulator feed. Regulators log in with their API key; the
gateway checks it by asking the regulator service (which alone decides who is a regulator) and
keeps it only in a sealed, HttpOnly, Secure, SameSite=Strict session cookie. Every form carries
a CSRF token bound to its cookie."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from datetime import date, datetime, timedelta
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.json_format import MessageToDict

from libs.common.beijing import BEIJING
from libs.common.districts import BEIJING_DISTRICTS
from services.gateway.backends import NOT_ALLOWED, UNAVAILABLE, LiveFeed
from services.gateway.presenting import dashboard_series
from services.gateway.web import GATEWAY, new_csrf_token, same_token

SESSION_COOKIE = "jz_session"
LOGIN_COOKIE = "jz_login"
PATH = "/regulator"
DEFAULT_DAYS = 14
MAX_DAYS = 366
KEEPALIVE_S = 15.0
# GB/T 2260: Beijing's are offered as choices; any other code the regulator knows is asked as is.
DISTRICT_CODE = re.compile(r"[0-9]{6}")


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PATH}/login", login_form)
    app.router.add_post(f"{PATH}/login", login)
    app.router.add_post(f"{PATH}/logout", logout)
    app.router.add_get(PATH, dashboard)
    app.router.add_get(f"{PATH}/indicators", indicators)
    app.router.add_get(f"{PATH}/live", live)


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _session(request: web.Request) -> dict[str, Any] | None:
    return request.app[GATEWAY].sealer.open(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE))


def _require_session(request: web.Request) -> dict[str, Any]:
    session = _session(request)
    if session is None:
        raise web.HTTPSeeOther(f"{PATH}/login")
    return session


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request, status=200, error="")


def _login_page(request: web.Request, status: int, error: str) -> web.Response:
    gateway = request.app[GATEWAY]
    csrf = new_csrf_token()
    response = gateway.render("login.html", status=status, csrf=csrf, error=error)
    gateway.set_cookie(response, LOGIN_COOKIE, {"csrf": csrf}, 600, PATH, "Strict")
    return response


async def login(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    form = await request.post()
    pending = gateway.sealer.open(LOGIN_COOKIE, request.cookies.get(LOGIN_COOKIE)) or {}
    if not same_token(form.get("csrf"), pending.get("csrf")):
        return _login_page(request, 403, "登录页面已过期，请重新登录。")
    key = form.get("api_key")
    if not isinstance(key, str) or not key.strip() or len(key) > 512:
        return _login_page(request, 400, "请输入监管账号的 API 密钥。")
    today = datetime.now(BEIJING).date()
    try:
        await gateway.services.list_indicators(key.strip(), today, today, [])
    except grpc.aio.AioRpcError as refused:
        if refused.code() not in NOT_ALLOWED:
            raise
        return _login_page(request, 403, "此密钥不是监管账号的密钥，不能查看监管看板。")
    response = see_other(PATH)
    ttl = gateway.session_hours * 3600
    gateway.set_cookie(
        response, SESSION_COOKIE, {"k": key.strip(), "csrf": new_csrf_token()}, ttl, PATH, "Strict"
    )
    response.del_cookie(LOGIN_COOKIE, path=PATH)
    return response


async def logout(request: web.Request) -> web.Response:
    session = _require_session(request)
    form = await request.post()
    if not same_token(form.get("csrf"), session.get("csrf")):
        raise web.HTTPForbidden(reason="页面已过期，请刷新后再退出。")
    response = see_other(f"{PATH}/login")
    response.del_cookie(SESSION_COOKIE, path=PATH)
    return response


def _filters(request: web.Request) -> tuple[date, date, list[str]]:
    """The date range (default: the last two weeks) and districts (default: all) asked for."""
    today = datetime.now(BEIJING).date()
    try:
        end = date.fromisoformat(request.query.get("end") or today.isoformat())
        start = date.fromisoformat(
            request.query.get("start") or (end - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        )
    except ValueError:
        raise web.HTTPBadRequest(reason="日期格式应为 YYYY-MM-DD。") from None
    if start > end or (end - start).days >= MAX_DAYS:
        raise web.HTTPBadRequest(reason=f"起止日期有误：开始不能晚于结束，且最多 {MAX_DAYS} 天。")
    districts = request.query.getall("district", [])
    malformed = [d for d in districts if not DISTRICT_CODE.fullmatch(d)]
    if malformed:
        raise web.HTTPBadRequest(reason=f"区划代码应为 6 位数字：{', '.join(malformed)}")
    return start, end, sorted(set(districts))


async def _series(request: web.Request, key: str) -> tuple[date, date, list[str], dict[str, Any]]:
    start, end, districts = _filters(request)
    days = await request.app[GATEWAY].services.list_indicators(key, start, end, districts)
    return start, end, districts, dashboard_series(days)


async def dashboard(request: web.Request) -> web.Response:
    session = _require_session(request)
    start, end, districts, series = await _series(request, session["k"])
    return request.app[GATEWAY].render(
        "dashboard.html",
        start=start.isoformat(),
        end=end.isoformat(),
        chosen=set(districts),
        all_districts=[
            *BEIJING_DISTRICTS.items(),
            *((c, c) for c in districts if c not in BEIJING_DISTRICTS),
        ],
        series=series,
        series_json=json.dumps(series, ensure_ascii=False).replace("<", "\\u003c"),
        csrf=session["csrf"],
    )


async def indicators(request: web.Request) -> web.Response:
    session = _session(request)
    if session is None:
        raise web.HTTPUnauthorized(reason="请先登录。")
    *_, series = await _series(request, session["k"])
    return web.json_response(series)


async def live(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one ``change`` each time the regulator publishes new figures; the page
    then reloads the indicators. The stream opens only once the feed is positioned, so figures
    changed after the browser sees it open are never missed. A comment every 15 s keeps proxies
    from closing the stream."""
    session = _session(request)
    if session is None:
        raise web.HTTPUnauthorized(reason="请先登录。")
    feed = await request.app[GATEWAY].services.watch(session["k"])
    try:
        return await _stream(request, feed)
    finally:
        feed.cancel()


async def _stream(request: web.Request, feed: LiveFeed) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    await response.write(b"retry: 5000\n\n")
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=1000)
    pump = asyncio.create_task(_pump(feed, queue))
    try:
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if event is None:
                break
            await response.write(f"event: change\ndata: {json.dumps(event)}\n\n".encode())
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    return response


async def _pump(feed: LiveFeed, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
    """Feed events into ``queue``; None when the feed ends (the browser reconnects by itself)."""
    try:
        async for item in feed:
            event = MessageToDict(item.event, preserving_proto_field_name=True)
            with contextlib.suppress(asyncio.QueueFull):  # a slow page only needs to know "changed"
                queue.put_nowait({"type": event.get("type", ""), "subject": event.get("subject", "")})
    except grpc.aio.AioRpcError as failed:
        if failed.code() not in UNAVAILABLE and failed.code() != grpc.StatusCode.CANCELLED:
            raise
    finally:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)
