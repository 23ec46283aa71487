"""Live latent previews over the websocket of a real server running the tiny SD1.5-layout checkpoint.

Binary frames follow ComfyUI's layout (web/app/protocol.js decodePreviewFrame reads them): kind 4 =
uint32 kind, uint32 metadata length, JSON metadata, JPEG; kind 1 = uint32 kind, uint32 format, JPEG.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import struct
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from PIL import Image
from server_helpers import EVENT_TIMEOUT, connect, submit
from support.checkpoint_factory import write_tiny_sd15_checkpoint

from latentloom.api import PreviewSettings
from server.cli import build_parser
from server.composition import build_app, compose
from server.config import Config
from server.keys import HUB

CHECKPOINT = "tiny-sd15.safetensors"
STEPS = 3
WIDTH, HEIGHT = 96, 64  # a 12×8 latent: previews are latent-sized (latent2rgb), width ≠ height


def txt2img(seed: int = 1) -> dict[str, Any]:
    """loader → two prompts → empty latent → KSampler (node "3") → decode → save."""
    return {
        "4": {"class_type": "CheckpointLoader", "inputs": {"ckpt_name": CHECKPOINT}},
        "5": {"class_type": "EmptyLatent", "inputs": {"width": WIDTH, "height": HEIGHT, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red cube", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed, "steps": STEPS, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
                "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },  # fmt: skip
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "preview", "images": ["8", 0]}},
    }


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sd15_checkpoint(tmp_path_factory.mktemp("checkpoint") / CHECKPOINT)


def base_dir(tmp_path: Path, checkpoint: Path) -> Path:
    folder = tmp_path / "base" / "models" / "checkpoints"
    folder.mkdir(parents=True)
    shutil.copyfile(checkpoint, folder / CHECKPOINT)
    return tmp_path / "base"


async def serve(aiohttp_client, tmp_path: Path, checkpoint: Path, **settings: Any):
    config = Config(base_dir=base_dir(tmp_path, checkpoint), web_root=tmp_path / "web", **settings)
    return await aiohttp_client(build_app(config))


@pytest_asyncio.fixture
async def client(aiohttp_client, tmp_path: Path, tiny_checkpoint: Path):
    return await serve(aiohttp_client, tmp_path, tiny_checkpoint)


async def ask_for_previews(client, ws, sid: str, flags: dict[str, Any]) -> None:
    """Send feature_flags and wait until the hub has read them (the next prompt then sees the client)."""
    await ws.send_str(json.dumps({"type": "feature_flags", "data": flags}))
    hub = client.server.app[HUB]
    deadline = asyncio.get_running_loop().time() + EVENT_TIMEOUT  # by the clock: a loaded machine sleeps long
    while asyncio.get_running_loop().time() < deadline:
        if hub.client(sid) is not None and hub.client(sid).preview_kind is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server did not take {sid}'s feature flags")


async def frames_until_done(ws, prompt_id: str) -> tuple[list[dict], list[bytes]]:
    """(JSON events, binary frames) up to ``executing`` null for ``prompt_id``."""
    events: list[dict] = []
    binary: list[bytes] = []
    while True:
        message = await asyncio.wait_for(ws.receive(), EVENT_TIMEOUT)
        if message.type == aiohttp.WSMsgType.BINARY:
            binary.append(message.data)
            continue
        assert message.type == aiohttp.WSMsgType.TEXT, message
        event = message.json()
        events.append(event)
        if event["type"] == "executing" and event["data"]["node"] is None and event["data"]["prompt_id"] == prompt_id:
            return events, binary


def decode_kind4(frame: bytes) -> tuple[dict[str, Any], bytes]:
    kind, length = struct.unpack(">II", frame[:8])
    assert kind == 4
    return json.loads(frame[8 : 8 + length].decode("utf-8")), frame[8 + length :]


def jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        return image.size


@pytest.mark.asyncio
async def test_a_client_that_asked_receives_kind_4_previews_naming_the_sampler_and_prompt(client):
    ws = await connect(client, "alice")
    await ask_for_previews(client, ws, "alice", {"supports_preview_metadata": True})
    prompt_id = (await submit(client, txt2img(), client_id="alice"))["prompt_id"]
    events, binary = await frames_until_done(ws, prompt_id)

    assert len(binary) == STEPS == len([e for e in events if e["type"] == "progress"])
    for frame in binary:
        metadata, image = decode_kind4(frame)
        assert metadata == {
            "node_id": "3", "prompt_id": prompt_id, "display_node_id": "3", "parent_node_id": None,
            "real_node_id": "3", "image_type": "image/jpeg",
        }  # fmt: skip
        assert jpeg_size(image) == (WIDTH // 8, HEIGHT // 8)
    assert any(e["type"] == "execution_success" for e in events)
    await ws.close()


@pytest.mark.asyncio
async def test_feature_flags_without_metadata_get_kind_1_frames(client):
    ws = await connect(client, "old")
    await ask_for_previews(client, ws, "old", {})
    prompt_id = (await submit(client, txt2img(seed=2), client_id="old"))["prompt_id"]
    _, binary = await frames_until_done(ws, prompt_id)
    assert len(binary) == STEPS
    for frame in binary:
        assert struct.unpack(">II", frame[:8]) == (1, 1)  # PREVIEW_IMAGE, JPEG
        assert jpeg_size(frame[8:]) == (WIDTH // 8, HEIGHT // 8)
    await ws.close()


@pytest.mark.asyncio
async def test_previews_follow_the_prompts_routing_and_skip_clients_that_did_not_ask(client):
    watcher = await connect(client, "watcher")
    await ask_for_previews(client, watcher, "watcher", {"supports_preview_metadata": True})
    plain = await connect(client, "plain")

    # The plain client's prompt: its events go to it alone, and it asked for no previews.
    own_id = (await submit(client, txt2img(seed=3), client_id="plain"))["prompt_id"]
    events, binary = await frames_until_done(plain, own_id)
    assert binary == [] and len([e for e in events if e["type"] == "progress"]) == STEPS

    # A prompt without client_id is everyone's: both hear it, only the watcher gets previews.
    shared_id = (await submit(client, txt2img(seed=4)))["prompt_id"]
    _, plain_binary = await frames_until_done(plain, shared_id)
    watcher_events, watcher_binary = await frames_until_done(watcher, shared_id)
    assert plain_binary == []
    assert [decode_kind4(f)[0]["prompt_id"] for f in watcher_binary] == [shared_id] * STEPS
    # The watcher heard nothing of the plain client's prompt.
    assert not any(e["data"].get("prompt_id") == own_id for e in watcher_events)
    await watcher.close()
    await plain.close()


@pytest.mark.asyncio
async def test_preview_method_none_sends_no_binary_frames(aiohttp_client, tmp_path, tiny_checkpoint):
    client = await serve(aiohttp_client, tmp_path, tiny_checkpoint, preview_method="none")
    ws = await connect(client, "alice")
    await ws.send_str(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    prompt_id = (await submit(client, txt2img(seed=5), client_id="alice"))["prompt_id"]
    events, binary = await frames_until_done(ws, prompt_id)
    assert binary == []
    assert len([e for e in events if e["type"] == "progress"]) == STEPS
    await ws.close()


def test_the_cli_flag_reaches_the_nodes_preview_settings(tmp_path):
    args = build_parser().parse_args(["serve", "--preview-method", "none"])
    assert args.preview_method == "none"
    assert build_parser().parse_args(["serve"]).preview_method == "latent2rgb"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--preview-method", "taesd"])
    composition = compose(Config(base_dir=tmp_path, preview_method="none"))
    assert composition.services.get(PreviewSettings) == PreviewSettings("none")
    assert composition.registry.get("KSampler").previews == PreviewSettings("none")
