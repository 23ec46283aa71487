"""Which parameter a LoRA key names, built from the model's own module names (no table of SD keys).

A LoRA names a layer (``lora_unet_input_blocks_1_1_proj_in``); the parameter patched is that layer's
``weight`` (or ``bias`` for a "diff_b"). Each layer is known under every name the common trainers write:

- UNet, LDM paths: ``lora_unet_`` + path with '.'→'_'; ``diffusion_model.`` + path (generic form).
- UNet, diffusers paths (kohya sd-scripts, diffusers/PEFT): the same layer under diffusers' block names
  (``down_blocks.0.attentions.0…``), derived from the UNet's config the way diffusers lays its blocks
  out, as ``lora_unet_`` + underscored, ``unet.`` + path, or ``base_model.model.`` + path.
- Text encoder: its checkpoint path ``text_model.encoder.layers.0.self_attn.q_proj`` as ``lora_te_`` +
  underscored, ``text_encoder.`` + path, or ``cond_stage_model.transformer.`` + path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from latentloom.diffusion.unet_config import UNetConfig

# diffusers' ResnetBlock2D names for the LDM ResBlock's layers.
RESNET_NAMES = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}
TEXT_CHECKPOINT_PREFIX = "text_model."


@dataclass(frozen=True)
class LayerIndex:
    """LoRA layer name (any alias) → the module's layer path (its parameters are ``path.weight``)."""

    layers: Mapping[str, str]

    def find(self, lora_name: str) -> str | None:
        return self.layers.get(lora_name)


def layer_paths(module: nn.Module) -> list[str]:
    """Paths of the layers that own a ``weight`` parameter (the ones a LoRA can patch)."""
    return [name for name, child in module.named_modules() if name and "weight" in child._parameters]


def unet_index(unet: nn.Module, config: UNetConfig) -> LayerIndex:
    diffusers = diffusers_block_prefixes(config)
    layers: dict[str, str] = {}
    for path in layer_paths(unet):
        names = [("lora_unet_", path), ("diffusion_model.", path), ("model.diffusion_model.", path)]
        if (renamed := diffusers_path(path, diffusers)) is not None:
            names += [("lora_unet_", renamed), ("unet.", renamed), ("base_model.model.", renamed)]
        for prefix, name in names:
            layers[prefix + (name.replace(".", "_") if prefix.endswith("_") else name)] = path
    return LayerIndex(layers)


def text_index(model: nn.Module) -> LayerIndex:
    layers: dict[str, str] = {}
    for path in layer_paths(model):
        checkpoint_path = TEXT_CHECKPOINT_PREFIX + path.removeprefix(TEXT_CHECKPOINT_PREFIX)
        layers["lora_te_" + checkpoint_path.replace(".", "_")] = path
        layers["text_encoder." + checkpoint_path] = path
        layers["cond_stage_model.transformer." + checkpoint_path] = path
    return LayerIndex(layers)


def diffusers_block_prefixes(config: UNetConfig) -> dict[str, str]:
    """LDM block path → diffusers block path, following diffusers' UNet2DConditionModel layout."""
    prefixes = {
        "time_embed.0": "time_embedding.linear_1",
        "time_embed.2": "time_embedding.linear_2",
        "input_blocks.0.0": "conv_in",
        "middle_block.0": "mid_block.resnets.0",
        "middle_block.1": "mid_block.attentions.0",
        "middle_block.2": "mid_block.resnets.1",
        "out.0": "conv_norm_out",
        "out.2": "conv_out",
    }
    levels, per_level = len(config.channel_mult), config.num_res_blocks
    block = 1
    for level in range(levels):
        for index in range(per_level):
            prefixes[f"input_blocks.{block}.0"] = f"down_blocks.{level}.resnets.{index}"
            if level in config.attention_levels:
                prefixes[f"input_blocks.{block}.1"] = f"down_blocks.{level}.attentions.{index}"
            block += 1
        if level != levels - 1:
            prefixes[f"input_blocks.{block}.0.op"] = f"down_blocks.{level}.downsamplers.0.conv"
            block += 1
    block = 0
    for up, level in enumerate(reversed(range(levels))):
        has_attention = level in config.attention_levels
        for index in range(per_level + 1):
            prefixes[f"output_blocks.{block}.0"] = f"up_blocks.{up}.resnets.{index}"
            if has_attention:
                prefixes[f"output_blocks.{block}.1"] = f"up_blocks.{up}.attentions.{index}"
            if level and index == per_level:
                prefixes[f"output_blocks.{block}.{2 if has_attention else 1}.conv"] = f"up_blocks.{up}.upsamplers.0.conv"
            block += 1
    return prefixes


def diffusers_path(path: str, prefixes: Mapping[str, str]) -> str | None:
    """The diffusers name of an LDM layer path, or None for a layer diffusers does not have."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        if head in prefixes:
            rest = ".".join(parts[cut:])
            target = prefixes[head]
            if ".resnets." in target and rest:
                rest = _resnet_rest(rest)
            return target if not rest else f"{target}.{rest}"
    return None


def _resnet_rest(rest: str) -> str:
    for ldm, diffusers in RESNET_NAMES.items():
        if rest == ldm or rest.startswith(ldm + "."):
            return diffusers + rest[len(ldm) :]
    return rest
