"""The inspector tests' bench: the first-party node types over a base dir holding the tiny checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nodes
from latentloom.api import NodeRegistry, NodeResult, Services
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.folders import ModelFolders

TINY_CHECKPOINT = "tiny-sd15.safetensors"


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
