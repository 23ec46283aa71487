"""A cheap look at a latent: a fixed linear map from the 4 SD1.x latent channels to RGB (no VAE).

The factors are the published SD1.5 latent→RGB least-squares fit (ComfyUI's ``latent_formats.SD15``,
which uses no bias). Values near -1..1 map to 0..255 the way ComfyUI's latent2rgb previewer does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# Rows: latent channels 0..3; columns: R, G, B.
SD1_LATENT_RGB_FACTORS: tuple[tuple[float, float, float], ...] = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SD1_LATENT_RGB_BIAS: tuple[float, float, float] = (0.0, 0.0, 0.0)
MAX_PREVIEW_SIDE = 512


def preview_size(height: int, width: int, *, max_side: int = MAX_PREVIEW_SIDE) -> tuple[int, int]:
    """(height, width) scaled down, aspect kept, so the longer side is at most ``max_side``; never up."""
    longest = max(height, width)
    if longest <= max_side:
        return height, width
    scale = max_side / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def latent_to_rgb(
    latent: Tensor,
    *,
    factors: Sequence[Sequence[float]] = SD1_LATENT_RGB_FACTORS,
    bias: Sequence[float] = SD1_LATENT_RGB_BIAS,
    max_side: int = MAX_PREVIEW_SIDE,
) -> Tensor:
    """The first batch item of ``latent`` [B, C, H, W] as a uint8 RGB image [H', W', 3] on the CPU.

    rgb = latent·factors + bias per pixel, then ``(rgb + 1) / 2`` clamped to 0..1 and scaled to 0..255
    (truncated, as ComfyUI does). H', W' are H, W shrunk by area averaging to fit ``max_side``.
    """
    if latent.ndim != 4:
        raise ValueError(f"expected a latent [B, C, H, W], got shape {tuple(latent.shape)}")
    weight = torch.tensor(factors, dtype=torch.float32)  # [C, 3]
    if latent.shape[1] != weight.shape[0]:
        raise ValueError(f"the latent has {latent.shape[1]} channels; the RGB factors expect {weight.shape[0]}")
    first = latent[:1].detach().to(device="cpu", dtype=torch.float32)  # [1, C, H, W]
    size = preview_size(first.shape[2], first.shape[3], max_side=max_side)
    if size != tuple(first.shape[2:]):
        # Averaging before the projection equals averaging after it: both are linear (bias included).
        first = F.adaptive_avg_pool2d(first, size)
    rgb = torch.einsum("chw,cr->hwr", first[0], weight) + torch.tensor(bias, dtype=torch.float32)
    return ((rgb + 1.0) / 2.0).clamp(0.0, 1.0).mul(255.0).to(torch.uint8)
