"""Through the graph engine: a workflow that also contains the inspector nodes gives the KSampler result the
same workflow gives without them, bit for bit, and the inspector's UI output reaches the history."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import torch
from inspector_harness import TINY_CHECKPOINT, make_registry

from latentloom import api
from latentloom.api import Input, NodeSchema, NodeType
from latentloom.engine import Executor, OutputCache, validate_prompt
from latentloom.runtime.folders import ModelFolders


class KeepLatent(NodeType):
    """A test output node that keeps every latent it receives."""

    def __init__(self) -> None:
        self.kept: list[torch.Tensor] = []
        self.schema = NodeSchema(type="KeepLatent", output_node=True, required=(Input("samples", api.types.LATENT),))

    def execute(self, ctx: Any, *, samples: Any) -> tuple:
        self.kept.append(samples["samples"].clone())
        return ()


def txt2img() -> dict[str, dict[str, Any]]:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": TINY_CHECKPOINT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a horse in a field", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "seed": 42, "steps": 4, "cfg": 7.0, "sampler_name": "dpmpp_2s_ancestral",
            "scheduler": "karras", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0,
        }},  # fmt: skip
        "9": {"class_type": "KeepLatent", "inputs": {"samples": ["8", 0]}},
    }


def with_inspectors(prompt: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same workflow plus two inspectors and an inspecting sampler, placed before the KSampler in the
    prompt, so they run first, on the MODEL it shares with them."""
    inspector = {"class_type": "UNetBlockInspector", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent": ["4", 0], "seed": 1,
        "scheduler": "normal", "steps": 10, "step": 3, "sigma": 0.0, "blocks": "all", "tokens": "horse",
        "resolution": "all", "view": "overview", "vae": ["1", 2], "prompt_text": "a horse in a field",
    }}  # fmt: skip
    sampler = {"class_type": "InspectingKSampler",
               "inputs": prompt["8"]["inputs"] | {"seed": 3, "blocks": "all", "tokens": "", "prompt_text": ""}}  # fmt: skip
    after_sampler = {"class_type": "UNetBlockInspector", "inputs": inspector["inputs"] | {"latent": ["6", 0]}}
    head = {key: prompt[key] for key in ("1", "2", "3", "4")}
    return head | {"5": inspector, "6": sampler, "7": after_sampler, "8": prompt["8"], "9": prompt["9"]}


def run(folders: ModelFolders, prompt: dict) -> tuple[torch.Tensor, Any]:
    """Run on a fresh registry and cache (nothing reused between the two workflows)."""
    registry = make_registry(folders)
    keeper = KeepLatent()
    registry.register(keeper, source="test")
    executor = Executor(registry, cache=OutputCache(ram_budget_bytes=None))
    outcome = executor.run(validate_prompt(prompt, registry), prompt_id="p", emit=lambda event: None,
                           interrupt=threading.Event())  # fmt: skip
    assert outcome.status == "success", outcome.error
    [latent] = keeper.kept
    return latent, outcome


@pytest.fixture(scope="module")
def runs(tiny_base_dir):
    folders = ModelFolders(tiny_base_dir)
    return run(folders, txt2img()), run(folders, with_inspectors(txt2img()))


def test_the_kSampler_result_is_bitwise_identical_with_the_inspectors_in_the_graph(runs) -> None:
    (plain, plain_outcome), (inspected, outcome) = runs
    assert torch.equal(plain, inspected)
    ran = outcome.executed
    assert ran.index("5") < ran.index("8") and ran.index("6") < ran.index("8")  # they ran before it
    assert "5" not in plain_outcome.executed


def test_the_inspection_reports_reach_the_history_as_json(runs) -> None:
    _, (_, outcome) = runs
    for node_id, kind in (("5", "unet_inspection"), ("6", "unet_trajectory"), ("7", "unet_inspection")):
        ui = outcome.ui_outputs[node_id]
        assert json.loads(json.dumps(ui, allow_nan=False)) == ui
        assert ui["inspection"][0]["kind"] == kind
        assert ui["images"] and all(entry["type"] == "temp" for entry in ui["images"])
