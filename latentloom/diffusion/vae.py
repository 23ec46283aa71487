"""The Stable Diffusion KL autoencoder (VAE), with the attribute names of CompVis
``ldm/modules/diffusionmodules/model.py`` (encoder/decoder conv_in, down.I.block.J, mid.block_1/attn_1/
block_2, up.I.block.J, norm_out, conv_out) and ``autoencoder.py`` (quant_conv, post_quant_conv). Keys are
those of the checkpoint with the ``first_stage_model.`` prefix stripped; loading is
``VAE(VAEConfig.from_state_dict(sd)).load_state_dict(sd)``.

Latent scale: ``encode``/``decode`` work on the autoencoder's own (unscaled) latents. The diffusion model
sees latents multiplied by ``config.scale_factor`` (0.18215 for SD1/SD2); ``scale_latents`` and
``unscale_latents`` are the one place that factor is applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SD1_LATENT_SCALE = 0.18215  # scale_factor of the SD1/SD2 LDM configs: brings latents to unit variance
LOGVAR_RANGE = (-30.0, 20.0)  # clamp of ldm's DiagonalGaussianDistribution
GROUP_NORM_GROUPS = 32


class VAELayoutError(ValueError):
    """A state dict does not have the layout of an SD KL autoencoder (names which key or shape is wrong)."""


@dataclass(frozen=True)
class VAEConfig:
    """Defaults are the SD1.5 VAE."""

    in_channels: int = 3
    out_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4
    embed_dim: int = 4  # latent channels (quant_conv output / 2)
    linear_attention: bool = False  # mid.attn_1 q/k/v/proj_out stored as Linear (2-D) weights, not 1x1 convs
    scale_factor: float = SD1_LATENT_SCALE

    def __post_init__(self) -> None:
        widths = [self.ch * mult for mult in self.ch_mult]
        if any(width % GROUP_NORM_GROUPS for width in widths):
            raise ValueError(f"VAEConfig: level widths {widths} must be multiples of {GROUP_NORM_GROUPS}")

    @property
    def latent_channels(self) -> int:
        return self.embed_dim

    @property
    def downscale(self) -> int:
        """Image pixels per latent pixel along each side."""
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, Any], *, scale_factor: float = SD1_LATENT_SCALE
    ) -> VAEConfig:
        """Read the architecture from tensor shapes (a state dict, or a mapping of key -> shape tuple).

        The latent scale is not visible in shapes; SD1/SD2 use 0.18215, other families pass theirs.
        """
        shapes = {key: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for key, v in state.items()}
        conv_in = _shape(shapes, "encoder.conv_in.weight", ndim=4)
        levels = _numbered(shapes, r"encoder\.down\.(\d+)\.")
        if any(".attn." in key for key in shapes if key.startswith(("encoder.down.", "decoder.up."))):
            raise VAELayoutError("attention inside down/up levels is not an SD VAE layout (only mid.attn_1)")
        widths = [_shape(shapes, f"encoder.down.{level}.block.0.conv1.weight", ndim=4)[0] for level in levels]
        if any(width % conv_in[0] for width in widths):
            raise VAELayoutError(f"level widths {widths} are not multiples of conv_in's {conv_in[0]}")
        z_channels = _shape(shapes, "decoder.conv_in.weight", ndim=4)[1]
        if _shape(shapes, "encoder.conv_out.weight", ndim=4)[0] != 2 * z_channels:
            raise VAELayoutError("encoder.conv_out must give mean and logvar (2 * z_channels outputs)")
        try:
            return cls(
                in_channels=conv_in[1],
                out_channels=_shape(shapes, "decoder.conv_out.weight", ndim=4)[0],
                ch=conv_in[0],
                ch_mult=tuple(width // conv_in[0] for width in widths),
                num_res_blocks=len(_numbered(shapes, r"encoder\.down\.0\.block\.(\d+)\.")),
                z_channels=z_channels,
                embed_dim=_shape(shapes, "post_quant_conv.weight", ndim=4)[1],
                linear_attention=len(_shape(shapes, "encoder.mid.attn_1.q.weight")) == 2,
                scale_factor=scale_factor,
            )
        except ValueError as error:  # the shapes describe an impossible config
            raise VAELayoutError(str(error)) from error


def _shape(shapes: Mapping[str, tuple[int, ...]], key: str, *, ndim: int | None = None) -> tuple[int, ...]:
    if key not in shapes:
        raise VAELayoutError(
            f"missing '{key}': not an SD VAE state dict (keys must have 'first_stage_model.' stripped)"
        )
    if ndim is not None and len(shapes[key]) != ndim:
        raise VAELayoutError(f"'{key}' has shape {shapes[key]}, expected {ndim} dimensions")
    return shapes[key]


def _numbered(shapes: Mapping[str, tuple[int, ...]], pattern: str) -> list[int]:
    found = sorted({int(m.group(1)) for key in shapes if (m := re.match(pattern, key))})
    if not found or found != list(range(len(found))):
        raise VAELayoutError(f"keys matching '{pattern}' are not numbered 0..N: {found}")
    return found


def _normalize(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(GROUP_NORM_GROUPS, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = _normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = _normalize(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        if in_channels == out_channels:
            self.nin_shortcut: nn.Module = nn.Identity()
        else:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels; q/k/v/proj_out act on each pixel's channel vector."""

    def __init__(self, channels: int, *, linear: bool) -> None:
        super().__init__()
        self.norm = _normalize(channels)

        def projection() -> nn.Module:
            return nn.Linear(channels, channels) if linear else nn.Conv2d(channels, channels, kernel_size=1)

        self.q, self.k, self.v, self.proj_out = projection(), projection(), projection(), projection()

    def forward(self, x: Tensor) -> Tensor:
        _, _, height, width = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (batch, channels, h, w) -> (batch, h*w, channels)
        # one head: (batch, 1, h*w, channels) each
        q, k, v = (F.linear(tokens, p.weight.flatten(1), p.bias)[:, None] for p in (self.q, self.k, self.v))
        h = F.scaled_dot_product_attention(q, k, v)[:, 0]  # (batch, h*w, channels)
        h = F.linear(h, self.proj_out.weight.flatten(1), self.proj_out.bias)
        return x + h.transpose(1, 2).unflatten(2, (height, width))  # back to (batch, channels, h, w)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # ldm pads right/bottom only, then a stride-2 valid conv


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class MidBlock(nn.Module):
    def __init__(self, channels: int, *, linear_attention: bool) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels, linear=linear_attention)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class EncoderLevel(nn.Module):
    """One resolution of the encoder: ``block.J`` res blocks, then ``downsample`` except at the deepest."""

    def __init__(self, blocks: list[ResnetBlock], *, downsample: bool) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.downsample = Downsample(blocks[-1].conv2.out_channels) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.block:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class DecoderLevel(nn.Module):
    """One resolution of the decoder: ``block.J`` res blocks, then ``upsample`` except at the finest."""

    def __init__(self, blocks: list[ResnetBlock], *, upsample: bool) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.upsample = Upsample(blocks[-1].conv2.out_channels) if upsample else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.block:
            x = block(x)
        return x if self.upsample is None else self.upsample(x)


class Encoder(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(config.in_channels, config.ch, kernel_size=3, padding=1)
        channels, last = config.ch, len(config.ch_mult) - 1
        self.down = nn.ModuleList()
        for level, mult in enumerate(config.ch_mult):
            blocks = []
            for _ in range(config.num_res_blocks):
                blocks.append(ResnetBlock(channels, config.ch * mult))
                channels = config.ch * mult
            self.down.append(EncoderLevel(blocks, downsample=level != last))
        self.mid = MidBlock(channels, linear_attention=config.linear_attention)
        self.norm_out = _normalize(channels)
        self.conv_out = nn.Conv2d(channels, 2 * config.z_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        channels = config.ch * config.ch_mult[-1]
        self.conv_in = nn.Conv2d(config.z_channels, channels, kernel_size=3, padding=1)
        self.mid = MidBlock(channels, linear_attention=config.linear_attention)
        levels: list[DecoderLevel] = []
        for level in reversed(range(len(config.ch_mult))):
            blocks = []
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResnetBlock(channels, config.ch * config.ch_mult[level]))
                channels = config.ch * config.ch_mult[level]
            levels.insert(0, DecoderLevel(blocks, upsample=level != 0))
        self.up = nn.ModuleList(levels)  # up.0 is the finest level; forward runs them deepest first
        self.norm_out = _normalize(channels)
        self.conv_out = nn.Conv2d(channels, config.out_channels, kernel_size=3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


@dataclass(frozen=True)
class LatentDistribution:
    """The encoder's diagonal Gaussian over (unscaled) latents: (batch, latent_channels, h, w) each."""

    mean: Tensor
    logvar: Tensor

    @classmethod
    def from_moments(cls, moments: Tensor) -> LatentDistribution:
        mean, logvar = moments.chunk(2, dim=1)
        return cls(mean=mean, logvar=logvar.clamp(*LOGVAR_RANGE))

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    def mode(self) -> Tensor:
        return self.mean

    def sample(self, *, generator: torch.Generator) -> Tensor:
        """mean + std * noise, the noise drawn from ``generator`` (on its device) for reproducibility."""
        shape, device = self.mean.shape, generator.device
        noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
        return self.mean + self.std * noise.to(self.mean)


class VAE(nn.Module):
    """Images in [-1, 1] (batch, 3, H, W) <-> latents (batch, latent_channels, H/8, W/8).

    Computes in the weights' dtype and returns the caller's dtype.
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * config.z_channels, 2 * config.embed_dim, kernel_size=1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, kernel_size=1)

    @property
    def _dtype(self) -> torch.dtype:
        return self.quant_conv.weight.dtype

    def _moments(self, images: Tensor) -> Tensor:
        return self.quant_conv(self.encoder(images.to(self._dtype)))

    def _decode(self, z: Tensor) -> Tensor:
        return self.decoder(self.post_quant_conv(z.to(self._dtype)))

    def encode(self, images: Tensor) -> LatentDistribution:
        return LatentDistribution.from_moments(self._moments(images).to(images.dtype))

    def decode(self, z: Tensor) -> Tensor:
        return self._decode(z).to(z.dtype)

    def scale_latents(self, z: Tensor) -> Tensor:
        """Autoencoder latents -> the diffusion model's latent space (after encode)."""
        return z * self.config.scale_factor

    def unscale_latents(self, latents: Tensor) -> Tensor:
        """The diffusion model's latent space -> autoencoder latents (before decode)."""
        return latents / self.config.scale_factor

    def decode_tiled(self, z: Tensor, *, tile: int = 64, overlap: int = 16) -> Tensor:
        """``decode`` one ``tile``-sized latent window at a time, blended with linear feathering over
        ``overlap`` latent pixels: bounded memory for large images. Equal to ``decode`` when one tile
        covers z.
        """
        _check_tiling(tile, overlap)
        if z.shape[-2] <= tile and z.shape[-1] <= tile:
            return self.decode(z)
        grid = (z.shape[-2], z.shape[-1])
        factor = self.config.downscale
        out = blend_tiles(
            self._decode, z, grid=grid, tile=tile, overlap=overlap, in_scale=1, out_scale=factor
        )
        return out.to(z.dtype)

    def encode_tiled(self, images: Tensor, *, tile: int = 64, overlap: int = 16) -> LatentDistribution:
        """``encode`` in windows of ``tile`` latent pixels (tile * 8 image pixels), blending the moments with
        linear feathering over ``overlap`` latent pixels. Image sides must be multiples of 8 (the downscale).
        """
        _check_tiling(tile, overlap)
        factor = self.config.downscale
        height, width = images.shape[-2:]
        if height % factor or width % factor:
            raise ValueError(f"encode_tiled: image size {height}x{width} is not a multiple of {factor}")
        grid = (height // factor, width // factor)
        if grid[0] <= tile and grid[1] <= tile:
            return self.encode(images)
        moments = blend_tiles(
            self._moments, images, grid=grid, tile=tile, overlap=overlap, in_scale=factor, out_scale=1
        )
        return LatentDistribution.from_moments(moments.to(images.dtype))


def _check_tiling(tile: int, overlap: int) -> None:
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"tiling needs tile >= 1 and 0 <= overlap < tile (tile={tile}, overlap={overlap})")


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Window starts covering 0..length, stepping tile - overlap, the last window flush with the end."""
    if length <= tile:
        return [0]
    return [*range(0, length - tile, tile - overlap), length - tile]


def _feather(size: int, *, ramp: int, rise: bool, fall: bool, device: torch.device) -> Tensor:
    """1-D weights of one window: 1 inside, linear over ``ramp`` pixels at sides bordering another window."""
    weights = torch.ones(size, device=device)
    ramp = min(ramp, size)
    rising = torch.arange(1, ramp + 1, device=device, dtype=torch.float32) / (ramp + 1)
    if rise and ramp:
        weights[:ramp] = rising
    if fall and ramp:
        weights[size - ramp :] = torch.minimum(weights[size - ramp :], rising.flip(0))
    return weights


def blend_tiles(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    grid: tuple[int, int],
    tile: int,
    overlap: int,
    in_scale: int,
    out_scale: int,
) -> Tensor:
    """Apply ``fn`` to windows of ``x`` laid on a latent ``grid`` and blend the float32 results.

    A window [y, y + t) of the grid covers x[..., y*in_scale : (y+t)*in_scale] and lands on
    out[..., y*out_scale : (y+t)*out_scale] (likewise along the width).
    """
    rows, cols = _tile_starts(grid[0], tile, overlap), _tile_starts(grid[1], tile, overlap)
    tile_h, tile_w = min(tile, grid[0]), min(tile, grid[1])
    out: Tensor | None = None
    weight_sum = torch.zeros(grid[0] * out_scale, grid[1] * out_scale, device=x.device)
    for top in rows:
        for left in cols:
            rows_in = slice(top * in_scale, (top + tile_h) * in_scale)
            cols_in = slice(left * in_scale, (left + tile_w) * in_scale)
            window = x[..., rows_in, cols_in]
            piece = fn(window).float()
            if out is None:
                out = torch.zeros(*piece.shape[:2], *weight_sum.shape, device=piece.device)
            ramp = overlap * out_scale
            weight_y = _feather(
                piece.shape[-2], ramp=ramp, rise=top > 0, fall=top + tile_h < grid[0], device=x.device
            )
            weight_x = _feather(
                piece.shape[-1], ramp=ramp, rise=left > 0, fall=left + tile_w < grid[1], device=x.device
            )
            weight = weight_y[:, None] * weight_x[None, :]  # (tile_h * out_scale, tile_w * out_scale)
            rows_out = slice(top * out_scale, top * out_scale + piece.shape[-2])
            cols_out = slice(left * out_scale, left * out_scale + piece.shape[-1])
            out[..., rows_out, cols_out] += piece * weight
            weight_sum[rows_out, cols_out] += weight
    return out / weight_sum
