"""The standard text-to-image graph through the HTTP API and websocket of a real server, on a small checkpoint
with every key of a real SD1.5 file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from e2e_graphs import ALL_NODES, SAMPLING_AND_AFTER, canvas_workflow, txt2img_prompt
from PIL import Image
from safetensors import safe_open
from server_helpers import connect, events_until_done, of_prompt, submit
from support.checkpoint_factory import full_size_sd15_shapes

from latentloom.workflow.png import read_png_metadata
from server.composition import build_app
from server.config import Config

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def client(aiohttp_client, base_dir: Path, tmp_path: Path):
    """A client of the real app (first-party nodes, real port) over the base dir."""
    app = build_app(Config(base_dir=base_dir, web_root=tmp_path / "web"))
    return await aiohttp_client(app)


async def run_prompt(client, ws, prompt, **fields) -> tuple[str, list[dict]]:
    submitted = await submit(client, prompt, client_id="e2e", **fields)
    assert submitted["node_errors"] == {}
    events = of_prompt(await events_until_done(ws, submitted["prompt_id"]), submitted["prompt_id"])
    return submitted["prompt_id"], events


def ran(events: list[dict]) -> list[str]:
    return [e["data"]["node"] for e in events if e["type"] == "executing" and e["data"]["node"] is not None]


def cached(events: list[dict]) -> list[str]:
    return sorted(next(e for e in events if e["type"] == "execution_cached")["data"]["nodes"])


async def saved_png(client, prompt_id: str) -> bytes:
    history = await (await client.get(f"/api/history/{prompt_id}")).json()
    assert history[prompt_id]["status"]["status_str"] == "success", history[prompt_id]["status"]
    [image] = history[prompt_id]["outputs"]["9"]["images"]
    assert image["type"] == "output" and image["subfolder"] == ""
    response = await client.get("/api/view", params={"filename": image["filename"], "type": "output"})
    assert response.status == 200
    return await response.read()


async def test_txt2img_runs_over_http_and_the_png_carries_the_prompt_and_workflow(client, base_dir):
    ws = await connect(client, "e2e")
    prompt, workflow = txt2img_prompt(), canvas_workflow()
    prompt_id, events = await run_prompt(client, ws, prompt, extra_data={"extra_pnginfo": {"workflow": workflow}})
    assert ran(events) == ALL_NODES
    progress = [(e["data"]["value"], e["data"]["max"]) for e in events if e["type"] == "progress"]
    assert progress == [(1, 3), (2, 3), (3, 3)] and {e["data"]["node"] for e in events if e["type"] == "progress"} == {"3"}
    png = await saved_png(client, prompt_id)
    metadata = read_png_metadata(png)
    assert metadata.prompt == prompt and metadata.workflow == workflow
    saved = base_dir / "output" / "e2e_00001_.png"
    assert saved.read_bytes() == png
    with Image.open(saved) as picture:
        assert picture.size == (64, 64) and picture.mode == "RGB"
        assert np.asarray(picture).std() > 0  # random weights make noise, not a flat image
    await ws.close()


async def test_identical_resubmission_runs_nothing_and_a_new_seed_runs_only_sampling_onwards(client, base_dir):
    ws = await connect(client, "e2e")
    await run_prompt(client, ws, txt2img_prompt(seed=1))
    _, again = await run_prompt(client, ws, txt2img_prompt(seed=1))
    assert ran(again) == [] and cached(again) == sorted(ALL_NODES)
    assert [e["data"]["node"] for e in again if e["type"] == "executed"] == ["9"]  # its images are reported again
    _, reseeded = await run_prompt(client, ws, txt2img_prompt(seed=2))
    assert ran(reseeded) == SAMPLING_AND_AFTER
    assert cached(reseeded) == sorted(set(ALL_NODES) - set(SAMPLING_AND_AFTER))
    assert sorted(p.name for p in (base_dir / "output").iterdir()) == ["e2e_00001_.png", "e2e_00002_.png"]
    await ws.close()


async def test_a_comfyui_api_prompt_runs_unchanged_and_is_the_same_graph_as_ours(client):
    ws = await connect(client, "e2e")
    comfy_id, comfy_events = await run_prompt(client, ws, txt2img_prompt(comfy_names=True))
    assert ran(comfy_events) == ALL_NODES
    comfy_png = await saved_png(client, comfy_id)
    # Under our names the same graph has the same cache keys: nothing runs again.
    ours_id, ours_events = await run_prompt(client, ws, txt2img_prompt(comfy_names=False))
    assert ran(ours_events) == [] and cached(ours_events) == sorted(ALL_NODES)
    assert read_png_metadata(comfy_png).prompt["4"]["class_type"] == "CheckpointLoaderSimple"
    await ws.close()


async def test_a_bad_checkpoint_name_is_a_validation_error_naming_the_input(client):
    prompt = txt2img_prompt(ckpt_name="missing.safetensors")
    response = await client.post("/api/prompt", json={"prompt": prompt})
    body = await response.json()
    assert response.status == 400
    [error] = body["node_errors"]["4"]["errors"]
    assert error["type"] == "value_not_in_list" and error["details"] == "ckpt_name"
    assert "missing.safetensors" in error["message"] + str(error.get("extra_info"))


async def test_the_end_to_end_checkpoint_has_every_key_of_a_real_sd15_file(tiny_checkpoint):
    with safe_open(tiny_checkpoint, framework="pt") as file:
        keys = set(file.keys())
    assert keys == set(full_size_sd15_shapes())
