"""What a person asks to see, typed as text in a node's widgets: which blocks, which resolution level."""

from __future__ import annotations

import re
from collections.abc import Sequence

from latentloom.diffusion.inspect.architecture import BlockInfo, Size
from latentloom.diffusion.inspect.views import block_code

ALL = "all"
# Query-grid sizes relative to the latent: cross-attention runs at the latent's size and at each halving.
RESOLUTIONS = (ALL, "1/1", "1/2", "1/4", "1/8", "1/16")
_RANGE = re.compile(r"^([a-z]+)(\d+)\s*-\s*(?:[a-z]+)?(\d+)$")


class SelectionError(ValueError):
    """A selection that names nothing in this UNet (the message lists what there is)."""


def select_blocks(text: str, architecture: Sequence[BlockInfo]) -> tuple[str, ...]:
    """Block names (forward order) chosen by ``text``: empty or "all" for every block, else a comma- or
    space-separated list of block names ("input_blocks.4", "middle_block"), merge-tool codes ("IN04",
    "M00", "OUT11"), code ranges ("IN00-IN05" or "OUT3-8") and stages ("input", "middle", "output")."""
    words = [w for w in re.split(r"[,\s]+", text.strip().lower()) if w]
    if not words or words == [ALL]:
        return tuple(b.name for b in architecture)
    chosen: set[str] = set()
    for word in words:
        found = _matching(word, architecture)
        if not found:
            codes = ", ".join(block_code(b) for b in architecture)
            raise SelectionError(f"{word!r} names no block; blocks are {codes} (or input/middle/output, or 'all')")
        chosen |= found
    return tuple(b.name for b in architecture if b.name in chosen)


def _matching(word: str, architecture: Sequence[BlockInfo]) -> set[str]:
    if word in ("input", "middle", "output"):
        return {b.name for b in architecture if b.stage == word}
    by_key = {}
    for b in architecture:
        code = block_code(b).lower()
        prefix = code.rstrip("0123456789")
        by_key |= {b.name.lower(): b.name, code: b.name, f"{prefix}{b.index}": b.name}
    if word in by_key:
        return {by_key[word]}
    span = _RANGE.match(word)
    if span:
        prefix, first, last = span.group(1), int(span.group(2)), int(span.group(3))
        low, high = min(first, last), max(first, last)
        return {by_key[f"{prefix}{i}"] for i in range(low, high + 1) if f"{prefix}{i}" in by_key}
    return set()


def halved(size: Size, times: int) -> Size:
    """The size after ``times`` Downsamples (each gives ceil(n / 2))."""
    height, width = size
    for _ in range(times):
        height, width = (height + 1) // 2, (width + 1) // 2
    return (height, width)


def select_size(choice: str, sizes: Sequence[Size], latent_size: Size) -> Size | None:
    """The query-grid size a resolution choice ("1/1", "1/2", …) names, or None for "all"."""
    if choice == ALL:
        return None
    if choice not in RESOLUTIONS:
        raise SelectionError(f"resolution {choice!r} is not one of {', '.join(RESOLUTIONS)}")
    size = halved(latent_size, RESOLUTIONS.index(choice) - 1)
    if size not in sizes:
        there = [f"1/{2 ** k}" for k in range(len(RESOLUTIONS)) if halved(latent_size, k) in sizes]
        raise SelectionError(
            f"no cross-attention runs at {choice} of the latent ({size[0]}×{size[1]}); it runs at {', '.join(there)}"
        )
    return size
