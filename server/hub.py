"""The websocket hub: connected clients by session id, and the one door events use to reach them.

``post`` is thread-safe and is the single point where events cross from the worker thread into the
event loop (``loop.call_soon_threadsafe``). Each client has its own bounded frame queue and sender task,
so one slow client neither reorders, delays nor grows the memory of another's events.

Live previews (binary frames) go only to clients that asked (``want_previews``), following the same
routing as the event they ride on (the prompt's client, or everyone for a prompt without client_id):
feature_flags with supports_preview_metadata → kind 4 (PREVIEW_IMAGE_WITH_METADATA); feature_flags
without it → kind 1 (PREVIEW_IMAGE); no feature_flags → JSON frames only. A preview is encoded (in the
posting thread, i.e. the worker, never the event loop) only when at least one recipient wants it.

Slow readers: a preview is dropped when the client already has ``preview_backlog`` frames waiting; a
text frame that would exceed ``max_pending`` first evicts the waiting previews, and when the queue is
still full the client is disconnected with close code 1008 (policy violation) and a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable

import aiohttp
from aiohttp import web

from latentloom.api.preview import PreviewImage
from latentloom.engine import protocol
from latentloom.engine.protocol import Event

log = logging.getLogger(__name__)

_SEND_ERRORS = (ConnectionError, aiohttp.ClientError, RuntimeError)
MAX_PENDING_FRAMES = 1024
PREVIEW_BACKLOG = 8  # previews wait only behind a short queue: a stale preview is worth nothing
CLOSE_TIMEOUT_SECONDS = 2.0  # a reader that does not read may not answer the close either
OVERFLOW_CLOSE_CODE = aiohttp.WSCloseCode.POLICY_VIOLATION

Frame = str | bytes


def encode_event(event: Event) -> str:
    """ComfyUI's text frame: ``{"type": ..., "data": {...}}``."""
    return json.dumps(event.to_wire())


class ClientConnection:
    """One websocket, its bounded queue of frames and the task that sends them in order."""

    def __init__(
        self,
        sid: str,
        ws: web.WebSocketResponse,
        *,
        max_pending: int = MAX_PENDING_FRAMES,
        preview_backlog: int = PREVIEW_BACKLOG,
        abort: Callable[[], None] | None = None,
    ) -> None:
        self.sid = sid
        self.ws = ws
        # Drops the TCP connection at once (transport.abort): a plain close would wait to flush the
        # frames a reader that never reads will never take.
        self._abort = abort
        self.max_pending = max(1, max_pending)
        self.preview_backlog = max(0, min(preview_backlog, self.max_pending))
        # The binary preview kind this client takes (protocol.PREVIEW_IMAGE or ..._WITH_METADATA); None: none.
        self.preview_kind: int | None = None
        self.dropped_previews = 0
        self.overflowed = False
        self._frames: deque[tuple[Frame, bool]] = deque()  # (frame, is_preview)
        self._ready = asyncio.Event()
        self._closer: asyncio.Task[None] | None = None
        self._sender = asyncio.create_task(self._send_frames(), name=f"ws-sender-{sid}")

    @property
    def pending(self) -> int:
        return len(self._frames)

    def enqueue(self, frame: Frame) -> None:
        """Queue a frame that must arrive; a full queue evicts previews, then disconnects the client."""
        if self.overflowed:
            return
        if len(self._frames) >= self.max_pending:
            self._evict_previews()
        if len(self._frames) >= self.max_pending:
            self._overflow()
            return
        self._push(frame, is_preview=False)

    def enqueue_preview(self, frame: bytes) -> None:
        """Queue a preview unless the client is behind (then it is dropped: the next one supersedes it)."""
        if self.overflowed:
            return
        if len(self._frames) >= self.preview_backlog:
            self.dropped_previews += 1
            return
        self._push(frame, is_preview=True)

    def enqueue_event(self, event: Event) -> None:
        self.enqueue(encode_event(event))

    def _push(self, frame: Frame, *, is_preview: bool) -> None:
        self._frames.append((frame, is_preview))
        self._ready.set()

    def _evict_previews(self) -> None:
        kept = deque(item for item in self._frames if not item[1])
        self.dropped_previews += len(self._frames) - len(kept)
        self._frames = kept

    def _overflow(self) -> None:
        self.overflowed = True
        log.warning(
            "websocket %s: %d frames waiting (the client reads too slowly); disconnecting it with code %d",
            self.sid, len(self._frames), OVERFLOW_CLOSE_CODE,
        )  # fmt: skip
        self._frames.clear()
        self._closer = asyncio.create_task(self._close_slow_reader(), name=f"ws-close-{self.sid}")

    async def _close_slow_reader(self) -> None:
        self._sender.cancel()
        await asyncio.wait([self._sender])
        try:
            await asyncio.wait_for(
                self.ws.close(code=OVERFLOW_CLOSE_CODE, message=b"too many events waiting: the client reads too slowly"),
                CLOSE_TIMEOUT_SECONDS,
            )
        except TimeoutError:
            log.info("websocket %s: no close handshake within %.0f s", self.sid, CLOSE_TIMEOUT_SECONDS)
        finally:
            # Whatever close managed, the connection goes now: a graceful transport close would wait for
            # the unread frames to flush, which never happens, and the handler would never see the end.
            if self._abort is not None:
                self._abort()

    async def _send_frames(self) -> None:
        while True:
            while not self._frames:
                self._ready.clear()
                await self._ready.wait()
            frame, _ = self._frames.popleft()
            try:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame)
            except _SEND_ERRORS as exc:
                # The client went away; its handler notices the closed socket and disconnects it.
                log.info("websocket %s: send failed (%s); dropping its remaining events", self.sid, exc)
                return

    async def stop(self) -> None:
        """Stop the sender (its socket is closed, so frames still queued cannot be delivered)."""
        self._sender.cancel()
        tasks = [self._sender] if self._closer is None else [self._sender, self._closer]
        await asyncio.wait(tasks)


class WebSocketHub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._clients: dict[str, ClientConnection] = {}
        # Sids of clients that want previews; replaced (never mutated) so the worker thread reads it safely.
        self._watchers: frozenset[str] = frozenset()

    # -- any thread -------------------------------------------------------------------------------

    def post(self, event: Event, *, sid: str | None = None) -> None:
        """Send ``event`` to client ``sid``, or to every client when ``sid`` is None. Thread-safe.

        A preview riding on the event is encoded here, in the caller's thread, only if a recipient wants it.
        """
        image = self._encode_preview(event, sid) if event.preview is not None else None
        try:
            self._loop.call_soon_threadsafe(self._dispatch, event, sid, image)
        except RuntimeError:
            # Only after shutdown closed the loop: nobody is connected to receive it.
            log.debug("event %s after the event loop closed; not sent", event.type)

    def post_queue_status(self, queue_remaining: int) -> None:
        """Tell every client the queue size (PromptQueue's on_change). Thread-safe."""
        self.post(protocol.status(queue_remaining))

    def _encode_preview(self, event: Event, sid: str | None) -> bytes | None:
        watchers = self._watchers
        if not (sid in watchers if sid is not None else watchers):
            return None
        preview = event.preview
        if not isinstance(preview, PreviewImage):
            log.warning("event %s carries a %s, not a PreviewImage; preview not sent", event.type, type(preview).__name__)
            return None
        try:
            return preview.encode()
        except Exception:
            # A preview is decoration: a failing encoder must not fail the node that offered it.
            log.exception("node %s: encoding its preview failed; preview not sent", event.data.get("node"))
            return None

    # -- event loop only --------------------------------------------------------------------------

    def _dispatch(self, event: Event, sid: str | None, image: bytes | None) -> None:
        try:
            frame = encode_event(event)
        except (TypeError, ValueError):
            log.exception("event %s has data that is not JSON; not sent", event.type)
            return
        if sid is None:
            recipients = list(self._clients.values())
        else:
            recipients = [client] if (client := self._clients.get(sid)) is not None else []
        previews = _PreviewFrames(event, image) if image is not None else None
        for client in recipients:
            client.enqueue(frame)
            if previews is not None and client.preview_kind is not None:
                client.enqueue_preview(previews.frame(client.preview_kind))

    def connect(
        self,
        sid: str,
        ws: web.WebSocketResponse,
        *,
        max_pending: int = MAX_PENDING_FRAMES,
        abort: Callable[[], None] | None = None,
    ) -> ClientConnection:
        """Register a socket under ``sid``; a reconnect with the same sid takes over its events.

        ``abort`` drops the connection outright, for a client too slow to take even the close frame."""
        client = ClientConnection(sid, ws, max_pending=max_pending, abort=abort)
        self._clients[sid] = client
        self._refresh_watchers()
        return client

    def want_previews(self, client: ClientConnection, *, with_metadata: bool) -> None:
        """The client asked for previews (feature_flags): kind 4 frames with metadata, else kind 1."""
        client.preview_kind = protocol.PREVIEW_IMAGE_WITH_METADATA if with_metadata else protocol.PREVIEW_IMAGE
        self._refresh_watchers()

    def client(self, sid: str) -> ClientConnection | None:
        return self._clients.get(sid)

    async def disconnect(self, client: ClientConnection) -> None:
        if self._clients.get(client.sid) is client:
            del self._clients[client.sid]
            self._refresh_watchers()
        await client.stop()

    async def close_all(self) -> None:
        """Close every socket (server shutdown); their handlers then disconnect them."""
        for client in list(self._clients.values()):
            await client.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def _refresh_watchers(self) -> None:
        self._watchers = frozenset(sid for sid, c in self._clients.items() if c.preview_kind is not None)


class _PreviewFrames:
    """The binary frames of one preview, built once per kind however many clients receive it."""

    def __init__(self, event: Event, image: bytes) -> None:
        self._event = event
        self._image = image
        self._frames: dict[int, bytes] = {}

    def frame(self, kind: int) -> bytes:
        if kind not in self._frames:
            image_type = self._event.preview.image_type
            if kind == protocol.PREVIEW_IMAGE_WITH_METADATA:
                data = self._event.data
                self._frames[kind] = protocol.preview_metadata_frame(
                    self._image, prompt_id=data["prompt_id"], node_id=data["node"], image_type=image_type
                )
            else:
                self._frames[kind] = protocol.preview_image_frame(self._image, image_type=image_type)
        return self._frames[kind]
