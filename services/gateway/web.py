"""The gateway's HTTP application (aiohttp): pages rendered on the server with Jinja2, static
files served from the package, security headers on every answer, and no stack trace ever."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jinja2
from aiohttp import web
from prometheus_client import Counter

from services.gateway.backends import UNAVAILABLE, Services
from services.gateway.sealed import Sealer

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
REQUESTS = Counter("jz_gateway_requests_total", "HTTP requests answered", ["route", "status"])
# Scripts and styles only from the gateway itself, never inline, and no framing (clickjacking).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Gateway:
    """What every page handler reaches through ``request.app[GATEWAY]``."""

    services: Services
    sealer: Sealer
    platform_keys: dict[str, str]
    cookie_secure: bool
    session_hours: float
    templates: jinja2.Environment

    def render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        html = self.templates.get_template(name).render(**context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def set_cookie(
        self,
        response: web.StreamResponse,
        name: str,
        value: dict[str, Any],
        ttl_s: float,
        path: str,
        same_site: str,
    ) -> None:
        response.set_cookie(
            name,
            self.sealer.seal(name, value, ttl_s),
            max_age=int(ttl_s),
            path=path,
            httponly=True,
            secure=self.cookie_secure,
            samesite=same_site,
        )


GATEWAY = web.AppKey("gateway", Gateway)


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def same_token(a: object, b: object) -> bool:
    return isinstance(a, str) and isinstance(b, str) and bool(a) and secrets.compare_digest(a, b)


@web.middleware
async def safe_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; a service that cannot answer is a 503 page, anything
    unexpected a 500 page: never a blank page or a stack trace."""
    gateway = request.app[GATEWAY]
    try:
        response = await handler(request)
    except web.HTTPException as http:
        if http.status < 400:  # a redirect: answered as a response, so it gets the headers too
            response = web.Response(status=http.status, headers=http.headers)
        else:
            response = _error_page(gateway, http.status, http.reason)
    except grpc.aio.AioRpcError as failed:
        if failed.code() not in UNAVAILABLE:
            log.error("unexpected gRPC error", extra={"fields": {"code": failed.code().name}})
        response = _error_page(gateway, 503 if failed.code() in UNAVAILABLE else 500, "")
    except Exception:
        log.exception("page failed")
        response = _error_page(gateway, 500, "")
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # A card link carries its token: it must not leak to other sites as a referrer.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    route = request.match_info.route.resource
    REQUESTS.labels(route.canonical if route else "unmatched", str(response.status)).inc()
    return response


ERRORS = {
    400: "请求有误",
    403: "没有权限",
    404: "页面不存在",
    405: "请求方式不对",
    503: "服务暂时不可用，请稍后再试",
}


def _error_page(gateway: Gateway, status: int, detail: str) -> web.Response:
    response = gateway.render(
        "error.html", status=status, title=ERRORS.get(status, "出错了，请稍后再试"), detail=detail
    )
    if status == 503:
        response.headers["Retry-After"] = "10"
    return response


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")
