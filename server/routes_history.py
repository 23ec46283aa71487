"""GET /history, GET /history/{prompt_id}, POST /history (delete or clear)."""

from __future__ import annotations

from aiohttp import web

from server.http_errors import ApiError, flag, id_list, read_json_object
from server.keys import HISTORY


def _count(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", f"'{name}' must be a whole number, got {raw[:40]!r}") from None
    if value < 0:
        raise ApiError(400, "invalid_request", f"'{name}' must not be negative")
    return value


async def get_history(request: web.Request) -> web.Response:
    max_items = _count(request, "max_items")
    offset = _count(request, "offset")
    return web.json_response(request.app[HISTORY].latest(max_items=max_items, offset=offset))


async def get_history_entry(request: web.Request) -> web.Response:
    """ComfyUI answers ``{}`` for an unknown id (clients poll until the entry appears)."""
    prompt_id = request.match_info["prompt_id"]
    entry = request.app[HISTORY].get(prompt_id)
    return web.json_response({prompt_id: entry} if entry is not None else {})


async def post_history(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    history = request.app[HISTORY]
    to_delete = id_list(body, "delete")
    clear = flag(body, "clear")
    if clear:
        history.clear()
    deleted = history.delete(to_delete) if to_delete else []
    return web.json_response({"deleted": deleted, "cleared": clear})


ROUTES = (
    web.get("/history", get_history),
    web.get("/history/{prompt_id}", get_history_entry),
    web.post("/history", post_history),
)
