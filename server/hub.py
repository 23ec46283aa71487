"""The websocket hub: connected clients by session id, and the one door events use to reach them.

``post`` is thread-safe and is the single point where events cross from the worker thread into the
event loop (``loop.call_soon_threadsafe``). Each client has its own frame queue and sender task, so one
slow client neither reorders nor delays another's events.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
from aiohttp import web

from latentloom.engine import protocol
from latentloom.engine.protocol import Event

log = logging.getLogger(__name__)

_SEND_ERRORS = (ConnectionError, aiohttp.ClientError, RuntimeError)


def encode_event(event: Event) -> str:
    """ComfyUI's text frame: ``{"type": ..., "data": {...}}``."""
    return json.dumps(event.to_wire())


class ClientConnection:
    """One websocket and the task that sends its frames in order."""

    def __init__(self, sid: str, ws: web.WebSocketResponse) -> None:
        self.sid = sid
        self.ws = ws
        self._frames: asyncio.Queue[str] = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_frames(), name=f"ws-sender-{sid}")

    def enqueue(self, frame: str) -> None:
        self._frames.put_nowait(frame)

    def enqueue_event(self, event: Event) -> None:
        self.enqueue(encode_event(event))

    async def _send_frames(self) -> None:
        while True:
            frame = await self._frames.get()
            try:
                await self.ws.send_str(frame)
            except _SEND_ERRORS as exc:
                # The client went away; its handler notices the closed socket and disconnects it.
                log.info("websocket %s: send failed (%s); dropping its remaining events", self.sid, exc)
                return

    async def stop(self) -> None:
        """Stop the sender (its socket is closed, so frames still queued cannot be delivered)."""
        self._sender.cancel()
        await asyncio.wait([self._sender])


class WebSocketHub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._clients: dict[str, ClientConnection] = {}

    # -- any thread -------------------------------------------------------------------------------

    def post(self, event: Event, *, sid: str | None = None) -> None:
        """Send ``event`` to client ``sid``, or to every client when ``sid`` is None. Thread-safe."""
        try:
            self._loop.call_soon_threadsafe(self._dispatch, event, sid)
        except RuntimeError:
            # Only after shutdown closed the loop: nobody is connected to receive it.
            log.debug("event %s after the event loop closed; not sent", event.type)

    def post_queue_status(self, queue_remaining: int) -> None:
        """Tell every client the queue size (PromptQueue's on_change). Thread-safe."""
        self.post(protocol.status(queue_remaining))

    # -- event loop only --------------------------------------------------------------------------

    def _dispatch(self, event: Event, sid: str | None) -> None:
        try:
            frame = encode_event(event)
        except (TypeError, ValueError):
            log.exception("event %s has data that is not JSON; not sent", event.type)
            return
        if sid is None:
            for client in list(self._clients.values()):
                client.enqueue(frame)
        elif (client := self._clients.get(sid)) is not None:
            client.enqueue(frame)

    def connect(self, sid: str, ws: web.WebSocketResponse) -> ClientConnection:
        """Register a socket under ``sid``; a reconnect with the same sid takes over its events."""
        client = ClientConnection(sid, ws)
        self._clients[sid] = client
        return client

    async def disconnect(self, client: ClientConnection) -> None:
        if self._clients.get(client.sid) is client:
            del self._clients[client.sid]
        await client.stop()

    async def close_all(self) -> None:
        """Close every socket (server shutdown); their handlers then disconnect them."""
        for client in list(self._clients.values()):
            await client.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server shutdown")
