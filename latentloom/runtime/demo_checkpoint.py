"""A small random-weight checkpoint in the exact SD1.5 key layout, so a new install can run the default
workflow end to end before a real model is downloaded (``latentloom demo-checkpoint``). Its images are
noise: the weights are random, only the layout is real.

The layout helpers here (``sd15_text_encoder_shapes``, ``random_weights``) also serve the tests that
build checkpoints of the same layout.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from latentloom.diffusion.unet import UNet
from latentloom.diffusion.unet_config import UNetConfig
from latentloom.diffusion.vae import VAE, VAEConfig
from latentloom.runtime.detect import TEXT_ENCODER_PREFIX, UNET_PREFIX, VAE_PREFIX
from latentloom.runtime.folders import ModelFolders

DEMO_CHECKPOINT_NAME = "latentloom-demo-sd15.safetensors"
CLIP_VOCAB_SIZE = 49408  # the real tokenizer's ids must all be valid rows of the token embedding
CLIP_POSITIONS = 77
# The text encoder's head width is 64, so 64 is the narrowest width it can have (one head).
DEMO_TEXT_WIDTH = 64
DEMO_TEXT_LAYERS = 2


def demo_unet_config() -> UNetConfig:
    """SD1 layout scaled down: two levels, attention at the finer one, 8 heads of 4 channels."""
    return UNetConfig(
        model_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_levels=(0,),
        transformer_depth=1,
        context_dim=DEMO_TEXT_WIDTH,
    )


def demo_vae_config() -> VAEConfig:
    """SD VAE layout scaled down, with SD's four levels so latents are 1/8 of the image."""
    return VAEConfig(ch=32, ch_mult=(1, 2, 2, 2), num_res_blocks=1)


def sd15_text_encoder_shapes(
    *, width: int, layers: int, vocab_size: int = CLIP_VOCAB_SIZE, positions: int = CLIP_POSITIONS
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of SD1's text encoder in the checkpoint (``cond_stage_model.transformer.text_model.*``,
    transformers' CLIPTextModel with an MLP 4x as wide), ``position_ids`` included."""
    model = TEXT_ENCODER_PREFIX + "text_model."
    shapes: dict[str, tuple[int, ...]] = {
        f"{model}embeddings.token_embedding.weight": (vocab_size, width),
        f"{model}embeddings.position_embedding.weight": (positions, width),
        f"{model}embeddings.position_ids": (1, positions),
        f"{model}final_layer_norm.weight": (width,),
        f"{model}final_layer_norm.bias": (width,),
    }
    for index in range(layers):
        layer = f"{model}encoder.layers.{index}."
        for norm in ("layer_norm1", "layer_norm2"):
            shapes[f"{layer}{norm}.weight"] = shapes[f"{layer}{norm}.bias"] = (width,)
        for projection in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{layer}self_attn.{projection}.weight"] = (width, width)
            shapes[f"{layer}self_attn.{projection}.bias"] = (width,)
        shapes[f"{layer}mlp.fc1.weight"] = (4 * width, width)
        shapes[f"{layer}mlp.fc1.bias"] = (4 * width,)
        shapes[f"{layer}mlp.fc2.weight"] = (width, 4 * width)
        shapes[f"{layer}mlp.fc2.bias"] = (width,)
    return shapes


def module_shapes(module_class: type[nn.Module], config: object, *, prefix: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a model built on the meta device (no memory), under ``prefix``."""
    with torch.device("meta"):
        module = module_class(config)
    return {prefix + key: tuple(value.shape) for key, value in module.state_dict().items()}


def random_tensor(key: str, shape: tuple[int, ...], *, generator: torch.Generator) -> Tensor:
    """Weights whose activations stay of order one: matrices and kernels ~ N(0, 1/fan_in), norm scales
    ~ 1 + N(0, 0.1²), biases ~ N(0, 0.1²); position_ids are 0..n-1 as int64."""
    if key.endswith("position_ids"):
        return torch.arange(shape[-1], dtype=torch.int64).expand(shape).contiguous()
    noise = torch.randn(shape, generator=generator)
    if len(shape) >= 2:
        return noise / math.sqrt(math.prod(shape[1:]))
    return 1.0 + 0.1 * noise if key.endswith(".weight") else 0.1 * noise


def random_weights(shapes: Mapping[str, tuple[int, ...]], *, seed: int, dtype: torch.dtype) -> dict[str, Tensor]:
    """Deterministic random weights for ``shapes`` (keys in sorted order draw from one generator)."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for key in sorted(shapes):
        tensor = random_tensor(key, shapes[key], generator=generator)
        weights[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return weights


def demo_state_dict(*, seed: int = 0, dtype: torch.dtype = torch.float16) -> dict[str, Tensor]:
    shapes = {
        **module_shapes(UNet, demo_unet_config(), prefix=UNET_PREFIX),
        **module_shapes(VAE, demo_vae_config(), prefix=VAE_PREFIX),
        **sd15_text_encoder_shapes(width=DEMO_TEXT_WIDTH, layers=DEMO_TEXT_LAYERS),
    }
    return random_weights(shapes, seed=seed, dtype=dtype)


def write_demo_checkpoint(folders: ModelFolders, *, seed: int = 0, name: str = DEMO_CHECKPOINT_NAME) -> Path:
    """Write the demo checkpoint into the first checkpoints folder and return its path (replacing a
    previous one; written to a temporary name first, so a crash never leaves half a file)."""
    target_dir = folders.roots("checkpoints")[0]
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / name
    partial = target.with_name(f".{name}.partial")
    metadata = {"latentloom.demo": "random weights in the SD1.5 layout; images are noise"}
    save_file(demo_state_dict(seed=seed), str(partial), metadata=metadata)
    os.replace(partial, target)
    return target
