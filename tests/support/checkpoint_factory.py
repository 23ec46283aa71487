"""Checkpoint files in the exact single-file SD1.5 layout, for loader, node and end-to-end tests.

``write_tiny_sd15_checkpoint``: SD1.5's key naming with fewer blocks and small channel counts (UNet and VAE
from ``support.tiny_sd``: two UNet levels, one res block per level; a 64-wide 2-layer CLIP text encoder with
the real 49408-token vocabulary and 77 positions), so it loads in well under a second. Its UNet and VAE
weights are exactly ``tiny_sd.random_unet_state_dict(tiny_sd15_unet_config(), seed=seed)`` and
``tiny_sd.random_vae_state_dict(tiny_vae_config(), seed=seed)``.

``write_small_sd15_checkpoint``: exactly the keys of shared/sd15_checkpoint_keys.json (every block, 12 text
layers), with small channel counts: the end-to-end tests run the standard graph on it.
``write_small_sd15_inpainting_checkpoint`` is the same with SD1.5-inpainting's 9-channel UNet input.

``write_full_size_sd15_checkpoint``: every key and shape of the json, random weights (fp16 by default, to
save disk), streamed to disk one tensor at a time so writing it never holds the whole model in RAM.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import save_file
from torch import Tensor

from latentloom.diffusion.schedules import SD_BETA_END, SD_BETA_START, SD_NUM_TIMESTEPS, scaled_linear_betas
from latentloom.diffusion.unet_config import UNetConfig
from latentloom.diffusion.vae import VAEConfig
from latentloom.runtime.demo_checkpoint import random_tensor, sd15_text_encoder_shapes
from latentloom.runtime.detect import SCHEDULE_BUFFERS
from support import tiny_sd

TINY_TEXT_WIDTH = 64  # the narrowest CLIP text encoder: one 64-wide head
TINY_TEXT_LAYERS = 2  # two layers, so clip skip 2 (CLIPSetLastLayer -2) has a layer to read
SD15_TEXT_LAYERS = 12
UNET_STEM_KEY = "model.diffusion_model.input_blocks.0.0.weight"
INPAINT_EXTRA_CHANNELS = 5  # the mask (1) and the masked image's latent (4)
SAFETENSORS_DTYPE_NAMES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
}
Format = Literal["safetensors", "ckpt"]


def tiny_sd15_unet_config() -> UNetConfig:
    """tiny_sd's UNet, cross-attending to the tiny text encoder's width."""
    return replace(tiny_sd.tiny_unet_config(), context_dim=TINY_TEXT_WIDTH)


def schedule_buffers() -> dict[str, Tensor]:
    """The 12 DDPM buffers LDM's LatentDiffusion saves (float32, [1000]), computed as ldm/ddpm.py does."""
    betas = scaled_linear_betas(SD_BETA_START, SD_BETA_END, SD_NUM_TIMESTEPS)
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    buffers = {
        "betas": betas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": alphas_cumprod_prev,
        "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
        "sqrt_one_minus_alphas_cumprod": (1.0 - alphas_cumprod).sqrt(),
        "log_one_minus_alphas_cumprod": (1.0 - alphas_cumprod).log(),
        "sqrt_recip_alphas_cumprod": (1.0 / alphas_cumprod).sqrt(),
        "sqrt_recipm1_alphas_cumprod": (1.0 / alphas_cumprod - 1).sqrt(),
        "posterior_variance": posterior_variance,
        "posterior_log_variance_clipped": posterior_variance.clamp(min=1e-20).log(),
        "posterior_mean_coef1": betas * alphas_cumprod_prev.sqrt() / (1.0 - alphas_cumprod),
        "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * (1.0 - betas).sqrt() / (1.0 - alphas_cumprod),
    }
    return {key: value.float() for key, value in buffers.items()}


def ema_entries(unet: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """model_ema.* as LDM's LitEma saves them: each UNet tensor under its name with the dots removed,
    plus the decay and the update count."""
    entries = {"model_ema.decay": torch.tensor(0.9999), "model_ema.num_updates": torch.tensor(1000, dtype=torch.int32)}
    for key, tensor in unet.items():
        entries["model_ema.diffusion_model" + key.replace(".", "")] = tensor.clone()
    return entries


def _random_sd15_weights(unet: UNetConfig, vae: VAEConfig, *, text_layers: int, seed: int) -> dict[str, Tensor]:
    """Random float32 UNet, VAE and TINY_TEXT_WIDTH-wide text encoder weights under their checkpoint keys."""
    text_shapes = sd15_text_encoder_shapes(width=TINY_TEXT_WIDTH, layers=text_layers)
    generator = torch.Generator().manual_seed(seed + 1)
    return {
        **{tiny_sd.UNET_PREFIX + key: value for key, value in tiny_sd.random_unet_state_dict(unet, seed=seed).items()},
        **{tiny_sd.VAE_PREFIX + key: value for key, value in tiny_sd.random_vae_state_dict(vae, seed=seed).items()},
        **{key: random_tensor(key, text_shapes[key], generator=generator) for key in sorted(text_shapes)},
    }


@functools.lru_cache(maxsize=8)
def _tiny_sd15_weights(seed: int) -> dict[str, Tensor]:
    """The float32 weights of the tiny checkpoint (cached: tests ask for the same seeds many times)."""
    return _random_sd15_weights(
        tiny_sd15_unet_config(), tiny_sd.tiny_vae_config(), text_layers=TINY_TEXT_LAYERS, seed=seed
    )


def tiny_sd15_state_dict(
    *,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    with_schedule_buffers: bool = True,
    with_position_ids: bool = True,
    with_ema: bool = False,
) -> dict[str, Tensor]:
    """A fresh dict of fresh tensors (callers may change them freely)."""
    state = {
        key: value.to(dtype, copy=True) if value.is_floating_point() else value.clone()
        for key, value in _tiny_sd15_weights(seed).items()
        if with_position_ids or not key.endswith("position_ids")
    }
    if with_ema:
        state |= ema_entries({key: value for key, value in state.items() if key.startswith(tiny_sd.UNET_PREFIX)})
    if with_schedule_buffers:
        state |= schedule_buffers()
    return state


def write_state_dict(path: Path, state: Mapping[str, Tensor], *, fmt: Format = "safetensors") -> Path:
    """``.safetensors`` via safetensors, ``ckpt`` as LDM saved them: torch.save({"state_dict": …})."""
    path = Path(path)
    if fmt == "safetensors":
        save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    elif fmt == "ckpt":
        torch.save({"state_dict": dict(state), "global_step": 470000}, path)
    else:
        raise ValueError(f"unknown checkpoint format {fmt!r}")
    return path


def write_tiny_sd15_checkpoint(
    path: Path,
    *,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    with_schedule_buffers: bool = True,
    with_position_ids: bool = True,
    with_ema: bool = False,
    fmt: Format = "safetensors",
) -> Path:
    state = tiny_sd15_state_dict(
        dtype=dtype,
        seed=seed,
        with_schedule_buffers=with_schedule_buffers,
        with_position_ids=with_position_ids,
        with_ema=with_ema,
    )
    return write_state_dict(path, state, fmt=fmt)


def small_sd15_unet_config() -> UNetConfig:
    """SD1.5's UNet block for block (four levels, two res blocks each, attention at the first three) at
    32 channels, cross-attending to the tiny text encoder's width."""
    return UNetConfig(model_channels=32, context_dim=TINY_TEXT_WIDTH)


def small_sd15_vae_config() -> VAEConfig:
    """SD1.5's VAE block for block at 32 channels."""
    return VAEConfig(ch=32)


def small_sd15_state_dict(*, seed: int = 0) -> dict[str, Tensor]:
    """Every key of a real SD1.5 file (schedule buffers and position_ids included), small random weights."""
    weights = _random_sd15_weights(
        small_sd15_unet_config(), small_sd15_vae_config(), text_layers=SD15_TEXT_LAYERS, seed=seed
    )
    return weights | schedule_buffers()


def write_small_sd15_checkpoint(path: Path, *, seed: int = 0) -> Path:
    return write_state_dict(path, small_sd15_state_dict(seed=seed))


def small_sd15_inpainting_state_dict(*, seed: int = 0) -> dict[str, Tensor]:
    """small_sd15_state_dict with the UNet's input convolution widened from 4 to 9 channels, as
    SD1.5-inpainting's is (noisy latent, then the mask and the masked image's latent)."""
    state = small_sd15_state_dict(seed=seed)
    stem = state[UNET_STEM_KEY]
    generator = torch.Generator().manual_seed(seed + 2)
    extra = torch.randn(stem.shape[0], INPAINT_EXTRA_CHANNELS, *stem.shape[2:], generator=generator) * 0.2
    state[UNET_STEM_KEY] = torch.cat([stem, extra], dim=1)
    return state


def write_small_sd15_inpainting_checkpoint(path: Path, *, seed: int = 0, fmt: Format = "safetensors") -> Path:
    return write_state_dict(path, small_sd15_inpainting_state_dict(seed=seed), fmt=fmt)


def full_size_sd15_shapes(*, with_schedule_buffers: bool = True, with_position_ids: bool = True) -> dict[str, tuple]:
    shapes = tiny_sd.full_size_key_shapes()
    if not with_schedule_buffers:
        shapes = {k: v for k, v in shapes.items() if k not in SCHEDULE_BUFFERS}
    if not with_position_ids:
        shapes = {k: v for k, v in shapes.items() if not k.endswith("position_ids")}
    return shapes


def write_full_size_sd15_checkpoint(
    path: Path,
    *,
    dtype: torch.dtype = torch.float16,
    seed: int = 0,
    with_schedule_buffers: bool = True,
    with_position_ids: bool = True,
) -> Path:
    """Every key of a real SD1.5 file (~1.07 B parameters: 2.1 GB in fp16), random weights, written
    tensor by tensor."""
    shapes = full_size_sd15_shapes(with_schedule_buffers=with_schedule_buffers, with_position_ids=with_position_ids)
    buffers = schedule_buffers()
    generator = torch.Generator().manual_seed(seed)

    def make(key: str) -> Tensor:
        if key in buffers:
            return buffers[key]
        tensor = random_tensor(key, shapes[key], generator=generator)
        return tensor.to(dtype) if tensor.is_floating_point() else tensor

    dtypes = {key: torch.float32 if key in buffers else torch.int64 if key.endswith("position_ids") else dtype for key in shapes}
    write_safetensors_streaming(Path(path), shapes, dtypes, make)
    return Path(path)


def write_safetensors_streaming(
    path: Path,
    shapes: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, torch.dtype],
    make: Callable[[str], Tensor],
) -> None:
    """Write the safetensors format (8-byte header length, JSON header, raw little-endian data) asking
    ``make`` for one tensor at a time, in sorted key order."""
    keys = sorted(shapes)
    header, offset = {}, 0
    for key in keys:
        nbytes = math.prod(shapes[key]) * dtypes[key].itemsize
        header[key] = {"dtype": SAFETENSORS_DTYPE_NAMES[dtypes[key]], "shape": list(shapes[key]), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8-byte alignment
    with Path(path).open("wb") as file:
        file.write(len(encoded).to_bytes(8, "little"))
        file.write(encoded)
        for key in keys:
            tensor = make(key)
            if tuple(tensor.shape) != tuple(shapes[key]) or tensor.dtype != dtypes[key]:
                raise ValueError(f"{key}: made {tuple(tensor.shape)} {tensor.dtype}, declared {shapes[key]} {dtypes[key]}")
            file.write(tensor.contiguous().reshape(-1).view(torch.uint8).numpy())
