"""`latentloom run` on workflow files and PNGs, and `latentloom check` on the workflow corpus.

`check` runs against stand-ins for the SD nodes (tests/workflow/workflow_fixtures.py: ComfyUI's input
names, our type names with ComfyUI's as aliases), registered through the extra-pack hook.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from latentloom.api import HiddenInput, IntInput, NodeResult, NodeSchema, NodeType, StringInput, hookimpl
from latentloom.runtime.folders import ModelFolders
from latentloom.workflow import png_text_chunks, read_png_metadata
from server.cli import main

TESTS = Path(__file__).resolve().parents[1]
CORPUS = TESTS / "workflow" / "corpus"


def _fixture_schemas() -> list[NodeSchema]:
    path = TESTS / "workflow" / "workflow_fixtures.py"
    spec = importlib.util.spec_from_file_location("cli_workflow_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fixture_schemas()


class SchemaOnlyNode(NodeType):
    def __init__(self, schema: NodeSchema) -> None:
        self.schema = schema

    def execute(self, ctx: Any, **inputs: Any) -> NodeResult:
        return NodeResult(ui={"inputs": [inputs]})


class SdStandInPack:
    """The stand-in SD nodes; a type the first-party pack already provides is left to it."""

    __name__ = "sd_stand_ins"

    @hookimpl
    def register_nodes(self, registry, services):
        for schema in _fixture_schemas():
            if all(registry.get(name) is None for name in (schema.type, *schema.aliases)):
                registry.register(SchemaOnlyNode(schema), source="sd_stand_ins")


class SavePng(NodeType):
    """Saves like ComfyUI's SaveImage, into the model folders' output folder (which --out moves)."""

    def __init__(self, folders: ModelFolders) -> None:
        self.folders = folders
        self.schema = NodeSchema(
            type="CliSavePng",
            category="cli",
            output_node=True,
            required=(IntInput("value", min=0, max=255), StringInput("filename_prefix", default="png")),
            hidden=(HiddenInput("prompt", "PROMPT"), HiddenInput("extra_pnginfo", "EXTRA_PNGINFO")),
        )

    def execute(self, ctx, value, filename_prefix, prompt, extra_pnginfo):
        self.folders.output_dir.mkdir(parents=True, exist_ok=True)
        name = f"{filename_prefix}_{value}.png"
        info = png_text_chunks(prompt=prompt, extra_pnginfo=extra_pnginfo)
        Image.new("L", (4, 4), value).save(self.folders.output_dir / name, pnginfo=info)
        return NodeResult(ui={"images": [{"filename": name, "subfolder": "", "type": "output"}]})


class PngPack:
    __name__ = "png_pack"

    @hookimpl
    def register_nodes(self, registry, services):
        registry.register(SavePng(services.get(ModelFolders)), source="png_pack")


def sum_workflow(*, a: int = 2, b: int = 3, saver: str = "CliSaveText", prefix: str = "sum") -> dict:
    """ComfyUI's UI format: two numbers, their sum, saved."""
    node = {"flags": {}, "mode": 0, "size": [200, 60], "properties": {}}
    return {
        "last_node_id": 4,
        "last_link_id": 3,
        "nodes": [
            node | {"id": 1, "type": "CliNumber", "pos": [0, 0], "order": 0, "widgets_values": [a],
                    "outputs": [{"name": "INT", "type": "INT", "links": [1], "slot_index": 0}]},
            node | {"id": 2, "type": "CliNumber", "pos": [0, 100], "order": 1, "widgets_values": [b],
                    "outputs": [{"name": "INT", "type": "INT", "links": [2], "slot_index": 0}]},
            node | {"id": 3, "type": "CliAdd", "pos": [250, 0], "order": 2,
                    "inputs": [{"name": "a", "type": "INT", "link": 1, "widget": {"name": "a"}},
                               {"name": "b", "type": "INT", "link": 2, "widget": {"name": "b"}}],
                    "outputs": [{"name": "sum", "type": "INT", "links": [3], "slot_index": 0}],
                    "widgets_values": [0, 0]},
            node | {"id": 4, "type": saver, "pos": [500, 0], "order": 3,
                    "inputs": [{"name": "value", "type": "INT", "link": 3, "widget": {"name": "value"}}],
                    "widgets_values": [0, prefix]},
        ],
        "links": [[1, 1, 0, 3, 0, "INT"], [2, 2, 0, 3, 1, "INT"], [3, 3, 0, 4, 0, "INT"]],
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }  # fmt: skip


def write_png(path: Path, **chunks: Any) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PNG", pnginfo=png_text_chunks(**chunks))
    path.write_bytes(buffer.getvalue())
    return path


def run(argv: list[str], packs: list[Any], capsys) -> tuple[int, str]:
    code = main(argv, extra_packs=packs)
    return code, capsys.readouterr().out


def test_run_executes_a_comfyui_ui_workflow_file(cli_pack, tmp_path, capsys):
    workflow = tmp_path / "sum.json"
    workflow.write_text(json.dumps(sum_workflow(a=2, b=3)))
    code, out = run(["run", str(workflow), "--base-dir", str(tmp_path), "--no-progress"], [cli_pack], capsys)
    assert code == 0, out
    written = tmp_path.resolve() / "output" / "texts" / "sum_5.txt"
    assert out.splitlines() == [str(written)] and written.read_text() == "5"


def test_set_overrides_apply_to_the_converted_prompt(cli_pack, tmp_path, capsys):
    workflow = tmp_path / "sum.json"
    workflow.write_text(json.dumps(sum_workflow(a=2, b=3)))
    argv = ["run", str(workflow), "--base-dir", str(tmp_path), "--no-progress", "--set", "2.value=40"]
    code, out = run(argv, [cli_pack], capsys)
    assert code == 0 and Path(out.strip()).name == "sum_42.txt"


def test_run_on_a_png_runs_the_workflow_it_carries_and_embeds_it_in_the_new_image(cli_pack, tmp_path, capsys):
    source = write_png(tmp_path / "shared.png", workflow=sum_workflow(a=30, b=12, saver="CliSavePng"))
    out_dir = tmp_path / "elsewhere"
    argv = ["run", str(source), "--base-dir", str(tmp_path), "--out", str(out_dir), "--no-progress"]
    code, out = run(argv, [cli_pack, PngPack()], capsys)
    assert code == 0, out
    made = out_dir.resolve() / "sum_42.png"  # --out reached the node through ModelFolders
    assert out.splitlines() == [str(made)]
    with Image.open(made) as image:
        assert image.getpixel((0, 0)) == 42
    metadata = read_png_metadata(made)
    assert metadata.prompt["3"] == {"inputs": {"a": ["1", 0], "b": ["2", 0]}, "class_type": "CliAdd",
                                    "_meta": {"title": "CliAdd"}}  # fmt: skip
    assert [n["widgets_values"] for n in metadata.workflow["nodes"]][:2] == [[30], [12]]
    # The new image runs again in turn.
    argv = ["run", str(made), "--base-dir", str(tmp_path), "--no-progress"]
    code, out = run(argv, [cli_pack, PngPack()], capsys)
    assert code == 0 and Path(out.strip()).name == "sum_42.png"


def test_set_overrides_reach_the_workflow_embedded_in_the_image(cli_pack, tmp_path, capsys):
    workflow = tmp_path / "sum.json"
    workflow.write_text(json.dumps(sum_workflow(a=2, b=3, saver="CliSavePng")))
    argv = ["run", str(workflow), "--base-dir", str(tmp_path), "--no-progress", "--set", "2.value=40"]
    code, out = run(argv, [cli_pack, PngPack()], capsys)
    made = Path(out.strip())
    assert code == 0 and made.name == "sum_42.png"
    embedded = {n["id"]: n["widgets_values"] for n in read_png_metadata(made).workflow["nodes"]}
    assert embedded[1] == [2] and embedded[2] == [40]


def test_run_on_a_png_holding_only_a_prompt_runs_that_prompt(cli_pack, tmp_path, capsys):
    prompt = {
        "1": {"class_type": "CliNumber", "inputs": {"value": 6}},
        "2": {"class_type": "CliSaveText", "inputs": {"value": ["1", 0], "filename_prefix": "only"}},
    }
    source = write_png(tmp_path / "prompt.png", prompt=prompt)
    code, out = run(["run", str(source), "--base-dir", str(tmp_path), "--no-progress"], [cli_pack], capsys)
    assert code == 0 and Path(out.strip()).read_text() == "6"


def test_run_refuses_missing_node_types_and_pngs_without_a_graph(cli_pack, tmp_path, capsys):
    workflow = sum_workflow()
    workflow["nodes"].append(dict(workflow["nodes"][0], id=9, type="Upscaler|pack", outputs=[]))
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(workflow))
    code, out = run(["run", str(path), "--base-dir", str(tmp_path)], [cli_pack], capsys)
    assert code == 2
    error = json.loads(out)["error"]
    assert error["type"] == "missing_node_types"
    assert error["message"] == "missing node types: Upscaler|pack (1 node)"
    bare = write_png(tmp_path / "bare.png")
    code, out = run(["run", str(bare), "--base-dir", str(tmp_path)], [cli_pack], capsys)
    assert code == 2 and "carries no workflow" in json.loads(out)["error"]["message"]


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    """A base folder holding the model and image files the corpus names (combo inputs list the folders)."""
    files = {
        "models/checkpoints": ["v1-5-pruned-emaonly.safetensors", "dreamshaper_8.safetensors",
                               "sd-v1-5-inpainting.safetensors"],
        "models/loras": ["add_detail.safetensors", "pixel_art.safetensors"],
    }  # fmt: skip
    for folder, names in files.items():
        (tmp_path / folder).mkdir(parents=True)
        for name in names:
            (tmp_path / folder / name).write_bytes(b"")
    (tmp_path / "input").mkdir()
    for name in ("example.png", "yosemite_inpaint_example.png"):
        Image.new("RGBA", (8, 8)).save(tmp_path / "input" / name)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "nodes"),
    [
        ("comfyui/txt2img.json", 7),
        ("comfyui/img2img.json", 8),
        ("comfyui/inpainting.json", 8),
        ("comfyui/lora.json", 10),
        ("comfyui/hires_fix.json", 9),
        ("comfyui/groups_reroutes_primitive.json", 11),
        ("comfyui/api_txt2img.json", 7),
    ],
)
def test_check_says_ok_for_corpus_workflows_whose_types_all_exist(name, nodes, base_dir, capsys):
    code, out = run(["check", str(CORPUS / name), "--base-dir", str(base_dir)], [SdStandInPack()], capsys)
    assert out.splitlines() == [f"ok: {nodes} nodes, all node types available"]
    assert code == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("comfyui/custom_node.json", "ShowText|pysssss (2 nodes), StringFunction|pysssss (1 node)"),
        ("latentloom/portrait.json", "FaceRestore|facelib (1 node), PromptStyler (1 node)"),
    ],
)
def test_check_lists_missing_node_types_and_exits_1(name, message, tmp_path, capsys):
    code, out = run(["check", str(CORPUS / name), "--base-dir", str(tmp_path)], [SdStandInPack()], capsys)
    assert out.splitlines()[0] == "missing node types: " + message
    assert code == 1


def test_check_reports_validation_problems(cli_pack, tmp_path, capsys):
    workflow = sum_workflow()
    workflow["nodes"][0]["widgets_values"] = ["two"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(workflow))
    code, out = run(["check", str(path), "--base-dir", str(tmp_path)], [cli_pack], capsys)
    lines = out.splitlines()
    assert code == 1 and lines[0] == "ok: 4 nodes, all node types available"
    assert any(line.startswith("invalid:") and "value" in line for line in lines[1:]), lines


def test_check_on_a_file_that_is_no_workflow_exits_1_with_the_reason(cli_pack, tmp_path, capsys):
    bare = write_png(tmp_path / "bare.png")
    code, out = run(["check", str(bare), "--base-dir", str(tmp_path)], [cli_pack], capsys)
    assert code == 1 and out.startswith("error: ") and "carries no workflow" in out
