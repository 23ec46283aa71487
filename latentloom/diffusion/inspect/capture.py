"""The UNetObserver that records UNet forward passes, reducing every tensor the moment it is handed over.

It never changes what the model computes: ``attention`` reads q and k and returns None, so the model runs
its own attention exactly as without an observer. A new pass starts at ``input_blocks.0``, the first block
UNet.forward reports (the stem convolution, before any attention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom.diffusion.inspect.architecture import Size, block_of_layer
from latentloom.diffusion.inspect.reduce import (
    Statistics,
    channel_mean_magnitude,
    pca_rgb,
    reduce_attention,
    statistics,
)
from latentloom.diffusion.observe import AttentionCall, UNetObserver

FIRST_BLOCK = "input_blocks.0"


@dataclass(frozen=True)
class CaptureOptions:
    """What to keep. Statistics of every block, skip and cross-attention layer are always kept (small)."""

    map_blocks: frozenset[str] | None = None  # blocks whose feature maps are kept; None = every block
    feature_maps: bool = True  # channel-mean magnitude and PCA-to-RGB per kept block
    tokens: tuple[int, ...] | None = None  # token positions whose attention maps are kept; None = all
    layer_maps: bool = True  # head-averaged token maps per layer (the per-resolution averages are always kept)
    keep_probabilities: bool = False  # full (batch, heads, queries, tokens) per layer: large, on request only
    rows: int | None = None  # keep only the first ``rows`` batch rows (e.g. the positive half of a CFG batch)
    pca_seed: int = 0


@dataclass(frozen=True)
class BlockCapture:
    name: str
    shape: tuple[int, ...]  # (batch, channels, height, width) of the output
    statistics: Statistics
    magnitude: Tensor | None  # (rows, h, w) channel-mean |output|
    pca: Tensor | None  # (rows, h, w, 3) in [0, 1]


@dataclass(frozen=True)
class SkipCapture:
    source: str  # the input block whose output is carried over
    target: str  # the output block it is concatenated into
    shape: tuple[int, ...]
    statistics: Statistics


@dataclass(frozen=True)
class AttentionCapture:
    """One cross-attention layer of one pass."""

    layer: str
    block: str
    size: Size  # the query grid
    heads: int
    context_tokens: int
    kept_tokens: tuple[int, ...]  # the token positions of ``token_maps``' second axis
    entropy: Tensor  # (rows, heads) nats, averaged over queries
    token_mass: Tensor  # (rows, context_tokens) attention averaged over heads and queries
    token_maps: Tensor | None  # (rows, kept tokens, h, w) averaged over heads
    probabilities: Tensor | None  # (rows, heads, h·w, context_tokens) when asked for


@dataclass
class PassCapture:
    """Everything one UNet forward pass left behind, in forward order."""

    blocks: dict[str, BlockCapture] = field(default_factory=dict)
    skips: list[SkipCapture] = field(default_factory=list)
    attention: list[AttentionCapture] = field(default_factory=list)
    kept_tokens: tuple[int, ...] = ()
    _level_sums: dict[Size, Tensor] = field(default_factory=dict)
    _level_counts: dict[Size, int] = field(default_factory=dict)

    def add_level_map(self, size: Size, maps: Tensor) -> None:
        if size in self._level_sums:
            self._level_sums[size] = self._level_sums[size] + maps
        else:
            self._level_sums[size] = maps.clone()
        self._level_counts[size] = self._level_counts.get(size, 0) + 1

    @property
    def attention_sizes(self) -> list[Size]:
        """The query grids cross-attention ran at, finest first."""
        return sorted(self._level_sums, key=lambda s: -s[0] * s[1])

    def level_maps(self, size: Size) -> Tensor:
        """(rows, kept tokens, h, w): token maps averaged over heads and over every layer of this grid size."""
        if size not in self._level_sums:
            known = ", ".join(f"{h}x{w}" for h, w in self.attention_sizes) or "none"
            raise KeyError(f"no cross-attention ran at {size[0]}x{size[1]} (sizes seen: {known})")
        return self._level_sums[size] / self._level_counts[size]

    def layers_at(self, size: Size) -> int:
        return self._level_counts.get(size, 0)

    def combined_maps(self) -> Tensor:
        """(rows, kept tokens, h, w) at the finest grid: every cross-attention layer's head-averaged maps,
        each coarser grid resized bilinearly, averaged with one weight per layer."""
        sizes = self.attention_sizes
        if not sizes:
            raise KeyError("no cross-attention ran in this pass")
        finest = sizes[0]
        total = None
        for size in sizes:
            maps = self._level_sums[size]
            if size != finest:
                rows, tokens = maps.shape[:2]
                flat = maps.reshape(rows * tokens, 1, *size)
                maps = F.interpolate(flat, size=finest, mode="bilinear", align_corners=False).reshape(rows, tokens, *finest)
            total = maps if total is None else total + maps
        return total / sum(self._level_counts.values())


class InspectionObserver(UNetObserver):
    """Records each forward pass into ``passes`` (one PassCapture per UNet call)."""

    def __init__(self, options: CaptureOptions | None = None) -> None:
        self.options = options or CaptureOptions()
        self.passes: list[PassCapture] = []

    @property
    def current(self) -> PassCapture:
        if not self.passes:
            self.passes.append(PassCapture(kept_tokens=self.options.tokens or ()))
        return self.passes[-1]

    def _rows(self, tensor: Tensor) -> Tensor:
        rows = self.options.rows
        return tensor if rows is None else tensor[:rows]

    def block_output(self, name: str, output: Tensor) -> None:
        if name == FIRST_BLOCK:
            self.passes.append(PassCapture(kept_tokens=self.options.tokens or ()))
        output = self._rows(output)
        wanted = self.options.feature_maps and (self.options.map_blocks is None or name in self.options.map_blocks)
        self.current.blocks[name] = BlockCapture(
            name=name,
            shape=tuple(output.shape),
            statistics=statistics(output),
            magnitude=channel_mean_magnitude(output) if wanted else None,
            pca=pca_rgb(output, seed=self.options.pca_seed) if wanted else None,
        )

    def skip(self, *, source: str, target: str, tensor: Tensor) -> None:
        tensor = self._rows(tensor)
        self.current.skips.append(SkipCapture(source, target, tuple(tensor.shape), statistics(tensor)))

    def attention(self, call: AttentionCall) -> Tensor | None:
        if not call.cross:
            return None
        with torch.no_grad():
            self._record_cross_attention(call)
        return None

    def _record_cross_attention(self, call: AttentionCall) -> None:
        options = self.options
        q, k = self._rows(call.q), self._rows(call.k)
        reduced = reduce_attention(q, k, call.heads, tokens=options.tokens, keep_probabilities=options.keep_probabilities)
        height, width = call.spatial
        kept = reduced.kept_tokens
        maps = reduced.token_maps.unflatten(2, (height, width))  # (rows, kept, h·w) -> (rows, kept, h, w)
        capture = self.current
        capture.kept_tokens = kept
        capture.add_level_map((height, width), maps)
        capture.attention.append(
            AttentionCapture(
                layer=call.layer,
                block=block_of_layer(call.layer),
                size=(height, width),
                heads=call.heads,
                context_tokens=k.shape[1],
                kept_tokens=kept,
                entropy=reduced.entropy,
                token_mass=reduced.token_mass,
                token_maps=maps if options.layer_maps else None,
                probabilities=reduced.probabilities,
            )
        )

