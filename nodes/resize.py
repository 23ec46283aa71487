"""Resizing [batch, channels, height, width] tensors the way ComfyUI's upscale nodes do.

Methods: torch's "nearest-exact", "bilinear", "area", "bicubic"; "bislerp" (bilinear interpolation that
slerps channel vectors, so latent directions are kept); "lanczos" (PIL, for images in 0..1). An optional
centre crop first trims the input to the target aspect ratio.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

TORCH_METHODS = ("nearest-exact", "bilinear", "area", "bicubic")
LATENT_METHODS = (*TORCH_METHODS, "bislerp")
IMAGE_METHODS = (*TORCH_METHODS, "lanczos")
CROP_METHODS = ("disabled", "center")
_PARALLEL = 1e-5  # |cos| this close to 1: vectors (anti)parallel, slerp degenerates to lerp


def resize(samples: Tensor, *, width: int, height: int, method: str, crop: str = "disabled") -> Tensor:
    """``samples`` resized to height × width (after an optional centre crop to that aspect ratio)."""
    if crop == "center":
        samples = center_crop_to_aspect(samples, width=width, height=height)
    elif crop != "disabled":
        raise ValueError(f"unknown crop {crop!r}; expected one of {', '.join(CROP_METHODS)}")
    if method == "bislerp":
        return bislerp(samples, width=width, height=height)
    if method == "lanczos":
        return lanczos(samples, width=width, height=height)
    if method not in TORCH_METHODS:
        raise ValueError(f"unknown upscale method {method!r}")
    return F.interpolate(samples, size=(height, width), mode=method)


def center_crop_to_aspect(samples: Tensor, *, width: int, height: int) -> Tensor:
    """The central part of ``samples`` whose aspect ratio is width : height (trimmed on one axis only)."""
    old_h, old_w = samples.shape[-2], samples.shape[-1]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return samples[..., y : old_h - y, x : old_w - x]


def bislerp(samples: Tensor, *, width: int, height: int) -> Tensor:
    """Separable bilinear resize (half-pixel centres, edges clamped) where each pair of neighbouring
    channel vectors is combined by slerp of their directions and lerp of their lengths."""
    dtype = samples.dtype
    out = _slerp_along(samples.float(), size=width, dim=-1)
    out = _slerp_along(out, size=height, dim=-2)
    return out.to(dtype)


def _source_positions(old: int, new: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """For each output index: the lower and upper source index and the weight of the upper one."""
    position = ((torch.arange(new, device=device, dtype=torch.float64) + 0.5) * (old / new) - 0.5).clamp(0, old - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=old - 1)
    return low, high, (position - low).float()


def _slerp_along(samples: Tensor, *, size: int, dim: int) -> Tensor:
    low, high, t = _source_positions(samples.shape[dim], size, samples.device)
    moved = samples.movedim(dim, -1).movedim(1, -1)  # [..., positions, channels]
    a, b = moved[..., low, :], moved[..., high, :]
    result = slerp(a, b, t.unsqueeze(-1))
    return result.movedim(-1, 1).movedim(-1, dim)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of the directions of vectors ``a`` → ``b`` (last axis) with their lengths
    interpolated linearly; (anti)parallel or zero vectors fall back to plain linear interpolation."""
    norm_a, norm_b = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    unit_a = torch.where(norm_a > 0, a / norm_a.clamp_min(1e-30), torch.zeros_like(a))
    unit_b = torch.where(norm_b > 0, b / norm_b.clamp_min(1e-30), torch.zeros_like(b))
    cos = (unit_a * unit_b).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    degenerate = (cos.abs() > 1 - _PARALLEL) | (norm_a == 0) | (norm_b == 0)
    safe_sin = torch.where(degenerate, torch.ones_like(sin), sin)
    direction = (torch.sin((1 - t) * omega) * unit_a + torch.sin(t * omega) * unit_b) / safe_sin
    spherical = direction * (norm_a * (1 - t) + norm_b * t)
    return torch.where(degenerate, a * (1 - t) + b * t, spherical)


def lanczos(samples: Tensor, *, width: int, height: int) -> Tensor:
    """PIL's Lanczos resize of images in 0..1 (quantised to 8 bits on the way, as PIL needs)."""
    resized = []
    for image in samples:
        pixels = np.clip(image.movedim(0, -1).float().cpu().numpy() * 255.0, 0, 255).astype(np.uint8)
        if pixels.shape[-1] == 1:
            pixels = pixels[..., 0]
        picture = Image.fromarray(pixels).resize((width, height), resample=Image.Resampling.LANCZOS)
        array = np.asarray(picture, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array.reshape(height, width, -1)).movedim(-1, 0)
        resized.append(tensor)
    return torch.stack(resized).to(device=samples.device, dtype=samples.dtype)
