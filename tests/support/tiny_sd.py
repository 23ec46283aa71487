"""Tiny Stable Diffusion parts in the original checkpoint layout, for tests of the model code, the loader and
end-to-end runs: small configs, well-scaled random weights, and the key shapes of a real SD1.5 file.

The tiny configs round-trip through ``*Config.from_state_dict`` (their head split is the SD1 default of 8
heads), so a loader that detects the architecture from shapes rebuilds exactly these models.
"""

from __future__ import annotations

import json

import torch
from torch import Tensor, nn

from latentloom.diffusion.unet import UNet
from latentloom.diffusion.unet_config import UNetConfig
from latentloom.diffusion.vae import VAE, VAEConfig
from support.shared import shared_dir

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."


def tiny_unet_config() -> UNetConfig:
    """SD1 layout scaled down: two levels, attention at the finer one, conv proj_in, 8 heads of 4."""
    return UNetConfig(
        model_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_levels=(0,),
        transformer_depth=1,
        context_dim=32,
    )


def tiny_vae_config() -> VAEConfig:
    """SD VAE layout scaled down, keeping four levels so latents are 1/8 of the image like SD's."""
    return VAEConfig(ch=32, ch_mult=(1, 2, 2, 2), num_res_blocks=1)


def key_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def unet_key_shapes(config: UNetConfig) -> dict[str, tuple[int, ...]]:
    """Our UNet's state-dict shapes for ``config``, built on the meta device (no memory)."""
    with torch.device("meta"):
        return key_shapes(UNet(config))


def vae_key_shapes(config: VAEConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return key_shapes(VAE(config))


def random_unet_state_dict(config: UNetConfig, *, seed: int) -> dict[str, Tensor]:
    """Random float32 UNet weights (keys without prefix) whose activations stay of order one."""
    return random_state_dict(unet_key_shapes(config), seed=seed)


def random_vae_state_dict(config: VAEConfig, *, seed: int) -> dict[str, Tensor]:
    """Random float32 VAE weights (keys without prefix) whose activations stay of order one."""
    return random_state_dict(vae_key_shapes(config), seed=seed)


def random_state_dict(shapes: dict[str, tuple[int, ...]], *, seed: int) -> dict[str, Tensor]:
    """Weights ~ N(0, 1/fan_in) (variance-preserving), norm scales ~ 1 + N(0, 0.1²), biases ~ N(0, 0.1²).

    Layers the originals zero-initialise (out_layers.3, proj_out, out.2) get random values too, so every
    weight influences the output and agreement tests see each of them.
    """
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key in sorted(shapes):
        shape = shapes[key]
        noise = torch.randn(shape, generator=generator)
        if len(shape) >= 2:
            fan_in = 1
            for size in shape[1:]:
                fan_in *= size
            state[key] = noise / fan_in**0.5
        elif key.endswith(".weight"):
            state[key] = 1.0 + 0.1 * noise
        else:
            state[key] = 0.1 * noise
    return state


def build_unet(config: UNetConfig, *, seed: int) -> UNet:
    unet = UNet(config)
    unet.load_state_dict(random_unet_state_dict(config, seed=seed), strict=True)
    return unet.eval()


def build_vae(config: VAEConfig, *, seed: int) -> VAE:
    vae = VAE(config)
    vae.load_state_dict(random_vae_state_dict(config, seed=seed), strict=True)
    return vae.eval()


def full_size_key_shapes() -> dict[str, tuple[int, ...]]:
    """Every key -> shape of a real single-file SD1.5 checkpoint (shared/sd15_checkpoint_keys.json)."""
    with open(shared_dir() / "sd15_checkpoint_keys.json", encoding="utf-8") as file:
        return {key: tuple(shape) for key, shape in json.load(file).items()}


def strip_prefix(shapes: dict[str, tuple[int, ...]], prefix: str) -> dict[str, tuple[int, ...]]:
    """The entries under ``prefix``, with the prefix removed (e.g. UNET_PREFIX, VAE_PREFIX)."""
    return {key[len(prefix) :]: shape for key, shape in shapes.items() if key.startswith(prefix)}
