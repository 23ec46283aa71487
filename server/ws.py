"""GET /ws?clientId=...: the websocket that carries status and execution events (JSON text frames)."""

from __future__ import annotations

import logging
import uuid

import aiohttp
from aiohttp import web

from latentloom.engine import protocol
from server.keys import HUB, QUEUE

log = logging.getLogger(__name__)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    sid = request.query.get("clientId") or uuid.uuid4().hex
    hub = request.app[HUB]
    client = hub.connect(sid, ws)
    try:
        # The first frame tells the client its session id and the queue size.
        client.enqueue_event(protocol.status(request.app[QUEUE].remaining(), sid=sid))
        async for message in ws:
            # Clients may send frames (ComfyUI's feature flags); nothing is asked of the server yet.
            if message.type == aiohttp.WSMsgType.ERROR:
                log.info("websocket %s closed with %s", sid, ws.exception())
    finally:
        await hub.disconnect(client)
    return ws


ROUTES = (web.get("/ws", websocket),)
