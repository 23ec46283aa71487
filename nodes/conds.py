"""CONDITIONING (ComfyUI's list of [embedding, options]) → the guidance.Cond values the sampler takes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from latentloom.api import NodeInputError
from latentloom.diffusion.guidance import Cond
from nodes.values import conditioning_list

# Options that only describe the text (SD1's UNet takes no pooled embedding) or that we read below.
UNDERSTOOD_OPTIONS = frozenset(
    {"pooled_output", "area", "strength", "mask", "mask_strength", "set_area_to_bounds", "start_percent", "end_percent"}
)


def to_conds(conditioning: Any, input_name: str, *, device: torch.device) -> list[Cond]:
    """One Cond per entry, its tensors on ``device``. Options this SD1 sampler cannot honour (ControlNet,
    GLIGEN, …) raise NodeInputError rather than being dropped silently."""
    return [_to_cond(embedding, options, input_name, index, device=device)
            for index, (embedding, options) in enumerate(conditioning_list(conditioning, input_name))]  # fmt: skip


def _to_cond(embedding: Tensor, options: Mapping[str, Any], input_name: str, index: int, *, device: torch.device) -> Cond:
    unknown = sorted(str(key) for key in options if key not in UNDERSTOOD_OPTIONS)
    if unknown:
        raise NodeInputError(input_name, f"entry {index} carries options this sampler does not support: {unknown}")
    area, fraction = _area(options.get("area"), input_name, index)
    mask = options.get("mask")
    if mask is not None and not isinstance(mask, Tensor):
        raise NodeInputError(input_name, f"entry {index}: 'mask' must be a tensor, got {type(mask).__name__}")
    return Cond(
        embedding=embedding.to(device=device, dtype=torch.float32),
        area=area,
        area_fraction=fraction,
        strength=float(options.get("strength", 1.0)),
        mask=None if mask is None else mask.to(device=device, dtype=torch.float32),
        mask_strength=float(options.get("mask_strength", 1.0)),
        mask_bounds_area=bool(options.get("set_area_to_bounds", False)),
        start_percent=float(options.get("start_percent", 0.0)),
        end_percent=float(options.get("end_percent", 1.0)),
    )


def _area(value: Any, input_name: str, index: int) -> tuple[tuple[int, int, int, int] | None, Any]:
    """(area in latent pixels, area as fractions): ComfyUI stores (h, w, y, x) // 8, or
    ("percentage", h, w, y, x) from ConditioningSetAreaPercentage."""
    if value is None:
        return None, None
    if isinstance(value, list | tuple) and len(value) == 5 and value[0] == "percentage":
        return None, tuple(float(v) for v in value[1:])
    if isinstance(value, list | tuple) and len(value) == 4 and all(isinstance(v, int) for v in value):
        return tuple(value), None
    raise NodeInputError(input_name, f"entry {index}: 'area' must be (height, width, y, x) in latent pixels, got {value!r}")
