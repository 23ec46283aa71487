"""Every failed request answers JSON: ``{"error": {"type", "message", "details"}}``, never an HTML page.

Handlers raise ApiError for a bad request; the middleware also turns aiohttp's own HTTP errors (404,
405, 413, ...) and unexpected exceptions into that shape, so the server keeps serving after any request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any

from aiohttp import web

from server.safe_json import JsonBodyError, loads_strict

log = logging.getLogger(__name__)

# Bodies up to this size are parsed on the event loop (about a millisecond); larger ones in a thread.
_PARSE_INLINE_BYTES = 256 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# aiohttp's HTTP errors by status, named the way our error bodies name them.
_HTTP_ERROR_TYPES = MappingProxyType(
    {
        400: "bad_request",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "request_too_large",
        415: "unsupported_media_type",
    }
)


class ApiError(Exception):
    """A request the server refuses: HTTP status, a machine-readable type and a message for people."""

    def __init__(self, status: int, error_type: str, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.error_type, "message": self.message, "details": self.details}}


def error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error_type = _HTTP_ERROR_TYPES.get(exc.status, "http_error")
        # aiohttp's text says what was wrong (e.g. the body size limit); the reason is the status name.
        return error_response(ApiError(exc.status, error_type, exc.reason, details=exc.text or ""))
    except Exception:
        log.exception("unexpected error while handling %s %s", request.method, request.path)
        return error_response(
            ApiError(500, "internal_error", "the server failed to handle this request", details=request.path)
        )


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body parsed as a JSON object, whatever its Content-Type says (ComfyUI clients vary)."""
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        # Large bodies parse off the event loop (strict: no NaN/Infinity, bounded nesting).
        body = await asyncio.to_thread(loads_strict, raw) if len(raw) > _PARSE_INLINE_BYTES else loads_strict(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, JsonBodyError) as exc:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON", details=str(exc)) from None
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise ApiError(400, "invalid_json", f"the request body must be a JSON object, got {kind}")
    return body


async def read_optional_json_object(request: web.Request) -> dict[str, Any]:
    """Like read_json_object, but an empty body means ``{}`` (e.g. POST /interrupt)."""
    if not (await request.read()).strip():
        return {}
    return await read_json_object(request)


def id_list(body: dict[str, Any], key: str) -> list[str]:
    """``body[key]`` as a list of string ids; ApiError naming the key when it is something else."""
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError(400, "invalid_request", f"'{key}' must be a list of prompt id strings")
    return value


def flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ApiError(400, "invalid_request", f"'{key}' must be true or false, got {type(value).__name__}")
    return value
