"""Workflow files through a real server: POST /prompt with a workflow or a PNG, /workflow/load and /convert.

Besides the fake pack of conftest.py, a second pack adds a node under ComfyUI's name (PrimitiveInt, our
IntConstant) and an output node that saves a PNG the way ComfyUI's SaveImage does (prompt and
extra_pnginfo as text chunks), so an image made from a posted workflow can be posted back.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient
from PIL import Image
from server_helpers import connect, events_until_done

from latentloom.api import (
    HiddenInput,
    IntInput,
    NodeResult,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
    hookimpl,
)
from latentloom.workflow import (
    load_workflow,
    png_text_chunks,
    read_png_metadata,
    workflow_to_comfy_api,
    workflow_to_comfy_ui,
    workflow_to_prompt,
)
from server.composition import build_app
from server.keys import REGISTRY

pytestmark = pytest.mark.asyncio


class IntConstant(NodeType):
    schema = NodeSchema(
        type="IntConstant",
        aliases=("PrimitiveInt",),
        category="testing",
        required=(IntInput("value", min=-1000, max=1000, control_after_generate=True),),
        outputs=(Output("INT"),),
    )

    def execute(self, ctx, value):
        return (value,)


class SavePng(NodeType):
    """Writes a 4x4 grey PNG whose shade is the value, with ComfyUI's "prompt" and extra_pnginfo chunks."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.schema = NodeSchema(
            type="TestSavePng",
            category="testing",
            output_node=True,
            required=(IntInput("value", min=0, max=255), StringInput("filename_prefix", default="png")),
            hidden=(HiddenInput("prompt", "PROMPT"), HiddenInput("extra_pnginfo", "EXTRA_PNGINFO")),
        )

    def execute(self, ctx, value, filename_prefix, prompt, extra_pnginfo):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        name = f"{filename_prefix}_{len(list(self.output_dir.glob('*.png'))):05d}.png"
        info = png_text_chunks(prompt=prompt, extra_pnginfo=extra_pnginfo)
        Image.new("L", (4, 4), value).save(self.output_dir / name, pnginfo=info)
        return NodeResult(ui={"images": [{"filename": name, "subfolder": "", "type": "output"}]})


class WorkflowPack:
    def __init__(self, output_dir: Path) -> None:
        self.__name__ = "workflow_pack"
        self.output_dir = output_dir

    @hookimpl
    def register_nodes(self, registry, services):
        registry.register(IntConstant(), source="workflow_pack")
        registry.register(SavePng(self.output_dir), source="workflow_pack")


def comfy_ui_workflow(*, a: int = 20, b: int = 22, prefix: str = "wf") -> dict[str, Any]:
    """ComfyUI 0.4 UI format, written by hand: PrimitiveInt → TestAdd.a (a converted widget), b as a
    widget value, the sum saved as a PNG; plus a Note, which never reaches the prompt."""
    node = {"flags": {}, "mode": 0, "size": [240, 80], "properties": {}}
    return {
        "last_node_id": 4,
        "last_link_id": 2,
        "nodes": [
            node | {"id": 1, "type": "PrimitiveInt", "pos": [0, 0], "order": 0,
                    "outputs": [{"name": "INT", "type": "INT", "links": [1], "slot_index": 0}],
                    "widgets_values": [a, "fixed"]},
            node | {"id": 2, "type": "TestAdd", "pos": [300, 0], "order": 1,
                    "inputs": [{"name": "a", "type": "INT", "link": 1, "widget": {"name": "a"}}],
                    "outputs": [{"name": "sum", "type": "INT", "links": [2], "slot_index": 0}],
                    "widgets_values": [0, b]},
            node | {"id": 3, "type": "TestSavePng", "pos": [600, 0], "order": 2,
                    "inputs": [{"name": "value", "type": "INT", "link": 2, "widget": {"name": "value"}}],
                    "widgets_values": [0, prefix]},
            node | {"id": 4, "type": "Note", "pos": [0, 200], "order": 3, "widgets_values": ["adds two"]},
        ],
        "links": [[1, 1, 0, 2, 0, "INT"], [2, 2, 0, 3, 0, "INT"]],
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }  # fmt: skip


def with_missing_nodes(workflow: dict[str, Any]) -> dict[str, Any]:
    extra = [
        {"id": 10 + i, "type": name, "pos": [0, 400], "size": [200, 60], "flags": {}, "order": 4 + i,
         "mode": 0, "properties": {}, "widgets_values": ["x"]}
        for i, name in enumerate(["Upscaler|pack", "Upscaler|pack", "FaceFix"])
    ]  # fmt: skip
    return workflow | {"nodes": [*workflow["nodes"], *extra], "last_node_id": 12}


def png_bytes(**chunks: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PNG", pnginfo=png_text_chunks(**chunks))
    return buffer.getvalue()


@pytest.fixture
def png_dir(config) -> Path:
    return config.folders().output / "pngs"


@pytest.fixture
def workflow_app(config, fake_pack, png_dir) -> web.Application:
    return build_app(config, extra_packs=[fake_pack, WorkflowPack(png_dir)])


@pytest_asyncio.fixture
async def wf_client(aiohttp_client: Any, workflow_app: web.Application) -> TestClient:
    return await aiohttp_client(workflow_app)


async def run_to_end(client: TestClient, *, params: dict | None = None, **post: Any) -> dict[str, Any]:
    """POST /api/prompt, wait for the prompt to finish, return its history entry."""
    ws = await connect(client, "wf-test")
    response = await client.post("/api/prompt", params={"client_id": "wf-test", **(params or {})}, **post)
    body = await response.json()
    assert response.status == 200, body
    await events_until_done(ws, body["prompt_id"])
    await ws.close()
    history = await (await client.get(f"/api/history/{body['prompt_id']}")).json()
    return history[body["prompt_id"]]


async def test_a_comfyui_ui_workflow_posted_runs_and_its_image_carries_the_graph(wf_client, png_dir):
    entry = await run_to_end(wf_client, json={"workflow": comfy_ui_workflow(a=20, b=22)})
    assert entry["status"]["status_str"] == "success"
    image_path = png_dir / entry["outputs"]["3"]["images"][0]["filename"]
    with Image.open(image_path) as image:
        assert image.getpixel((0, 0)) == 42  # 20 (from PrimitiveInt, our IntConstant) + 22
    metadata = read_png_metadata(image_path)
    # The prompt ran with our class names; the Note stayed in the editor.
    assert {n["class_type"] for n in metadata.prompt.values()} == {"IntConstant", "TestAdd", "TestSavePng"}
    # extra_pnginfo.workflow is ComfyUI's UI format with ComfyUI's class names, so ComfyUI opens it.
    assert metadata.workflow["version"] == 0.4
    comfy_types = [n["type"] for n in metadata.workflow["nodes"]]
    assert comfy_types == ["PrimitiveInt", "TestAdd", "TestSavePng", "Note"]


async def test_a_png_posted_raw_runs_the_workflow_it_carries(wf_client, png_dir):
    data = png_bytes(workflow=comfy_ui_workflow(a=100, b=7, prefix="again"))
    entry = await run_to_end(wf_client, data=data, headers={"Content-Type": "image/png"})
    assert entry["status"]["status_str"] == "success"
    image_path = png_dir / entry["outputs"]["3"]["images"][0]["filename"]
    assert image_path.name.startswith("again_")
    with Image.open(image_path) as image:
        assert image.getpixel((0, 0)) == 107
    assert read_png_metadata(image_path).workflow["nodes"][0]["widgets_values"] == [100, "fixed"]


async def test_a_png_holding_only_an_api_prompt_runs_that_prompt(wf_client, png_dir):
    prompt = {
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": 9}},
        "2": {"class_type": "TestSavePng", "inputs": {"value": ["1", 0], "filename_prefix": "api"}},
    }
    entry = await run_to_end(wf_client, data=png_bytes(prompt=prompt), headers={"Content-Type": "image/png"})
    with Image.open(png_dir / entry["outputs"]["2"]["images"][0]["filename"]) as image:
        assert image.getpixel((0, 0)) == 9


async def test_an_image_saved_from_a_workflow_can_be_posted_back(wf_client, png_dir):
    first = await run_to_end(wf_client, json={"workflow": comfy_ui_workflow(a=1, b=2)})
    saved = (png_dir / first["outputs"]["3"]["images"][0]["filename"]).read_bytes()
    second = await run_to_end(wf_client, data=saved, headers={"Content-Type": "image/png"})
    assert second["prompt"][2] == first["prompt"][2]  # the same prompt ran again


async def test_missing_node_types_answer_400_listing_them(wf_client):
    workflow = with_missing_nodes(comfy_ui_workflow())
    response = await wf_client.post("/api/prompt", json={"workflow": workflow})
    body = await response.json()
    assert response.status == 400
    assert body["error"]["type"] == "missing_node_types"
    assert body["error"]["message"] == "missing node types: FaceFix (1 node), Upscaler|pack (2 nodes)"
    assert body["error"]["extra_info"]["missing_node_types"] == {"FaceFix": 1, "Upscaler|pack": 2}
    assert body["node_errors"] == {}


async def test_a_png_without_a_graph_and_a_broken_workflow_answer_400_structured(wf_client):
    response = await wf_client.post("/prompt", data=png_bytes(), headers={"Content-Type": "image/png"})
    body = await response.json()
    assert response.status == 400 and body["error"]["type"] == "no_workflow_in_png"
    assert "carries no workflow" in body["error"]["message"]
    response = await wf_client.post("/prompt", json={"workflow": {"nodes": "many"}})
    body = await response.json()
    assert response.status == 400 and body["error"]["type"] == "invalid_workflow"


async def test_a_link_the_prompt_cannot_carry_is_a_400_conversion_error(wf_client):
    workflow = comfy_ui_workflow()
    workflow["nodes"][0]["mode"] = 2  # PrimitiveInt muted: TestAdd.a is linked from nothing that runs
    response = await wf_client.post("/prompt", json={"workflow": workflow})
    body = await response.json()
    assert response.status == 400 and body["error"]["type"] == "workflow_conversion_failed"
    [problem] = body["error"]["extra_info"]["problems"]
    assert (problem["node_id"], problem["input_name"]) == ("2", "a")
    assert "muted node 1" in problem["message"]


async def test_api_prompt_bodies_are_untouched_by_the_workflow_support(wf_client, png_dir):
    prompt = {
        "1": {"class_type": "IntConstant", "inputs": {"value": 5}},
        "2": {"class_type": "TestSavePng", "inputs": {"value": ["1", 0], "filename_prefix": "plain"}},
    }
    extra = {"extra_pnginfo": {"workflow": {"made_by": "a ComfyUI client"}}}
    entry = await run_to_end(wf_client, json={"prompt": prompt, "extra_data": extra})
    metadata = read_png_metadata(png_dir / entry["outputs"]["2"]["images"][0]["filename"])
    assert metadata.workflow == {"made_by": "a ComfyUI client"}
    assert metadata.prompt == prompt


async def test_load_turns_every_accepted_input_into_our_format(wf_client):
    workflow = comfy_ui_workflow(a=3, b=4)
    as_json = await (await wf_client.post("/api/workflow/load", json=workflow)).json()
    raw_png = await wf_client.post(
        "/api/workflow/load", data=png_bytes(workflow=workflow), headers={"Content-Type": "image/png"}
    )
    form = FormData()
    form.add_field("file", png_bytes(workflow=workflow), filename="shared.png", content_type="image/png")
    multipart = await wf_client.post("/api/workflow/load", data=form)
    assert raw_png.status == 200 and multipart.status == 200
    assert as_json["workflow"] == (await raw_png.json())["workflow"] == (await multipart.json())["workflow"]
    loaded = as_json["workflow"]
    assert loaded["format"] == "latentloom-workflow"
    nodes = {n["id"]: n for n in loaded["nodes"]}
    assert nodes[1]["type"] == "IntConstant" and nodes[1]["widgets"] == {"value": 3}
    assert nodes[1]["controls"] == {"value": "fixed"}
    assert nodes[2]["widgets"] == {"a": 0, "b": 4}
    assert as_json["missing_node_types"] == {} and as_json["problems"] == []


async def test_load_reports_missing_node_types_and_keeps_those_nodes(wf_client):
    body = await (await wf_client.post("/workflow/load", json=with_missing_nodes(comfy_ui_workflow()))).json()
    assert body["missing_message"] == "missing node types: FaceFix (1 node), Upscaler|pack (2 nodes)"
    kept = [n for n in body["workflow"]["nodes"] if n["type"] in ("FaceFix", "Upscaler|pack")]
    assert [n["unnamed_widgets"] for n in kept] == [["x"], ["x"], ["x"]]


async def test_load_of_an_api_prompt_gives_an_editable_workflow(wf_client):
    prompt = {"1": {"class_type": "PrimitiveInt", "inputs": {"value": 8}}}
    body = await (await wf_client.post("/workflow/load", json={"prompt": prompt})).json()
    [node] = body["workflow"]["nodes"]
    assert node["type"] == "IntConstant" and node["widgets"] == {"value": 8}


async def convert(client: TestClient, workflow: dict[str, Any], target: str) -> dict[str, Any]:
    response = await client.post("/workflow/convert", json={"workflow": workflow, "to": target})
    body = await response.json()
    assert response.status == 200, body
    return body


@pytest.mark.parametrize("target", ["prompt", "comfy_api", "comfy_ui", "ours"])
async def test_convert_gives_what_the_library_gives(wf_client, workflow_app, target):
    workflow = comfy_ui_workflow(a=6, b=7)
    registry = workflow_app[REGISTRY]
    ours = load_workflow(workflow, registry)
    expected = {
        "prompt": lambda: workflow_to_prompt(ours, registry)[0],
        "comfy_api": lambda: workflow_to_comfy_api(ours, registry)[0],
        "comfy_ui": lambda: workflow_to_comfy_ui(ours, registry),
        "ours": ours.to_json,
    }[target]()
    response = await wf_client.post("/api/workflow/convert", json={"workflow": workflow, "to": target})
    body = await response.json()
    assert response.status == 200, body
    assert body["result"] == json.loads(json.dumps(expected)) and body["problems"] == []


async def test_convert_to_a_prompt_names_each_class_as_its_target_does(wf_client):
    workflow = comfy_ui_workflow(a=6, b=7)
    ours = await convert(wf_client, workflow, "prompt")
    comfy = await convert(wf_client, workflow, "comfy_api")
    expected = {"inputs": {"value": 6}, "class_type": "IntConstant", "_meta": {"title": "IntConstant"}}
    assert ours["result"]["1"] == expected
    assert comfy["result"]["1"]["class_type"] == "PrimitiveInt"
    assert ours["result"]["2"]["inputs"] == {"a": ["1", 0], "b": 7}


async def test_convert_lists_missing_types_and_problems_and_refuses_unknown_targets(wf_client):
    workflow = with_missing_nodes(comfy_ui_workflow())
    body = await convert(wf_client, workflow, "prompt")
    assert body["missing_node_types"] == {"FaceFix": 1, "Upscaler|pack": 2}
    assert sorted(p["node_id"] for p in body["problems"]) == ["10", "11", "12"]
    response = await wf_client.post("/workflow/convert", json={"workflow": workflow, "to": "svg"})
    assert response.status == 400 and "'to' must be one of" in (await response.json())["error"]["message"]
