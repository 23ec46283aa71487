"""GET /ws?clientId=...: the websocket that carries status and execution events, and live previews.

Server → client: JSON text frames (latentloom.engine.protocol), plus binary preview frames for clients
that asked (server.hub says which kind goes to whom). Client → server: ComfyUI's
``{"type": "feature_flags", "data": {"supports_preview_metadata": true}}`` asks for previews with
metadata (kind 4); feature_flags without that flag asks for plain previews (kind 1). Other frames are
ignored; a frame over MAX_CLIENT_FRAME_BYTES closes the socket (aiohttp answers 1009, message too big).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from latentloom.engine import protocol
from server.hub import ClientConnection, WebSocketHub
from server.keys import CONFIG, HUB, QUEUE

log = logging.getLogger(__name__)

# Clients send only small control frames (feature flags); anything larger is refused unread.
MAX_CLIENT_FRAME_BYTES = 64 * 1024
FEATURE_FLAGS = "feature_flags"


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_CLIENT_FRAME_BYTES)
    await ws.prepare(request)
    sid = request.query.get("clientId") or uuid.uuid4().hex
    config = request.app[CONFIG]
    hub = request.app[HUB]
    transport = request.transport
    abort = transport.abort if transport is not None else None
    client = hub.connect(sid, ws, max_pending=config.ws_max_pending_frames, abort=abort)
    previews_on = config.preview_method != "none"
    try:
        # The first frame tells the client its session id and the queue size.
        client.enqueue_event(protocol.status(request.app[QUEUE].remaining(), sid=sid))
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                _on_client_frame(hub, client, message.data, previews_on=previews_on)
            elif message.type == aiohttp.WSMsgType.ERROR:
                log.info("websocket %s closed with %s", sid, ws.exception())
    finally:
        await hub.disconnect(client)
    return ws


def _on_client_frame(hub: WebSocketHub, client: ClientConnection, text: str, *, previews_on: bool) -> None:
    """Act on a client's control frame; frames of other types (or not JSON) are ignored."""
    flags = feature_flags(text)
    if flags is None or not previews_on:
        return
    hub.want_previews(client, with_metadata=flags.get("supports_preview_metadata") is True)


def feature_flags(text: str) -> dict[str, Any] | None:
    """The data of a feature_flags frame, or None for any other frame."""
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    if not isinstance(frame, dict) or frame.get("type") != FEATURE_FLAGS:
        return None
    data = frame.get("data")
    return data if isinstance(data, dict) else {}


ROUTES = (web.get("/ws", websocket),)
