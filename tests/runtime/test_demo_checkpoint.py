"""The demo checkpoint a new install writes: real SD1.5 layout, small, loadable, runnable."""

from __future__ import annotations

from pathlib import Path

import torch
from support.checkpoint_factory import full_size_sd15_shapes

from latentloom.runtime.checkpoint import open_checkpoint
from latentloom.runtime.demo_checkpoint import (
    CLIP_VOCAB_SIZE,
    DEMO_CHECKPOINT_NAME,
    sd15_text_encoder_shapes,
    write_demo_checkpoint,
)
from latentloom.runtime.detect import ModelFamily, detect_checkpoint
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.folders import ModelFolders
from latentloom.runtime.loader import load_checkpoint


def test_text_encoder_layout_at_full_size_is_exactly_sd15s() -> None:
    expected = {k: v for k, v in full_size_sd15_shapes().items() if k.startswith("cond_stage_model.")}
    assert sd15_text_encoder_shapes(width=768, layers=12) == expected


def test_demo_checkpoint_is_listed_loads_and_runs(tmp_path: Path) -> None:
    folders = ModelFolders(tmp_path)
    path = write_demo_checkpoint(folders)
    assert path == tmp_path.resolve() / "models/checkpoints" / DEMO_CHECKPOINT_NAME
    assert folders.list("checkpoints") == [DEMO_CHECKPOINT_NAME]
    assert path.stat().st_size < 20 * 1024**2
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    with open_checkpoint(path) as reader:
        assert "random weights" in reader.metadata["latentloom.demo"]
        assert reader.tensors["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"].shape[0] == CLIP_VOCAB_SIZE
        assert detect_checkpoint(reader.tensors).family == ModelFamily.SD1

    model, clip, vae = load_checkpoint(folders.path("checkpoints", DEMO_CHECKPOINT_NAME), devices=DeviceManager(device="cpu"))
    cond, _ = clip.encode("a castle on a hill, (golden hour:1.2)")
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        eps = model.load()(latents, torch.tensor([999.0]), cond)
    image = vae.decode(latents)
    assert eps.shape == latents.shape and torch.isfinite(eps).all()
    assert image.shape == (1, 64, 64, 3) and torch.isfinite(image).all()


def test_writing_again_replaces_the_file_with_the_same_weights(tmp_path: Path) -> None:
    folders = ModelFolders(tmp_path)
    first = write_demo_checkpoint(folders).read_bytes()
    assert write_demo_checkpoint(folders).read_bytes() == first
