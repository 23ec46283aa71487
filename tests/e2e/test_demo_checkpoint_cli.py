"""``latentloom demo-checkpoint`` writes a loadable checkpoint and the default graph runs on it; the
composition root hands the nodes their services and honours --device / --precision."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from e2e_graphs import txt2img_prompt
from PIL import Image

from latentloom.runtime.demo_checkpoint import DEMO_CHECKPOINT_NAME
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.embeddings import EmbeddingLibrary
from latentloom.runtime.folders import ModelFolders
from server.cli import main
from server.composition import ComputeSettings, compose
from server.config import Config


def default_graph(*, size: int, steps: int) -> dict:
    """The canvas's default graph (web/app/default-graph.js: cfg 7, the first sampler and scheduler), at a
    size and step count a test can afford."""
    prompt = txt2img_prompt(ckpt_name=DEMO_CHECKPOINT_NAME, comfy_names=True, prefix="ComfyUI", size=size)
    prompt["3"]["inputs"].update(steps=steps, cfg=7.0, sampler_name="euler", scheduler="simple")
    return prompt


def test_demo_checkpoint_is_written_into_the_base_dir_and_the_default_graph_runs_on_it(tmp_path, capsys):
    assert main(["demo-checkpoint", "--base-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    written = tmp_path.resolve() / "models" / "checkpoints" / DEMO_CHECKPOINT_NAME
    assert captured.out.splitlines() == [str(written)] and written.is_file()
    assert "noise" in captured.err
    assert ModelFolders(tmp_path).list("checkpoints") == [DEMO_CHECKPOINT_NAME]

    workflow = tmp_path / "default.json"
    workflow.write_text(json.dumps(default_graph(size=64, steps=3)), encoding="utf-8")
    assert main(["run", str(workflow), "--base-dir", str(tmp_path), "--no-progress", "--device", "cpu"]) == 0
    saved = Path(capsys.readouterr().out.strip())
    assert saved == tmp_path.resolve() / "output" / "ComfyUI_00001_.png"
    with Image.open(saved) as picture:
        assert picture.size == (64, 64)


def test_demo_checkpoint_replaces_an_earlier_one(tmp_path, capsys):
    assert main(["demo-checkpoint", "--base-dir", str(tmp_path)]) == 0
    assert main(["demo-checkpoint", "--base-dir", str(tmp_path)]) == 0
    folder = tmp_path / "models" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [DEMO_CHECKPOINT_NAME]


def test_composition_gives_the_nodes_folders_devices_and_embeddings(tmp_path):
    composition = compose(Config(base_dir=tmp_path), compute=ComputeSettings(device="cpu", precision="bf16"))
    services = composition.services
    assert services.get(DeviceManager) is composition.devices
    assert composition.devices.device == torch.device("cpu") and composition.devices.dtype == torch.bfloat16
    assert services.get(ModelFolders).base_dir == tmp_path.resolve()
    assert services.get(EmbeddingLibrary).folders == (tmp_path.resolve() / "models" / "embeddings",)
    assert "KSampler" in composition.registry and "CheckpointLoaderSimple" in composition.registry


def test_an_unusable_device_or_precision_is_refused_before_running(tmp_path, capsys):
    workflow = tmp_path / "default.json"
    workflow.write_text(json.dumps(default_graph(size=64, steps=1)), encoding="utf-8")
    assert main(["run", str(workflow), "--base-dir", str(tmp_path), "--device", "tpu"]) == 2
    assert "device 'tpu'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["run", str(workflow), "--base-dir", str(tmp_path), "--device", "cuda"]) == 2
        assert "CUDA" in capsys.readouterr().err
