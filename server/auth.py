"""The access token a server listening beyond loopback requires, on every HTTP request and the websocket.

A client sends it as ``Authorization: Bearer TOKEN`` or as ``?token=TOKEN`` in the URL (a browser
opening the canvas, or a websocket, cannot set headers). A request that carried a valid ``?token=`` gets
it back as an HttpOnly, SameSite=Strict cookie, so the canvas page's own requests and its websocket
carry it from then on without the web client knowing about tokens.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from server.http_errors import ApiError, Handler
from server.origin import Middleware, is_loopback

TOKEN_COOKIE = "latentloom_token"
TOKEN_QUERY = "token"


def needs_token(listen: str) -> bool:
    """Beyond loopback (a LAN or public address, or every address) anyone who can connect could drive it."""
    return not is_loopback(listen.strip("[]"))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def supplied_token(request: web.Request) -> str | None:
    """The token a request carries: the Authorization header, else ?token=, else the cookie."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.query.get(TOKEN_QUERY) or request.cookies.get(TOKEN_COOKIE)


def token_matches(supplied: str | None, token: str) -> bool:
    # Constant-time: the comparison's duration says nothing about how much of a guess was right.
    return supplied is not None and hmac.compare_digest(supplied.encode(), token.encode())


def token_middleware(token: str) -> Middleware:
    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not token_matches(supplied_token(request), token):
            raise ApiError(
                401,
                "unauthorized",
                "this server needs its access token",
                details="send 'Authorization: Bearer TOKEN', or open the page with ?token=TOKEN",
            )
        response = await handler(request)
        if request.query.get(TOKEN_QUERY) and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return require_token
