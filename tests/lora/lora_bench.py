"""The first-party nodes over a base dir holding three tiny SD1.5-layout checkpoints (seeds 0, 1, 2)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.checkpoint_factory import write_tiny_sd15_checkpoint

import nodes
from latentloom.api import NodeRegistry, NodeResult, Services
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.folders import ModelFolders

CHECKPOINT_A = "tiny-a.safetensors"
CHECKPOINT_B = "tiny-b.safetensors"
CHECKPOINT_C = "tiny-c.safetensors"


@dataclass(eq=False)
class LoraBench:
    base: Path
    folders: ModelFolders
    registry: NodeRegistry

    @classmethod
    def over(cls, base: Path) -> LoraBench:
        (base / "models" / "checkpoints").mkdir(parents=True)
        (base / "models" / "loras").mkdir(parents=True)
        for seed, name in enumerate((CHECKPOINT_A, CHECKPOINT_B, CHECKPOINT_C)):
            write_tiny_sd15_checkpoint(base / "models" / "checkpoints" / name, seed=seed)
        folders = ModelFolders(base)
        registry = NodeRegistry()
        devices = DeviceManager(device="cpu", precision="fp32")
        nodes.register_nodes(registry=registry, services=Services(folders, devices))
        return cls(base, folders, registry)

    def run_result(self, name: str, ctx: Any = None, **inputs: Any) -> Any:
        node_type = self.registry.get(name)
        assert node_type is not None, f"no node type {name}"
        return node_type.execute(ctx, **inputs)

    def run(self, name: str, ctx: Any = None, **inputs: Any) -> tuple:
        result = self.run_result(name, ctx, **inputs)
        return tuple(result.outputs) if isinstance(result, NodeResult) else result

    @functools.cache  # noqa: B019 - one bench per session; the handles are immutable
    def load(self, name: str = CHECKPOINT_A) -> tuple[Any, Any, Any]:
        """MODEL, CLIP, VAE through CheckpointLoader, loaded once per name."""
        return self.run("CheckpointLoader", ckpt_name=name)

    @property
    def lora_dir(self) -> Path:
        return self.base / "models" / "loras"
