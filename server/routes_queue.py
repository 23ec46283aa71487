"""GET/POST /queue (list, delete, clear pending prompts) and POST /interrupt."""

from __future__ import annotations

from aiohttp import web

from server.http_errors import ApiError, flag, id_list, read_json_object, read_optional_json_object
from server.keys import QUEUE, WORKER


async def get_queue(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    return web.json_response(
        {
            "queue_running": [item.as_list() for item in queue.running()],
            "queue_pending": [item.as_list() for item in queue.pending()],
        }
    )


async def post_queue(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    queue = request.app[QUEUE]
    to_delete = id_list(body, "delete")
    clear = flag(body, "clear")
    cleared = queue.clear() if clear else 0
    deleted = queue.delete(to_delete) if to_delete else []
    return web.json_response({"deleted": deleted, "cleared": cleared})


async def post_interrupt(request: web.Request) -> web.Response:
    """Stop the running prompt; with {"prompt_id"}, only when that prompt is the one running."""
    body = await read_optional_json_object(request)
    prompt_id = body.get("prompt_id")
    if prompt_id is not None and not isinstance(prompt_id, str):
        raise ApiError(400, "invalid_request", "'prompt_id' must be a string")
    interrupted = request.app[WORKER].interrupt(prompt_id=prompt_id)
    return web.json_response({"interrupted": interrupted})


ROUTES = (
    web.get("/queue", get_queue),
    web.post("/queue", post_queue),
    web.post("/interrupt", post_interrupt),
)
