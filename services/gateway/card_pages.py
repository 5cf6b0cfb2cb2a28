"""The service-card page (居家上门服务证 核验) a consumer opens by scanning the card's QR code, and
确认入户: the check-in of the consumer's order, with the authority of the platform whose link
brought the consumer here.

The platform's link (``/order?o=<order id>&p=<platform id>``, or the card link with ``o`` and
``p`` added) leaves the order in a sealed cookie; the card page then offers the button. The
check-in form carries a token only that cookie holds (CSRF), and the cookie is SameSite=Lax, so
another site cannot post it."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from aiohttp import web

from jiazheng.workers.v1 import workers_pb2
from libs.common.beijing import BEIJING
from services.gateway.presenting import card_view, refusal_text
from services.gateway.web import GATEWAY, Gateway, new_csrf_token, same_token

ORDER_COOKIE = "jz_order"
ORDER_COOKIE_HOURS = 24
MAX_TOKEN = 4096


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v", card_page)
    app.router.add_get("/order", order_link)
    app.router.add_post("/v/check-in", check_in)


def _order_from_query(request: web.Request) -> dict[str, Any] | None:
    """The order a platform's link names (``o`` an order id, ``p`` a platform id), if any."""
    order, platform = request.query.get("o", ""), request.query.get("p", "")
    if not order and not platform:
        return None
    try:
        order = str(uuid.UUID(order))
    except ValueError:
        raise web.HTTPBadRequest(reason="链接中的订单号格式不对。") from None
    if platform not in request.app[GATEWAY].platform_keys:
        raise web.HTTPBadRequest(reason="链接中的平台未接入本服务，无法确认入户。")
    return {"o": order, "p": platform, "csrf": new_csrf_token()}


def _remember(gateway: Gateway, response: web.StreamResponse, order: dict[str, Any]) -> None:
    gateway.set_cookie(response, ORDER_COOKIE, order, ORDER_COOKIE_HOURS * 3600, "/", "Lax")


async def order_link(request: web.Request) -> web.Response:
    """The link the platform sends the consumer: remembers the order until the worker arrives."""
    gateway = request.app[GATEWAY]
    order = _order_from_query(request)
    if order is None:
        raise web.HTTPBadRequest(reason="链接不完整：缺少订单号和平台。")
    response = gateway.render("order_link.html", order_id=order["o"])
    _remember(gateway, response, order)
    return response


async def card_page(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    token = request.query.get("t", "")
    if not token or len(token) > MAX_TOKEN:
        raise web.HTTPBadRequest(reason="链接中没有服务证信息，请重新扫描服务证二维码。")
    linked = _order_from_query(request)
    order = linked or gateway.sealer.open(ORDER_COOKIE, request.cookies.get(ORDER_COOKIE))
    reply = await gateway.services.verify_card(token)
    if reply.verdict != workers_pb2.TOKEN_VERDICT_VALID:
        return gateway.render("refusal.html", status=403, reason=refusal_text(reply.verdict))
    response = gateway.render(
        "card.html",
        card=card_view(reply),
        token=token,
        order=order,
        can_check_in=order is not None and reply.colour == workers_pb2.CARD_COLOUR_GREEN,
    )
    if linked is not None:
        _remember(gateway, response, linked)
    return response


async def check_in(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    form = await request.post()
    order = gateway.sealer.open(ORDER_COOKIE, request.cookies.get(ORDER_COOKIE))
    token = form.get("t")
    if order is None:
        raise web.HTTPBadRequest(reason="找不到您的订单：请先打开平台发给您的链接，再扫描服务证。")
    if not same_token(form.get("csrf"), order.get("csrf")):
        raise web.HTTPForbidden(reason="页面已过期，请重新扫描服务证二维码。")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise web.HTTPBadRequest(reason="缺少服务证信息，请重新扫描服务证二维码。")
    key = gateway.platform_keys.get(order["p"])
    if key is None:
        raise web.HTTPBadRequest(reason="该平台未接入本服务，无法确认入户。")
    try:
        checked_in = await gateway.services.check_in(key, order["o"], token)
    except grpc.aio.AioRpcError as refused:
        if refused.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
            raise
        found = refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        return gateway.render(
            "check_in_refused.html",
            status=409 if found else 404,
            found=found,
            detail=refused.details() or "",
        )
    when = (
        checked_in.check_in_time.ToDatetime(tzinfo=BEIJING) if checked_in.HasField("check_in_time") else None
    )
    return gateway.render("checked_in.html", order_id=order["o"], when=when)
