"""The values that flow between nodes, checked where a node receives them (ComfyUI's data conventions).

IMAGE: float tensor [batch, height, width, channels] in 0..1.  MASK: float tensor [batch, height, width]
(a 2-D mask is one mask).  LATENT: ``{"samples": [batch, 4, h, w] (model space, already multiplied by the
VAE scale factor), "noise_mask"?: [batch or 1, 1, H, W], "batch_index"?: [int]}``.  CONDITIONING: a list of
``[embedding [1, tokens, dim], {options}]`` pairs.  Each check raises NodeInputError naming the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from latentloom.api import NodeInputError

MAX_RESOLUTION = 16384  # ComfyUI's limit for pixel sizes in widgets
LATENT_DOWNSCALE = 8  # pixels per latent pixel of an SD1 VAE; ComfyUI's latent nodes assume 8


def latent_samples(latent: Any, input_name: str) -> Tensor:
    """The ``samples`` tensor of a LATENT value, checked to be [batch, channels, height, width]."""
    if not isinstance(latent, Mapping) or "samples" not in latent:
        raise NodeInputError(input_name, f"expects a LATENT (a dict with 'samples'), got {type(latent).__name__}")
    samples = latent["samples"]
    if not isinstance(samples, Tensor) or samples.ndim != 4:
        shape = tuple(samples.shape) if isinstance(samples, Tensor) else type(samples).__name__
        raise NodeInputError(input_name, f"latent samples must be a [batch, channels, height, width] tensor, got {shape}")
    return samples


def with_samples(latent: Mapping[str, Any], samples: Tensor, **changes: Any) -> dict[str, Any]:
    """A new LATENT dict: the input's other entries kept, ``samples`` (and ``changes``) replaced."""
    return {**latent, "samples": samples, **changes}


def image_tensor(image: Any, input_name: str) -> Tensor:
    """An IMAGE, checked to be a float [batch, height, width, channels] tensor."""
    if not isinstance(image, Tensor) or image.ndim != 4 or not image.is_floating_point():
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise NodeInputError(input_name, f"expects an IMAGE [batch, height, width, channels] float tensor, got {shape}")
    if image.shape[-1] not in (1, 3, 4):
        raise NodeInputError(input_name, f"an IMAGE has 1, 3 or 4 channels last, got shape {tuple(image.shape)}")
    return image


def mask_tensor(mask: Any, input_name: str) -> Tensor:
    """A MASK as float [batch, height, width] (a [height, width] mask becomes a batch of one)."""
    if not isinstance(mask, Tensor) or mask.ndim not in (2, 3, 4):
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise NodeInputError(input_name, f"expects a MASK [batch, height, width] tensor, got {shape}")
    if mask.ndim == 4 and mask.shape[1] != 1:
        raise NodeInputError(input_name, f"a 4-D mask must have one channel, got shape {tuple(mask.shape)}")
    return mask.reshape(-1, mask.shape[-2], mask.shape[-1]).float()


def conditioning_list(conditioning: Any, input_name: str) -> list[tuple[Tensor, dict[str, Any]]]:
    """CONDITIONING as (embedding, options) pairs, checked; the options are copies the caller may change."""
    if not isinstance(conditioning, list | tuple) or not conditioning:
        raise NodeInputError(input_name, "expects CONDITIONING: a non-empty list of [embedding, options] pairs")
    pairs = []
    for index, entry in enumerate(conditioning):
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            raise NodeInputError(input_name, f"entry {index} is not an [embedding, options] pair")
        embedding, options = entry
        if not isinstance(embedding, Tensor) or embedding.ndim != 3:
            shape = tuple(embedding.shape) if isinstance(embedding, Tensor) else type(embedding).__name__
            raise NodeInputError(input_name, f"entry {index}: the embedding must be [batch, tokens, dim], got {shape}")
        if not isinstance(options, Mapping):
            raise NodeInputError(input_name, f"entry {index}: options must be a dict, got {type(options).__name__}")
        pairs.append((embedding, dict(options)))
    return pairs


def check_multiple(value: int, input_name: str, *, of: int = LATENT_DOWNSCALE) -> int:
    """``value`` unchanged when it is a multiple of ``of``; NodeInputError otherwise."""
    if value % of:
        raise NodeInputError(input_name, f"{value} is not a multiple of {of}")
    return value


def cpu_float(tensor: Tensor) -> Tensor:
    """Values kept between nodes live on the CPU in float32 (devices are for computing)."""
    return tensor.detach().to(device="cpu", dtype=torch.float32)
