"""Helpers for node tests: the registry of first-party nodes over a base dir, and calling a node by name."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nodes
from latentloom.api import NodeRegistry, NodeResult, Services
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.folders import ModelFolders

TINY_CHECKPOINT = "tiny-sd15.safetensors"


@dataclass
class NodeBench:
    folders: ModelFolders
    devices: DeviceManager
    registry: NodeRegistry

    @classmethod
    def over(cls, base_dir: Path, **folder_options: Any) -> NodeBench:
        folders = ModelFolders(base_dir, **folder_options)
        devices = DeviceManager(device="cpu")
        registry = NodeRegistry()
        nodes.register_nodes(registry=registry, services=Services(folders, devices))
        return cls(folders, devices, registry)

    def node(self, name: str) -> Any:
        node_type = self.registry.get(name)
        assert node_type is not None, f"no node type {name}"
        return node_type

    def run(self, name: str, ctx: Any = None, **inputs: Any) -> tuple:
        """The node's outputs (the UI payload of a NodeResult is dropped; see ``run_result``)."""
        result = self.run_result(name, ctx, **inputs)
        return tuple(result.outputs) if isinstance(result, NodeResult) else result

    def run_result(self, name: str, ctx: Any = None, **inputs: Any) -> Any:
        return self.node(name).execute(ctx, **inputs)

    @functools.cached_property
    def loaded(self) -> tuple[Any, Any, Any]:
        """MODEL, CLIP, VAE of the tiny checkpoint, loaded through CheckpointLoader."""
        return self.run("CheckpointLoader", ckpt_name=TINY_CHECKPOINT)
