"""ComfyUI's published example workflows (tests/workflow/corpus/comfyui_examples, copied byte for byte from
comfyanonymous/ComfyUI_examples) run through ``latentloom run`` unchanged: no --set, so their own seeds,
20 steps, samplers and schedulers apply. Only the files they name are provided: a small checkpoint with
every key of a real SD1.5 file under the loader's file name, and a small input image under LoadImage's."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from support.checkpoint_factory import write_small_sd15_checkpoint, write_small_sd15_inpainting_checkpoint

from latentloom.workflow.png import read_png_metadata
from server.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "workflow" / "corpus" / "comfyui_examples"
# Non-square, so a swapped width and height would show; a multiple of 64 keeps every UNet level even.
IMAGE_SIZE = (128, 64)
HOLE = (32, 16, 96, 48)  # the transparent rectangle LoadImage turns into the inpainting mask


def write_inpainting_ckpt(path: Path) -> Path:
    # The name ends in .ckpt: the file is a pickled LDM checkpoint, as the named one is.
    return write_small_sd15_inpainting_checkpoint(path, fmt="ckpt")


@dataclass(frozen=True)
class Example:
    checkpoint: str  # the CheckpointLoaderSimple widget value
    write_checkpoint: Callable[[Path], Path]
    image: str  # the LoadImage widget value
    hole: bool


# The inpainting examples name SD2.x files (512-inpainting-ema.ckpt is SD2 inpainting, the other SD2.1-768);
# SD2.x is outside what LatentLoom loads, so an SD1.5-layout file stands under each name: the workflow runs
# unchanged, the model in it is SD1.5's (9 input channels where the named one is an inpainting model).
CASES = {
    "img2img_workflow": Example("v1-5-pruned-emaonly-fp16.safetensors", write_small_sd15_checkpoint, "example.png", False),
    "inpaint": Example("512-inpainting-ema.ckpt", write_inpainting_ckpt, "yosemite_inpaint_example.png", True),
    "inpaint_example": Example(
        "STableDiffusionv2-1_768-ema-pruned.safetensors", write_small_sd15_checkpoint, "yosemite_inpaint_example.png", True
    ),
}


def write_input_image(path: Path, *, hole: bool) -> None:
    picture = Image.radial_gradient("L").resize(IMAGE_SIZE).convert("RGBA")
    if hole:
        alpha = Image.new("L", IMAGE_SIZE, 255)
        alpha.paste(0, HOLE)
        picture.putalpha(alpha)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)


def graph_of(workflow: dict) -> dict:
    """What makes two UI-format files the same graph: each node's type, mode and widget values, and the links
    (id, from node and slot, to node and slot, type)."""
    nodes = {node["id"]: (node["type"], node["mode"], node.get("widgets_values") or []) for node in workflow["nodes"]}
    return {"nodes": nodes, "links": sorted(tuple(link) for link in workflow["links"])}


@pytest.fixture(scope="module")
def example_base(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A fresh base dir per example, holding only the files that example names."""

    def make(name: str) -> Path:
        case = CASES[name]
        base = tmp_path_factory.mktemp(name)
        checkpoints = base / "models" / "checkpoints"
        checkpoints.mkdir(parents=True)
        case.write_checkpoint(checkpoints / case.checkpoint)
        write_input_image(base / "input" / case.image, hole=case.hole)
        return base

    return make


def test_the_cases_name_the_files_the_examples_ask_for():
    for name, case in CASES.items():
        nodes = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))["nodes"]
        widgets = {node["type"]: node["widgets_values"] for node in nodes}
        assert widgets["CheckpointLoaderSimple"] == [case.checkpoint]
        assert widgets["LoadImage"][0] == case.image


@pytest.mark.parametrize("name", sorted(CASES))
def test_published_example_runs_unchanged(name, example_base, capsys):
    base = example_base(name)
    source = EXAMPLES / f"{name}.json"
    code = main(["run", str(source), "--base-dir", str(base), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err

    [saved] = [Path(line) for line in captured.out.splitlines()]
    assert saved == base.resolve() / "output" / "ComfyUI_00001_.png"  # the example's SaveImage prefix
    with Image.open(saved) as picture:
        assert picture.size == IMAGE_SIZE  # VAEEncode of the input, 20 steps, VAEDecode: the input's size

    metadata = read_png_metadata(saved)
    expected_prompt = json.loads((EXAMPLES / "expected" / f"{name}.prompt.json").read_text(encoding="utf-8"))
    assert metadata.prompt == expected_prompt  # the example's own seed, steps, cfg, sampler and scheduler
    assert metadata.workflow is not None
    assert graph_of(metadata.workflow) == graph_of(json.loads(source.read_text(encoding="utf-8")))
