"""Fixtures for the inspector tests: a tiny UNet, the first-party nodes over a tiny SD1.5-layout checkpoint,
and a real execution context."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from inspector_harness import TINY_CHECKPOINT, Bench, make_registry
from support import tiny_sd
from support.checkpoint_factory import write_tiny_sd15_checkpoint

from latentloom.diffusion.unet import UNet
from latentloom.engine.context import NodeContext
from latentloom.runtime.folders import ModelFolders


@pytest.fixture(scope="session")
def tiny_unet() -> UNet:
    return tiny_sd.build_unet(tiny_sd.tiny_unet_config(), seed=0).requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("inspector_base")
    (base / "models" / "checkpoints").mkdir(parents=True)
    write_tiny_sd15_checkpoint(base / "models" / "checkpoints" / TINY_CHECKPOINT)
    return base


@pytest.fixture(scope="session")
def bench(tiny_base_dir: Path) -> Bench:
    folders = ModelFolders(tiny_base_dir)
    return Bench(folders, make_registry(folders))


@pytest.fixture
def ctx() -> NodeContext:
    events: list = []
    context = NodeContext(prompt_id="test", node_id="1", emit=events.append, interrupt=threading.Event())
    context.events = events  # type: ignore[attr-defined]
    return context


@pytest.fixture(scope="session")
def loaded(bench: Bench) -> tuple[Any, Any, Any]:
    """MODEL, CLIP and VAE of the tiny checkpoint through CheckpointLoader."""
    context = NodeContext(prompt_id="load", node_id="0", emit=lambda event: None, interrupt=threading.Event())
    return bench.outputs("CheckpointLoader", context, ckpt_name=TINY_CHECKPOINT)

