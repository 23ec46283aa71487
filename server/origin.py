"""Refuse cross-site requests to a server on a loopback address.

A web page on any site can make the browser POST to http://127.0.0.1:8188/prompt; browsers send its
Origin along. When the Host is a loopback address and the Origin names another host or port, the request
did not come from our own page, so it is refused (the protection ComfyUI has as well).
"""

from __future__ import annotations

import ipaddress
from types import MappingProxyType
from urllib.parse import urlsplit

from aiohttp import web

from server.http_errors import ApiError, Handler

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


def is_cross_origin_to_loopback(*, origin: str, host: str, scheme: str) -> bool:
    host_authority = _authority(f"{scheme}://{host}", scheme=scheme)
    if not is_loopback(host_authority[0]):
        return False
    return _authority(origin, scheme=scheme) != host_authority


@web.middleware
async def loopback_origin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    host = request.headers.get("Host")
    if origin and host and is_cross_origin_to_loopback(origin=origin, host=host, scheme=request.scheme):
        raise ApiError(403, "cross_origin", f"requests from {origin[:100]} may not drive this server")
    return await handler(request)
