"""The text-to-image graph through ``latentloom run``: in-process, as a real subprocess, and ComfyUI's own
workflow files (the hand-written corpus in tests/workflow/corpus/comfyui) run unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_graphs import TINY_CHECKPOINT, txt2img_prompt
from PIL import Image

from latentloom.workflow.png import read_png_metadata
from server.cli import main

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "workflow" / "corpus" / "comfyui"


def write_json(path: Path, value: dict) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def test_run_in_process_saves_a_png_carrying_the_prompt(base_dir, tmp_path, capsys):
    prompt = txt2img_prompt(prefix="cli")
    workflow = write_json(tmp_path / "txt2img.json", prompt)
    code = main(["run", str(workflow), "--base-dir", str(base_dir), "--no-progress", "--set", "3.seed=11"])
    captured = capsys.readouterr()
    assert code == 0, captured
    saved = base_dir.resolve() / "output" / "cli_00001_.png"
    assert captured.out.splitlines() == [str(saved)]
    prompt["3"]["inputs"]["seed"] = 11
    assert read_png_metadata(saved).prompt == prompt
    with Image.open(saved) as picture:
        assert picture.size == (64, 64)


def test_run_as_a_subprocess(base_dir, tmp_path):
    workflow = write_json(tmp_path / "txt2img.json", txt2img_prompt(prefix="sub", comfy_names=True))
    command = [str(Path(sys.executable).parent / "latentloom"), "run", str(workflow), "--base-dir", str(base_dir)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    saved = base_dir.resolve() / "output" / "sub_00001_.png"
    assert result.stdout.splitlines() == [str(saved)]
    assert "#3 KSampler" in result.stderr and "3/3" in result.stderr  # the progress bar followed the sampler
    assert read_png_metadata(saved).prompt["5"]["class_type"] == "EmptyLatentImage"


def test_a_failing_node_exits_1_and_names_the_node_and_input(base_dir, tmp_path, capsys):
    prompt = txt2img_prompt()
    # The text encoder has SD1.5's 12 layers: clip skip 13 passes validation (-24..-1) but cannot run.
    prompt["10"] = {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["4", 1], "stop_at_clip_layer": -13}}
    prompt["6"]["inputs"]["clip"] = ["10", 0]
    workflow = write_json(tmp_path / "bad.json", prompt)
    assert main(["run", str(workflow), "--base-dir", str(base_dir), "--no-progress"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["node_id"] == "10" and error["node_type"] == "CLIPSetLastLayer"
    assert "input 'stop_at_clip_layer'" in error["exception_message"]


def rgba_image(path: Path, *, hole: bool) -> None:
    pixels = Image.radial_gradient("L").resize((64, 64)).convert("RGBA")
    if hole:
        alpha = Image.new("L", (64, 64), 255)
        alpha.paste(0, (16, 16, 48, 48))
        pixels.putalpha(alpha)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels.save(path)


# Each ComfyUI workflow file with the settings made small for the tiny model (sizes, steps), the model
# names it asks for, and the input images it loads.
COMFY_WORKFLOWS = {
    "txt2img": (["5.width=64", "5.height=64", "3.steps=2"], ["v1-5-pruned-emaonly.safetensors"], {}),
    "img2img": (["6.steps=2"], ["dreamshaper_8.safetensors"], {"example.png": False}),
    "inpainting": (["6.steps=2"], ["sd-v1-5-inpainting.safetensors"], {"yosemite_inpaint_example.png": True}),
    "hires_fix": (
        ["4.width=64", "4.height=64", "5.steps=2", "6.width=96", "6.height=96", "7.steps=2"],
        ["v1-5-pruned-emaonly.safetensors"],
        {},
    ),
    "groups_reroutes_primitive": (["5.width=64", "5.height=64", "7.steps=2"], ["dreamshaper_8.safetensors"], {}),
}


@pytest.mark.parametrize("name", sorted(COMFY_WORKFLOWS))
def test_comfyui_format_workflow_files_run_with_only_sizes_and_steps_made_small(name, base_dir, capsys):
    overrides, checkpoints, images = COMFY_WORKFLOWS[name]
    for checkpoint in checkpoints:
        shutil.copyfile(base_dir / "models" / "checkpoints" / TINY_CHECKPOINT, base_dir / "models" / "checkpoints" / checkpoint)
    for image, hole in images.items():
        rgba_image(base_dir / "input" / image, hole=hole)
    argv = ["run", str(CORPUS / f"{name}.json"), "--base-dir", str(base_dir), "--no-progress"]
    code = main(argv + [arg for setting in overrides for arg in ("--set", setting)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    [saved] = [Path(line) for line in captured.out.splitlines()]
    assert saved.is_file() and saved.suffix == ".png"
    metadata = read_png_metadata(saved)
    assert metadata.workflow is not None and metadata.prompt is not None
    # The embedded graph is the workflow itself (ComfyUI's format) with the run's settings in its widgets.
    assert {node["type"] for node in metadata.workflow["nodes"]} == {
        node["type"] for node in json.loads((CORPUS / f"{name}.json").read_text())["nodes"]
    }
