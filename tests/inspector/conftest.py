"""Fixtures for the inspector tests: a tiny UNet, the first-party nodes over a tiny SD1.5-layout checkpoint,
and a real execution context."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import tiny_sd
from support.checkpoint_factory import write_tiny_sd15_checkpoint

import nodes
from latentloom.api import NodeRegistry, NodeResult, Services
from latentloom.diffusion.unet import UNet
from latentloom.engine.context import NodeContext
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.folders import ModelFolders

TINY_CHECKPOINT = "tiny-sd15.safetensors"


@pytest.fixture(scope="session")
def tiny_unet() -> UNet:
    return tiny_sd.build_unet(tiny_sd.tiny_unet_config(), seed=0).requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("inspector_base")
    (base / "models" / "checkpoints").mkdir(parents=True)
    write_tiny_sd15_checkpoint(base / "models" / "checkpoints" / TINY_CHECKPOINT)
    return base


@dataclass
class Bench:
    """The first-party node types over a base dir, called by name."""

    folders: ModelFolders
    registry: NodeRegistry

    def run(self, name: str, ctx: Any, **inputs: Any) -> Any:
        node_type = self.registry.get(name)
        assert node_type is not None, f"no node type {name}"
        return node_type.execute(ctx, **inputs)

    def outputs(self, name: str, ctx: Any, **inputs: Any) -> tuple:
        result = self.run(name, ctx, **inputs)
        return tuple(result.outputs) if isinstance(result, NodeResult) else result


def make_registry(folders: ModelFolders) -> NodeRegistry:
    registry = NodeRegistry()
    nodes.register_nodes(registry=registry, services=Services(folders, DeviceManager(device="cpu")))
    return registry


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

