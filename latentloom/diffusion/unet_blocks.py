"""The UNet's convolutional parts, with the attribute names of CompVis ``openaimodel.py``.

ResBlock (in_layers, emb_layers, out_layers, skip_connection), Downsample (op), Upsample (conv), and
TimestepBlock, the container each input/middle/output block is (openaimodel's TimestepEmbedSequential).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentloom.diffusion.attention import SpatialTransformer
from latentloom.diffusion.observe import UNetObserver
from latentloom.diffusion.unet_config import GROUP_NORM_GROUPS


def timestep_embedding(timesteps: Tensor, dim: int, *, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (batch,) timesteps -> (batch, dim) float32, cosines first (openaimodel)."""
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(-math.log(max_period) * steps / half)
    args = timesteps.float()[:, None] * freqs[None]  # (batch, half)
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the timestep embedding added in between; residual."""

    def __init__(self, channels: int, *, emb_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(
            nn.GroupNorm(GROUP_NORM_GROUPS, channels),
            nn.SiLU(),
            nn.Conv2d(channels, out_channels, kernel_size=3, padding=1),
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(GROUP_NORM_GROUPS, out_channels),
            nn.SiLU(),
            nn.Identity(),  # index 2 was Dropout in training; keeps out_layers.3's index
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        )
        if out_channels == channels:
            self.skip_connection: nn.Module = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(emb)[:, :, None, None]  # (batch, out) broadcast over height, width
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor, *, size: tuple[int, int] | None = None) -> Tensor:
        # ``size`` is the next skip's size, so odd latent sizes round-trip (plain doubling otherwise).
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x)


class TimestepBlock(nn.ModuleList):
    """A sequence of layers, each fed what it needs: the embedding, the context, the target size."""

    def forward(
        self,
        x: Tensor,
        emb: Tensor,
        context: Tensor,
        *,
        observer: UNetObserver | None = None,
        upsample_size: tuple[int, int] | None = None,
    ) -> Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context, observer=observer)
            elif isinstance(layer, Upsample):
                x = layer(x, size=upsample_size)
            else:
                x = layer(x)
        return x
