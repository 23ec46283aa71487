"""Independent reference models: our-layout weights converted by diffusers' own single-file conversion code
(diffusers.loaders.single_file_utils) and loaded into diffusers' UNet2DConditionModel / AutoencoderKL.

Test-only: diffusers is a test dependency, never imported by latentloom itself.
"""

from __future__ import annotations

import warnings
from typing import Any

from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    create_unet_diffusers_config_from_ldm,
    create_vae_diffusers_config_from_ldm,
)
from torch import Tensor

from latentloom.diffusion.unet_config import UNetConfig
from latentloom.diffusion.vae import VAEConfig
from support.tiny_sd import UNET_PREFIX, VAE_PREFIX


def ldm_yaml_params(*, unet: UNetConfig, vae: VAEConfig) -> dict[str, Any]:
    """The LDM yaml (v1-inference.yaml shape) that describes these configs, as diffusers reads it."""
    unet_params: dict[str, Any] = {
        "in_channels": unet.in_channels,
        "out_channels": unet.out_channels,
        "model_channels": unet.model_channels,
        "channel_mult": list(unet.channel_mult),
        "num_res_blocks": unet.num_res_blocks,
        "attention_resolutions": [2**level for level in unet.attention_levels],
        "transformer_depth": unet.transformer_depth,
        "context_dim": unet.context_dim,
        "use_linear_in_transformer": unet.linear_proj,
    }
    if unet.num_head_channels is None:
        unet_params["num_heads"] = unet.num_heads
    else:
        unet_params["num_head_channels"] = unet.num_head_channels
    ddconfig = {
        "in_channels": vae.in_channels,
        "out_ch": vae.out_channels,
        "ch": vae.ch,
        "ch_mult": list(vae.ch_mult),
        "num_res_blocks": vae.num_res_blocks,
        "z_channels": vae.z_channels,
    }
    return {
        "model": {
            "params": {
                "scale_factor": vae.scale_factor,
                "unet_config": {"params": unet_params},
                "first_stage_config": {"params": {"ddconfig": ddconfig}},
            }
        }
    }


def diffusers_unet(config: UNetConfig, state: dict[str, Tensor]) -> UNet2DConditionModel:
    """diffusers' UNet holding ``state`` (our layout, no prefix), converted by diffusers' own code."""
    checkpoint = {UNET_PREFIX + key: value for key, value in state.items()}
    original = ldm_yaml_params(unet=config, vae=VAEConfig())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        diffusers_config = create_unet_diffusers_config_from_ldm(original, checkpoint)
    model = UNet2DConditionModel(**diffusers_config)
    model.load_state_dict(convert_ldm_unet_checkpoint(checkpoint, diffusers_config), strict=True)
    return model.eval()


def diffusers_vae(config: VAEConfig, state: dict[str, Tensor]) -> AutoencoderKL:
    """diffusers' AutoencoderKL holding ``state`` (our layout, no prefix), converted by diffusers' code."""
    checkpoint = {VAE_PREFIX + key: value for key, value in state.items()}
    original = ldm_yaml_params(unet=UNetConfig(), vae=config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        diffusers_config = create_vae_diffusers_config_from_ldm(original, checkpoint)
    model = AutoencoderKL(**diffusers_config)
    model.load_state_dict(convert_ldm_vae_checkpoint(checkpoint, diffusers_config), strict=True)
    return model.eval()
