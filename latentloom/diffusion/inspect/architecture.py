"""The UNet's block table, read from the modules themselves: what each block is made of, how wide it is,
how large its output is for a given latent, how many parameters it holds and where cross-attention runs.

Spatial sizes follow UNet.forward exactly: a Downsample (3×3 conv, stride 2, padding 1) gives ceil(n / 2);
an Upsample goes to the size of the skip it is about to meet, so odd latent sizes round-trip.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from latentloom.diffusion.attention import SpatialTransformer
from latentloom.diffusion.unet import UNet
from latentloom.diffusion.unet_blocks import Downsample, ResBlock, TimestepBlock, Upsample

Size = tuple[int, int]


@dataclass(frozen=True)
class CrossAttentionSite:
    """One cross-attention layer (attn2): image tokens of a ``size`` grid attend to the text tokens."""

    layer: str  # e.g. "input_blocks.1.1.transformer_blocks.0.attn2"
    heads: int
    dim_head: int
    context_dim: int
    size: Size  # the query grid: one query per latent-feature pixel

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "heads": self.heads,
            "dim_head": self.dim_head,
            "context_dim": self.context_dim,
            "size": list(self.size),
        }


@dataclass(frozen=True)
class BlockInfo:
    name: str  # "input_blocks.N", "middle_block" or "output_blocks.N": what observers report
    stage: str  # "input", "middle" or "output"
    index: int  # position within its stage (0 for the middle block)
    level: int  # resolution level of the block's output: 0 = latent size, each Downsample adds one
    modules: tuple[str, ...]  # the block's layers in order: Conv2d, ResBlock, SpatialTransformer, ...
    in_channels: int  # for output blocks: the running features plus the skip concatenated onto them
    out_channels: int
    size: Size  # (height, width) of the block's output for the latent the table was made for
    parameters: int
    cross_attention: tuple[CrossAttentionSite, ...]
    skip_from: str | None = None  # output blocks: the input block whose output is concatenated in
    skip_to: str | None = None  # input blocks: the output block that receives this output

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stage": self.stage,
            "index": self.index,
            "level": self.level,
            "modules": list(self.modules),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "size": list(self.size),
            "parameters": self.parameters,
            "cross_attention": [site.to_json() for site in self.cross_attention],
            "skip_from": self.skip_from,
            "skip_to": self.skip_to,
        }


def unet_architecture(unet: UNet, latent_size: Size) -> tuple[BlockInfo, ...]:
    """Every block of ``unet`` in forward order (input blocks, middle block, output blocks) for a latent
    of ``latent_size`` = (height, width). Works on a UNet built on the meta device too."""
    inputs = unet.input_blocks
    size, level, channels = (int(latent_size[0]), int(latent_size[1])), 0, unet.config.in_channels
    blocks: list[BlockInfo] = []
    skip_sizes: list[Size] = []
    for index, block in enumerate(inputs):
        info = _describe(block, f"input_blocks.{index}", "input", index, size=size, level=level, channels=channels)
        info = _with_skip(info, skip_to=f"output_blocks.{len(inputs) - 1 - index}")
        blocks.append(info)
        size, level, channels = info.size, info.level, info.out_channels
        skip_sizes.append(size)
    middle = _describe(unet.middle_block, "middle_block", "middle", 0, size=size, level=level, channels=channels)
    blocks.append(middle)
    channels = middle.out_channels
    skip_channels = [b.out_channels for b in blocks[: len(inputs)]]
    for index, block in enumerate(unet.output_blocks):
        skip_sizes.pop()
        incoming = channels + skip_channels.pop()
        upsample_to = skip_sizes[-1] if skip_sizes else None
        info = _describe(
            block, f"output_blocks.{index}", "output", index,
            size=size, level=level, channels=incoming, upsample_to=upsample_to,
        )  # fmt: skip
        blocks.append(_with_skip(info, skip_from=f"input_blocks.{len(skip_channels)}"))
        size, level, channels = info.size, info.level, info.out_channels
    return tuple(blocks)


def _describe(
    block: TimestepBlock,
    name: str,
    stage: str,
    index: int,
    *,
    size: Size,
    level: int,
    channels: int,
    upsample_to: Size | None = None,
) -> BlockInfo:
    """Walk one block's layers, tracking channels and size as the forward pass changes them."""
    in_channels, kinds, sites = channels, [], []
    for position, layer in enumerate(block):
        kinds.append(type(layer).__name__)
        if isinstance(layer, ResBlock):
            channels = layer.out_layers[3].out_channels
        elif isinstance(layer, nn.Conv2d):
            channels = layer.out_channels
        elif isinstance(layer, SpatialTransformer):
            sites += _sites(layer, f"{name}.{position}", size)
        elif isinstance(layer, Downsample):
            size, level = ((size[0] + 1) // 2, (size[1] + 1) // 2), level + 1
        elif isinstance(layer, Upsample):
            size, level = upsample_to or (size[0] * 2, size[1] * 2), level - 1
    return BlockInfo(
        name=name,
        stage=stage,
        index=index,
        level=level,
        modules=tuple(kinds),
        in_channels=in_channels,
        out_channels=channels,
        size=size,
        parameters=sum(p.numel() for p in block.parameters()),
        cross_attention=tuple(sites),
    )


def _sites(transformer: SpatialTransformer, prefix: str, size: Size) -> list[CrossAttentionSite]:
    sites = []
    for depth, block in enumerate(transformer.transformer_blocks):
        attn = block.attn2
        inner = attn.to_q.out_features
        sites.append(
            CrossAttentionSite(
                layer=f"{prefix}.transformer_blocks.{depth}.attn2",
                heads=attn.heads,
                dim_head=inner // attn.heads,
                context_dim=attn.to_k.in_features,
                size=size,
            )
        )
    return sites


def _with_skip(info: BlockInfo, *, skip_from: str | None = None, skip_to: str | None = None) -> BlockInfo:
    return replace(info, skip_from=skip_from or info.skip_from, skip_to=skip_to or info.skip_to)


def block_of_layer(layer: str) -> str:
    """The block a qualified module name belongs to: "output_blocks.3.1.transformer_blocks.0.attn2" ->
    "output_blocks.3", "middle_block.1.…" -> "middle_block"."""
    parts = layer.split(".")
    return parts[0] if parts[0] == "middle_block" else ".".join(parts[:2])


def parameter_total(unet: UNet) -> int:
    return sum(p.numel() for p in unet.parameters())
