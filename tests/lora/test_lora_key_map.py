"""The diffusers names of our LDM layers, checked against diffusers' own single-file conversion."""

from __future__ import annotations

import torch
from support.checkpoint_factory import tiny_sd15_unet_config
from support.diffusers_reference import diffusers_unet
from support.tiny_sd import build_unet

from latentloom.runtime.lora.keys import diffusers_block_prefixes, diffusers_path, layer_paths, unet_index


def test_every_unet_layer_has_the_diffusers_name_diffusers_gives_its_weight():
    config = tiny_sd15_unet_config()
    unet = build_unet(config, seed=3)
    ours = unet.state_dict()
    theirs = diffusers_unet(config, dict(ours)).state_dict()
    prefixes = diffusers_block_prefixes(config)
    paths = layer_paths(unet)
    assert len(paths) == len({diffusers_path(p, prefixes) for p in paths})  # one name per layer
    for path in paths:
        name = diffusers_path(path, prefixes)
        assert name is not None, path
        # diffusers' converter reshapes 1×1 conv projections only when the checkpoint asks; compare values.
        assert torch.equal(theirs[name + ".weight"].flatten(), ours[path + ".weight"].flatten()), (path, name)


def test_the_index_resolves_kohya_peft_and_generic_names_to_one_layer():
    config = tiny_sd15_unet_config()
    index = unet_index(build_unet(config, seed=0), config)
    path = "output_blocks.2.1.transformer_blocks.0.ff.net.0.proj"
    for name in (
        "lora_unet_output_blocks_2_1_transformer_blocks_0_ff_net_0_proj",
        "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_ff_net_0_proj",
        "unet.up_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj",
        "diffusion_model.output_blocks.2.1.transformer_blocks.0.ff.net.0.proj",
    ):
        assert index.find(name) == path, name
    assert index.find("lora_unet_down_blocks_0_downsamplers_0_conv") == "input_blocks.2.0.op"
    assert index.find("lora_unet_up_blocks_0_upsamplers_0_conv") == "output_blocks.1.1.conv"
    assert index.find("lora_unet_up_blocks_0_resnets_1_conv_shortcut") == "output_blocks.1.0.skip_connection"
