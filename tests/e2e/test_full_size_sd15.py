"""A full-size random-weight SD1.5 checkpoint (every key and shape of a real file, fp16 on disk) loads and
runs one sampling step at 64×64 through the nodes. Slow: it writes 2.1 GB and computes a 1 B-parameter
model on the CPU (about a minute on 2 cores; the weights take ~4.3 GB of RAM in float32)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from e2e_graphs import txt2img_prompt
from PIL import Image
from support.checkpoint_factory import write_full_size_sd15_checkpoint

from latentloom.diffusion.unet_config import UNetConfig
from latentloom.runtime.checkpoint import open_checkpoint
from latentloom.runtime.loader import plan_checkpoint
from latentloom.workflow.png import read_png_metadata
from server.cli import main

pytestmark = pytest.mark.slow


def test_full_size_sd15_runs_one_step_at_64_pixels(tmp_path: Path, capsys):
    folder = tmp_path / "models" / "checkpoints"
    folder.mkdir(parents=True)
    path = write_full_size_sd15_checkpoint(folder / "sd15-random.safetensors", dtype=torch.float16)
    with open_checkpoint(path) as reader:
        plan = plan_checkpoint(reader.tensors, metadata=reader.metadata, source=str(path))
    assert plan.detection.unet_config == UNetConfig()  # SD1.5's UNet, read from the shapes

    prompt = txt2img_prompt(ckpt_name=path.name, prefix="full")
    prompt["3"]["inputs"]["steps"] = 1
    workflow = tmp_path / "full.json"
    workflow.write_text(json.dumps(prompt), encoding="utf-8")
    code = main(["run", str(workflow), "--base-dir", str(tmp_path), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    saved = tmp_path.resolve() / "output" / "full_00001_.png"
    assert captured.out.splitlines() == [str(saved)]
    assert read_png_metadata(saved).prompt == prompt
    with Image.open(saved) as picture:
        pixels = np.asarray(picture)
    assert pixels.shape == (64, 64, 3) and pixels.std() > 0
