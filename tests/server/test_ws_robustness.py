"""Websocket hub robustness (#9): slow readers stay bounded and are cut off alone; floods hurt nobody.

The bounded queue is checked exactly on a ClientConnection over a socket that never finishes a send;
the real-port tests use a raw TCP client with a tiny receive buffer that never reads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from server_helpers import connect, events_until_done, of_prompt, submit, sum_prompt

from latentloom.api import IntInput, NodeSchema, NodeType, Output, PreviewImage, hookimpl
from server.composition import build_app
from server.config import Config
from server.hub import OVERFLOW_CLOSE_CODE, ClientConnection
from server.keys import HUB
from server.ws import MAX_CLIENT_FRAME_BYTES

pytestmark = pytest.mark.asyncio


class StuckSocket:
    """A websocket whose peer never reads: every send waits forever; close is recorded."""

    def __init__(self) -> None:
        self.sent: list[str | bytes] = []
        self.closed_with: int | None = None
        self._never = asyncio.Event()

    async def send_str(self, frame: str) -> None:
        self.sent.append(frame)
        await self._never.wait()

    async def send_bytes(self, frame: bytes) -> None:
        await self.send_str(frame)  # type: ignore[arg-type]

    async def close(self, *, code: int, message: bytes) -> bool:
        self.closed_with = code
        return True


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_previews_are_dropped_first_and_a_reader_that_stays_behind_is_closed():
    socket_ = StuckSocket()
    client = ClientConnection("slow", socket_, max_pending=6, preview_backlog=2)  # type: ignore[arg-type]
    client.enqueue("first")
    await settle()  # the sender took "first" and is stuck sending it
    assert socket_.sent == ["first"] and client.pending == 0

    client.enqueue_preview(b"p1")
    client.enqueue_preview(b"p2")
    client.enqueue_preview(b"p3")  # two frames already wait: dropped
    assert client.pending == 2 and client.dropped_previews == 1

    for index in range(4):
        client.enqueue(f"text {index}")
    assert client.pending == 6  # full: p1, p2 and four text frames
    client.enqueue("text 4")  # evicts the two previews instead of growing
    assert client.pending == 5 and client.dropped_previews == 3 and not client.overflowed
    client.enqueue("text 5")
    client.enqueue("text 6")  # still full after eviction: the client is cut off
    assert client.overflowed and client.pending == 0
    client.enqueue("text 7")
    assert client.pending == 0  # nothing more is queued for it
    await client.stop()
    assert socket_.closed_with == OVERFLOW_CLOSE_CODE


PREVIEW_BYTES = bytes(range(256)) * 256  # 64 KiB: a few dozen fill a stalled socket's kernel buffers
MAX_PENDING = 256


class PreviewSteps(NodeType):
    """Reports ``steps`` progress events about a millisecond apart, each offering a 64 KiB preview."""

    schema = NodeSchema(
        type="TestPreviewSteps", category="testing", required=(IntInput("steps", default=10, max=100_000),),
        outputs=(Output("INT"),),
    )  # fmt: skip

    def execute(self, ctx, steps):
        for step in range(steps):
            time.sleep(0.001)
            ctx.progress(step + 1, steps, preview=PreviewImage(encode=lambda: PREVIEW_BYTES))
        return (steps,)


class PreviewPack:
    __name__ = "preview_pack"

    @hookimpl
    def register_nodes(self, registry, services):
        registry.register(PreviewSteps(), source="preview_pack")


def preview_steps_prompt(steps: int) -> dict:
    return {
        "1": {"class_type": "TestPreviewSteps", "inputs": {"steps": steps}},
        "2": {"class_type": "TestSaveText", "inputs": {"value": ["1", 0], "filename_prefix": "steps"}},
    }


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(base_dir=tmp_path, web_root=tmp_path / "web", max_body_mb=1.0, ws_max_pending_frames=MAX_PENDING)


@pytest_asyncio.fixture
async def client(aiohttp_client, config, fake_pack):
    return await aiohttp_client(build_app(config, extra_packs=[fake_pack, PreviewPack()]))


def open_stalled_socket(host: str, port: int, sid: str) -> socket.socket:
    """A websocket handshake over a raw socket with a tiny receive buffer; the caller never reads again."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    raw.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws?clientId={sid} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    raw.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    raw.sendall(masked_text_frame(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})))
    return raw


def masked_text_frame(text: str) -> bytes:
    """A final text frame as a client sends it (RFC 6455: clients mask their payload), under 126 bytes."""
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    return struct.pack(">BB", 0x81, 0x80 | len(payload)) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def wait_until(condition, *, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_a_reader_that_never_reads_is_cut_off_without_stalling_the_worker_or_others(client):
    hub = client.server.app[HUB]
    stalled = await asyncio.to_thread(open_stalled_socket, client.server.host, client.server.port, "stalled")
    try:
        await wait_until(lambda: (c := hub.client("stalled")) is not None and c.preview_kind is not None)
        connection = hub.client("stalled")
        ws = await connect(client, "alice")
        # No client_id: both clients get every event; previews go to the stalled one, which asked.
        steps = 4 * MAX_PENDING
        prompt_id = (await submit(client, preview_steps_prompt(steps)))["prompt_id"]
        events = of_prompt(await events_until_done(ws, prompt_id), prompt_id)
        assert len([e for e in events if e["type"] == "progress"]) == steps
        assert "execution_success" in [e["type"] for e in events]

        await wait_until(lambda: hub.client("stalled") is None)
        # Its previews were dropped first, then it was cut off instead of queueing more.
        assert connection.dropped_previews > 0 and connection.overflowed and connection.pending == 0
        # The worker goes on: the next prompt runs and alice hears all of it.
        after = (await submit(client, sum_prompt(4, 5), client_id="alice"))["prompt_id"]
        events = of_prompt(await events_until_done(ws, after), after)
        assert events[-2]["type"] == "execution_success"
        await ws.close()
    finally:
        stalled.close()


async def test_a_client_flooding_frames_does_not_stop_the_next_prompt(client, fake_pack):
    flooder = await client.ws_connect("/ws?clientId=flooder")
    for index in range(3000):
        await flooder.send_str(json.dumps({"type": "noise", "data": {"n": index}}))
    ws = await connect(client, "alice")
    prompt_id = (await submit(client, sum_prompt(20, 22), client_id="alice"))["prompt_id"]
    for index in range(3000):
        await flooder.send_str("not json at all" if index % 2 else json.dumps({"type": "feature_flags"}))
    events = of_prompt(await events_until_done(ws, prompt_id), prompt_id)
    assert "execution_success" in [e["type"] for e in events]
    assert ("TestAdd", "3") in fake_pack.runs

    # A frame larger than the limit is refused unread: the server closes that socket (1009, too big).
    await flooder.send_str("x" * (MAX_CLIENT_FRAME_BYTES + 1))
    while (await asyncio.wait_for(flooder.receive(), 10)).type not in (
        aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
    ):  # fmt: skip
        pass
    # The server answers 1009; the unread rest of the frame can make TCP reset before the client reads it.
    assert flooder.close_code in (aiohttp.WSCloseCode.MESSAGE_TOO_BIG, aiohttp.WSCloseCode.ABNORMAL_CLOSURE)
    await wait_until(lambda: client.server.app[HUB].client("flooder") is None)
    # Others are unaffected.
    again = (await submit(client, sum_prompt(1, 1), client_id="alice"))["prompt_id"]
    events = of_prompt(await events_until_done(ws, again), again)
    assert "execution_success" in [e["type"] for e in events]
    await ws.close()
