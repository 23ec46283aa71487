"""UNetConfig: the numbers that define an SD1/SD2-layout UNet, read back from a checkpoint's tensor shapes.

The defaults are Stable Diffusion 1.5's UNet. Keys are those of the LDM checkpoint with the
``model.diffusion_model.`` prefix stripped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GROUP_NORM_GROUPS = 32
SD1_NUM_HEADS = 8  # SD1 uses 8 heads at every level
SD2_HEAD_CHANNELS = 64  # SD2 uses 64-wide heads, so the head count grows with the channels


class UNetLayoutError(ValueError):
    """A state dict does not have the layout of an SD1/SD2 UNet (names which key or shape is wrong)."""


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (0, 1, 2)  # levels (indices into channel_mult) with transformers
    transformer_depth: int = 1
    context_dim: int = 768
    num_heads: int = SD1_NUM_HEADS  # used when num_head_channels is None
    num_head_channels: int | None = None  # when set, heads = channels // num_head_channels (SD2)
    linear_proj: bool = False  # proj_in/proj_out are Linear (SD2) rather than 1x1 Conv2d (SD1)

    def __post_init__(self) -> None:
        for level, mult in enumerate(self.channel_mult):
            channels = self.model_channels * mult
            if channels % GROUP_NORM_GROUPS:
                raise ValueError(f"UNetConfig: level {level} has {channels} channels, not a multiple of 32")
            if level in self.attention_levels:
                self.heads_for(channels)
        unknown = [level for level in self.attention_levels if not 0 <= level < len(self.channel_mult)]
        if unknown:
            raise ValueError(f"UNetConfig: attention_levels {unknown} are not levels of {self.channel_mult}")

    @property
    def time_embed_dim(self) -> int:
        return self.model_channels * 4

    @property
    def downscale(self) -> int:
        """How many latent pixels one pixel of the deepest level spans."""
        return 2 ** (len(self.channel_mult) - 1)

    def heads_for(self, channels: int) -> tuple[int, int]:
        """(heads, dim_head) of a transformer working on ``channels`` channels."""
        if self.num_head_channels is None:
            heads, dim_head = self.num_heads, channels // self.num_heads
        else:
            heads, dim_head = channels // self.num_head_channels, self.num_head_channels
        if heads < 1 or heads * dim_head != channels:
            raise ValueError(
                f"UNetConfig: {channels} channels do not split into heads "
                f"(num_heads={self.num_heads}, num_head_channels={self.num_head_channels})"
            )
        return heads, dim_head

    @classmethod
    def from_state_dict(
        cls,
        state: Mapping[str, Any],
        *,
        num_heads: int | None = None,
        num_head_channels: int | None = None,
    ) -> UNetConfig:
        """Read the architecture from tensor shapes (a state dict, or a mapping of key -> shape tuple).

        The head split is not visible in shapes: by default SD1-style checkpoints (conv proj_in) get 8
        heads and SD2-style ones (linear proj_in) 64-wide heads. Pass ``num_heads`` or
        ``num_head_channels`` to override.
        """
        shapes = _shapes(state)
        stem = _shape(shapes, "input_blocks.0.0.weight", ndim=4)
        model_channels, in_channels = stem[0], stem[1]
        levels = _input_levels(shapes)
        num_res_blocks = _uniform([len(blocks) for blocks in levels], what="res blocks per level")
        channel_mult = tuple(_level_mult(shapes, blocks, model_channels) for blocks in levels)
        depths = {level: _transformer_depth(shapes, blocks) for level, blocks in enumerate(levels)}
        attention_levels = tuple(level for level, depth in depths.items() if depth)
        middle_depth = _transformer_depth(shapes, ["middle_block"], position=1)
        if not middle_depth:
            raise UNetLayoutError("middle_block.1 is not a SpatialTransformer (no transformer_blocks)")
        all_depths = [depths[level] for level in attention_levels] + [middle_depth]
        transformer_depth = _uniform(all_depths, what="transformer depth")
        proj_in = _shape(shapes, "middle_block.1.proj_in.weight")
        context_dim = _shape(shapes, "middle_block.1.transformer_blocks.0.attn2.to_k.weight", ndim=2)[1]
        linear_proj = len(proj_in) == 2
        out_channels = _shape(shapes, "out.2.weight", ndim=4)[0]
        if num_heads is None and num_head_channels is None:
            if linear_proj:
                num_head_channels = SD2_HEAD_CHANNELS
            else:
                num_heads = SD1_NUM_HEADS
        try:
            return cls(
                in_channels=in_channels,
                out_channels=out_channels,
                model_channels=model_channels,
                channel_mult=channel_mult,
                num_res_blocks=num_res_blocks,
                attention_levels=attention_levels,
                transformer_depth=transformer_depth,
                context_dim=context_dim,
                num_heads=num_heads if num_heads is not None else SD1_NUM_HEADS,
                num_head_channels=num_head_channels,
                linear_proj=linear_proj,
            )
        except ValueError as error:  # the shapes describe an impossible config
            raise UNetLayoutError(str(error)) from error


def _shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for key, v in state.items()}


def _shape(shapes: Mapping[str, tuple[int, ...]], key: str, *, ndim: int | None = None) -> tuple[int, ...]:
    if key not in shapes:
        raise UNetLayoutError(
            f"missing '{key}': not an SD1/SD2 UNet state dict "
            "(keys must have 'model.diffusion_model.' stripped)"
        )
    shape = shapes[key]
    if ndim is not None and len(shape) != ndim:
        raise UNetLayoutError(f"'{key}' has shape {shape}, expected {ndim} dimensions")
    return shape


_INPUT_BLOCK = re.compile(r"input_blocks\.(\d+)\.")


def _input_levels(shapes: Mapping[str, tuple[int, ...]]) -> list[list[str]]:
    """Group input blocks 1.. into levels: each level is its res blocks, ended by a Downsample (op)."""
    indices = sorted({int(m.group(1)) for key in shapes if (m := _INPUT_BLOCK.match(key))})
    if indices != list(range(len(indices))):
        raise UNetLayoutError(f"input_blocks are not numbered 0..N without gaps: {indices}")
    levels: list[list[str]] = [[]]
    for index in indices[1:]:
        block = f"input_blocks.{index}"
        if f"{block}.0.op.weight" in shapes:
            levels.append([])
        elif f"{block}.0.in_layers.0.weight" in shapes:
            levels[-1].append(block)
        else:
            raise UNetLayoutError(f"{block}.0 is neither a ResBlock (in_layers) nor a Downsample (op)")
    return levels


def _level_mult(shapes: Mapping[str, tuple[int, ...]], blocks: list[str], model_channels: int) -> int:
    widths = [_shape(shapes, f"{block}.0.out_layers.3.weight")[0] for block in blocks]
    channels = _uniform(widths, what="width within a level")
    if channels % model_channels:
        raise UNetLayoutError(f"{blocks[0]} has {channels} channels, not a multiple of {model_channels}")
    return channels // model_channels


def _transformer_depth(shapes: Mapping[str, tuple[int, ...]], blocks: list[str], *, position: int = 1) -> int:
    """Transformer blocks per SpatialTransformer in ``blocks`` (0 when they have none)."""
    depths = []
    for block in blocks:
        prefix = f"{block}.{position}.transformer_blocks."
        depths.append(len({key[len(prefix) :].split(".")[0] for key in shapes if key.startswith(prefix)}))
    return _uniform(depths, what="transformer depth")


def _uniform(values: list[int], *, what: str) -> int:
    if not values or len(set(values)) != 1:
        raise UNetLayoutError(f"expected one {what} throughout the UNet, found {values}")
    return values[0]
