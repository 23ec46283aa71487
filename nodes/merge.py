"""Model merging nodes (ComfyUI's names, inputs and ratio conventions) and CheckpointSave.

Each merge returns a clone of the first model with a merge patch (``latentloom.runtime.merge``); merged
weights are computed when the model is loaded for sampling or written by CheckpointSave, per tensor.
A ratio of 1 keeps model 1, 0 takes model 2, as in ComfyUI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from latentloom import api
from latentloom.api import (
    FloatInput,
    Input,
    NodeInputError,
    NodeResult,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
)
from latentloom.api.errors import LatentLoomError
from latentloom.runtime import merge
from latentloom.runtime.handles import ClipHandle, ModelHandle, VaeHandle
from latentloom.runtime.lora.checkpoint_export import save_checkpoint
from nodes.services import NodeServices

T = api.types
CATEGORY = "advanced/model_merging"


def _ratio(name: str) -> FloatInput:
    return FloatInput(name, default=1.0, min=0.0, max=1.0, step=0.01)


def _handle(value: Any, name: str, kind: type) -> Any:
    if not isinstance(value, kind):
        expected = {ModelHandle: "MODEL", ClipHandle: "CLIP", VaeHandle: "VAE"}[kind]
        raise NodeInputError(name, f"expects a {expected}, got {type(value).__name__}")
    return value


def _merged(model1: Any, model2: Any, coefficient: Callable[[str], tuple[float, float]], *, label: str) -> tuple:
    first, second = _handle(model1, "model1", ModelHandle), _handle(model2, "model2", ModelHandle)
    try:
        return (merge.merge_models(first, second, coefficient, label=label),)
    except merge.MergeError as error:
        raise NodeInputError("model2", str(error)) from error


class ModelMerge(NodeType):
    """A two-model merge whose coefficients come from the node's number inputs."""

    def __init__(self, type_name: str, numbers: tuple[FloatInput, ...], coefficient: Callable[..., Any],
                 *, description: str, category: str = CATEGORY) -> None:  # fmt: skip
        self.coefficient = coefficient
        self.schema = NodeSchema(
            type=type_name,
            category=category,
            description=description,
            required=(Input("model1", T.MODEL), Input("model2", T.MODEL), *numbers),
            outputs=(Output(T.MODEL),),
        )

    def execute(self, ctx: api.ExecutionContext, *, model1: Any, model2: Any, **numbers: float) -> tuple:
        return _merged(model1, model2, self.coefficient(**numbers), label=self.schema.type)


def model_merge_simple() -> ModelMerge:
    return ModelMerge("ModelMergeSimple", (_ratio("ratio"),), merge.simple,
                      description="ratio · model1 + (1 − ratio) · model2")  # fmt: skip


def model_merge_add() -> ModelMerge:
    return ModelMerge("ModelMergeAdd", (), merge.add, description="model1 + model2")


def model_merge_subtract() -> ModelMerge:
    multiplier = FloatInput("multiplier", default=1.0, min=-10.0, max=10.0, step=0.01)
    return ModelMerge("ModelMergeSubtract", (multiplier,), merge.subtract,
                      description="(model1 − model2) · multiplier; feed it to ModelMergeAdd for add-difference")  # fmt: skip


def model_merge_blocks() -> ModelMerge:
    return ModelMerge("ModelMergeBlocks", (_ratio("input"), _ratio("middle"), _ratio("out")), merge.block_ratios,
                      description="A ratio for the input, middle and output blocks (ratio 1 keeps model1).")  # fmt: skip


def _mbw(**ratios: float) -> Callable[[str], tuple[float, float]]:
    prefixes = merge.mbw_prefixes(ratios, time_embed=ratios["time_embed"], out=ratios["out"])
    return merge.by_prefix(prefixes, default=1.0)


def model_merge_mbw() -> ModelMerge:
    numbers = tuple(_ratio(name) for name in ("time_embed", *merge.MBW_WEIGHTS, "out"))
    return ModelMerge("ModelMergeBlockWeighted", numbers, _mbw,
                      description="Merge Block Weighted: a ratio for each of the 25 UNet blocks (IN00–IN11, M00, "
                      "OUT00–OUT11), the time embedding and the final out layers; 1 keeps model1.")  # fmt: skip


# ComfyUI's ModelMergeSD1 inputs: UNet key prefixes, including label_emb. (SD1 has none; kept for its workflows).
SD1_BLOCK_PREFIXES = ("time_embed.", "label_emb.", *(f"input_blocks.{i}." for i in range(12)),
                      *(f"middle_block.{i}." for i in range(3)), *(f"output_blocks.{i}." for i in range(12)), "out.")  # fmt: skip


def _sd1_blocks(**ratios: float) -> Callable[[str], tuple[float, float]]:
    # ComfyUI: a key no prefix names takes the first input's ratio.
    return merge.by_prefix(ratios, default=ratios[SD1_BLOCK_PREFIXES[0]])


def model_merge_sd1(type_name: str = "ModelMergeSD1") -> ModelMerge:
    """ComfyUI's per-block merge for SD1 (and SD2, same blocks); its inputs are the key prefixes themselves."""
    return ModelMerge(type_name, tuple(_ratio(prefix) for prefix in SD1_BLOCK_PREFIXES), _sd1_blocks,
                      description="A ratio per UNet block, named by key prefix as in ComfyUI; 1 keeps model1.",
                      category=f"{CATEGORY}/model_specific")  # fmt: skip


class ClipMerge(NodeType):
    """A two-text-encoder merge (CLIPMergeSimple, CLIPAdd, CLIPSubtract) by ComfyUI's rules."""

    def __init__(self, type_name: str, numbers: tuple[FloatInput, ...], coefficient: Callable[..., Any]) -> None:
        self.coefficient = coefficient
        self.schema = NodeSchema(
            type=type_name,
            category=CATEGORY,
            required=(Input("clip1", T.CLIP), Input("clip2", T.CLIP), *numbers),
            outputs=(Output(T.CLIP),),
        )

    def execute(self, ctx: api.ExecutionContext, *, clip1: Any, clip2: Any, **numbers: float) -> tuple:
        first, second = _handle(clip1, "clip1", ClipHandle), _handle(clip2, "clip2", ClipHandle)
        try:
            return (merge.merge_clips(first, second, self.coefficient(**numbers), label=self.schema.type),)
        except merge.MergeError as error:
            raise NodeInputError("clip2", str(error)) from error


def clip_merge_nodes() -> tuple[ClipMerge, ...]:
    multiplier = FloatInput("multiplier", default=1.0, min=-10.0, max=10.0, step=0.01)
    return (
        ClipMerge("CLIPMergeSimple", (_ratio("ratio"),), merge.simple),
        ClipMerge("CLIPSubtract", (multiplier,), merge.subtract),
        ClipMerge("CLIPAdd", (), merge.add),
    )


class CheckpointSave(NodeType):
    """MODEL + CLIP + VAE → a new single-file safetensors checkpoint in the output folder."""

    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.schema = NodeSchema(
            type="CheckpointSave",
            display_name="Save Checkpoint",
            category=CATEGORY,
            required=(Input("model", T.MODEL), Input("clip", T.CLIP), Input("vae", T.VAE),
                      StringInput("filename_prefix", default="checkpoints/LatentLoom")),  # fmt: skip
            outputs=(),
            output_node=True,
        )

    def execute(self, ctx: api.ExecutionContext, *, model: Any, clip: Any, vae: Any, filename_prefix: str) -> NodeResult:
        handles = {"model": _handle(model, "model", ModelHandle), "clip": _handle(clip, "clip", ClipHandle),
                   "vae": _handle(vae, "vae", VaeHandle)}  # fmt: skip
        try:
            path = save_checkpoint(self.services.folders.output_dir, filename_prefix, **handles)
        except LatentLoomError as error:
            raise NodeInputError("filename_prefix", str(error)) from error
        return NodeResult(ui={"checkpoints": [{"filename": path.name, "folder": str(path.parent)}]})


def merge_node_types(services: NodeServices) -> tuple[NodeType, ...]:
    return (
        model_merge_simple(),
        model_merge_add(),
        model_merge_subtract(),
        model_merge_blocks(),
        model_merge_mbw(),
        model_merge_sd1(),
        model_merge_sd1("ModelMergeSD2"),
        *clip_merge_nodes(),
        CheckpointSave(services),
    )
