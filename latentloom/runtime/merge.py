"""Model merging as weight patches, computed per tensor when a model is loaded or saved.

A merge patch on model A that refers to model B gives, for each parameter key,
``W' = W_A · a(key) + W_B' · b(key)``, where ``W_B'`` is B's weight after B's own patches (so merges
nest: add-difference is ``Add(A, Subtract(B, C, k))``). The coefficients follow ComfyUI's merge nodes:

- ModelMergeSimple / CLIPMergeSimple(ratio): a = ratio, b = 1 - ratio (ratio 1 keeps model 1);
- ModelMergeAdd / CLIPAdd: a = b = 1;  ModelMergeSubtract / CLIPSubtract(multiplier): a = multiplier, b = -multiplier;
- ModelMergeBlocks / MBW: the ratio of the longest block prefix that names the key.

Nothing is merged up front: a merged model costs the two inputs, and while it runs or is saved, the
merged tensors (one at a time when saving).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from latentloom.api.errors import LatentLoomError
from latentloom.runtime.devices import module_bytes
from latentloom.runtime.handles import ClipHandle, ModelHandle
from latentloom.runtime.lora.weights import effective_weight

# MBW block names (IN00–IN11, M00, OUT00–OUT11) and the extra groups, as UNet key prefixes.
MBW_INPUT_BLOCKS = tuple(f"IN{i:02d}" for i in range(12))
MBW_OUTPUT_BLOCKS = tuple(f"OUT{i:02d}" for i in range(12))
MBW_WEIGHTS = (*MBW_INPUT_BLOCKS, "M00", *MBW_OUTPUT_BLOCKS)
CLIP_MERGE_SKIPPED = (".position_ids", ".logit_scale")  # bookkeeping tensors CLIPMergeSimple leaves alone


class MergeError(LatentLoomError):
    """Two models that cannot be merged (different architectures); names the keys."""


@dataclass(frozen=True, eq=False)
class MergePatch:
    """``W' = W · a + other(W) · b`` for the keys in ``coefficients`` (key → (a, b))."""

    other: nn.Module
    other_patches: tuple[object, ...]
    coefficients: Mapping[str, tuple[float, float]]
    label: str = "merge"

    def patched_keys(self) -> Collection[str]:
        return self.coefficients.keys()

    def apply(self, key: str, weight: Tensor) -> Tensor:
        a, b = self.coefficients[key]
        base = self.other.get_parameter(key)
        other = effective_weight(base, key, self.other_patches, device=weight.device, dtype=weight.dtype)
        return weight * a + other * b

    def __repr__(self) -> str:
        return f"MergePatch({self.label!r}, {len(self.coefficients)} parameters)"

    def __cache_parts__(self) -> tuple[tuple[object, int], ...]:
        """The other model's weights, which this patch keeps alive (the engine cache counts them once)."""
        return ((self.other, module_bytes(self.other)),)

    def __cache_contents__(self) -> tuple[object, ...]:
        return self.other_patches


def merge_coefficients(
    target: nn.Module,
    other: nn.Module,
    coefficient: Callable[[str], tuple[float, float]],
    *,
    skip: Callable[[str], bool] = lambda key: False,
) -> dict[str, tuple[float, float]]:
    """key → (a, b) over the parameters both modules share; keys where (a, b) = (1, 0) change nothing."""
    mine = {k: tuple(p.shape) for k, p in target.named_parameters()}
    theirs = {k: tuple(p.shape) for k, p in other.named_parameters()}
    mismatched = [f"{k} {mine[k]} vs {theirs[k]}" for k in mine if k in theirs and mine[k] != theirs[k]]
    missing = sorted(set(mine) ^ set(theirs))
    if mismatched or missing:
        detail = "; ".join(part for part in (
            f"different shapes: {', '.join(mismatched[:5])}" if mismatched else "",
            f"keys only one model has: {', '.join(missing[:5])}" if missing else "",
        ) if part)  # fmt: skip
        raise MergeError(f"the two models have different architectures ({detail})")
    pairs = {key: coefficient(key) for key in mine if not skip(key)}
    return {key: pair for key, pair in pairs.items() if pair != (1.0, 0.0)}


def merge_models(
    model1: ModelHandle, model2: ModelHandle, coefficient: Callable[[str], tuple[float, float]], *, label: str
) -> ModelHandle:
    """Model 1 with model 2 merged in by ``coefficient(key) -> (a, b)``."""
    coefficients = merge_coefficients(model1.unet, model2.unet, coefficient)
    return model1.clone_with_patch(MergePatch(model2.unet, model2.patches, coefficients, label))


def merge_clips(
    clip1: ClipHandle, clip2: ClipHandle, coefficient: Callable[[str], tuple[float, float]], *, label: str
) -> ClipHandle:
    """Text encoder 1 with text encoder 2 merged in by ``coefficient(key) -> (a, b)``."""
    coefficients = merge_coefficients(
        clip1.encoder.model, clip2.encoder.model, coefficient, skip=lambda key: key.endswith(CLIP_MERGE_SKIPPED),
    )  # fmt: skip
    return clip1.clone_with_patch(MergePatch(clip2.encoder.model, clip2.patches, coefficients, label))


def simple(ratio: float) -> Callable[[str], tuple[float, float]]:
    return lambda key: (ratio, 1.0 - ratio)


def add() -> Callable[[str], tuple[float, float]]:
    return lambda key: (1.0, 1.0)


def subtract(multiplier: float) -> Callable[[str], tuple[float, float]]:
    return lambda key: (multiplier, -multiplier)


def by_prefix(ratios: Mapping[str, float], *, default: float) -> Callable[[str], tuple[float, float]]:
    """The ratio of the longest prefix of ``ratios`` that the key starts with (ModelMergeBlocks' rule)."""
    ordered = sorted(ratios.items(), key=lambda item: len(item[0]), reverse=True)

    def coefficient(key: str) -> tuple[float, float]:
        ratio = next((value for prefix, value in ordered if key.startswith(prefix)), default)
        return (ratio, 1.0 - ratio)

    return coefficient


def block_ratios(*, input: float, middle: float, out: float) -> Callable[[str], tuple[float, float]]:
    """ModelMergeBlocks: "input" also covers keys no prefix names (the time embedding), "out" also the
    final ``out.`` layers, as in ComfyUI."""
    return by_prefix({"input": input, "middle": middle, "out": out}, default=input)


def mbw_prefixes(weights: Mapping[str, float], *, time_embed: float, out: float) -> dict[str, float]:
    """UNet key prefix → ratio for the 25 MBW weights plus the time embedding and the final out layers."""
    prefixes = {"time_embed.": time_embed, "out.": out, "middle_block.": weights["M00"]}
    for index, name in enumerate(MBW_INPUT_BLOCKS):
        prefixes[f"input_blocks.{index}."] = weights[name]
    for index, name in enumerate(MBW_OUTPUT_BLOCKS):
        prefixes[f"output_blocks.{index}."] = weights[name]
    return prefixes
