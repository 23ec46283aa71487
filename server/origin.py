"""Refuse cross-origin requests, and DNS rebinding to a server on a loopback address; optional CORS.

A web page on any site can make the browser POST to http://127.0.0.1:8188/prompt; browsers send its
Origin along. When the Origin names another host or port than the Host the request addresses, it did not
come from our own page, so it is refused (ComfyUI does this for loopback servers). Beyond loopback too: the
token cookie is SameSite, and a site ignores ports, so a page served from another port of the same host
would otherwise ride on it. A page whose own name resolves to 127.0.0.1 (DNS rebinding) is same-origin to
itself, so a loopback server also refuses any Host that is not a loopback name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from urllib.parse import urlsplit

from aiohttp import web

from server.http_errors import ApiError, Handler

Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

_DEFAULT_PORTS = MappingProxyType({"http": 80, "https": 443, "ws": 80, "wss": 443})


def _authority(url: str, *, scheme: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None, None
    hostname = parts.hostname.lower() if parts.hostname else None
    return hostname, port or _DEFAULT_PORTS.get(parts.scheme or scheme)


def is_loopback(hostname: str | None) -> bool:
    if hostname is None:
        return False
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def is_cross_origin(*, origin: str, host: str, scheme: str) -> bool:
    """Whether ``origin`` names another host or port than ``host`` ("null" and unreadable origins do)."""
    return _authority(origin, scheme=scheme) != _authority(f"{scheme}://{host}", scheme=scheme)


def guard_middleware(*, listen: str, cors_origin: str | None) -> Middleware:
    """The Host/Origin guard for a server listening on ``listen``.

    - Listening on loopback, every request must name a loopback Host: a DNS-rebinding page (evil.example
      resolving to 127.0.0.1) sends its own name as Host and is refused, reads included.
    - A request whose Origin is another host or port than the Host it addresses is refused.
    - ``cors_origin`` (``--enable-cors-header``) is the one origin allowed across sites ("*": any);
      its requests get CORS headers and preflights are answered here. Without it no CORS header is sent.
    """
    guard_host = is_loopback(listen.strip("[]"))

    @web.middleware
    async def host_and_origin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        host = request.headers.get("Host")
        if guard_host and not is_loopback(_authority(f"{request.scheme}://{host}", scheme=request.scheme)[0]):
            raise ApiError(403, "host_not_allowed", f"Host {str(host)[:100]!r} is not this loopback server")
        allowed = origin is not None and cors_origin in ("*", origin)
        if allowed and request.method == "OPTIONS":
            return web.Response(status=204, headers=_cors_headers(origin, preflight=True))
        if origin and host and not allowed and is_cross_origin(origin=origin, host=host, scheme=request.scheme):
            raise ApiError(403, "cross_origin", f"requests from {origin[:100]} may not drive this server")
        response = await handler(request)
        if allowed and not response.prepared:
            response.headers.update(_cors_headers(origin, preflight=False))
        return response

    return host_and_origin_guard


def _cors_headers(origin: str, *, preflight: bool) -> dict[str, str]:
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if preflight:
        headers |= {
            "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        }
    return headers
