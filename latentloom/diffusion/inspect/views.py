"""Captured tensors -> pictures, in torch alone.

A Picture is pixels (height, width, 3) in [0, 1] plus a display list of text labels and polylines in pixel
coordinates: composing, colouring and laying out happen here; whoever renders the picture (the node, with
PIL) draws the lines and the text on top. Layout measures text with ``text_width``, an estimate for a
proportional font; renderers draw at the given size and anchor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom.diffusion.inspect.architecture import BlockInfo

RGB = tuple[int, int, int]
BACKGROUND = (0.08, 0.08, 0.10)
EMPTY_TILE = (0.18, 0.18, 0.21)
TEXT: RGB = (232, 232, 236)
MUTED: RGB = (150, 150, 162)
GRID: RGB = (60, 60, 70)
SERIES_COLOURS: tuple[RGB, ...] = (
    (86, 180, 233), (230, 159, 0), (0, 158, 115), (240, 228, 66),
    (204, 121, 167), (213, 94, 0), (0, 114, 178), (200, 200, 200),
)  # fmt: skip  (Okabe–Ito: tellable apart with colour-vision deficiencies)
# matplotlib's "inferno" sampled at 0, ¼, ½, ¾, 1: dark = little, bright = much.
INFERNO = ((0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164))


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    size: int = 12
    color: RGB = TEXT
    anchor: str = "la"  # PIL's anchors: l/m/r horizontally, a (top) / m / s (baseline) vertically


@dataclass(frozen=True)
class Polyline:
    points: tuple[tuple[float, float], ...]
    color: RGB = MUTED
    width: int = 1
    markers: bool = False  # a dot on every point


@dataclass
class Picture:
    pixels: Tensor  # (height, width, 3) float in [0, 1]
    labels: list[Label] = field(default_factory=list)
    lines: list[Polyline] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def paste(self, image: Tensor, x: int, y: int) -> None:
        """Copy an (h, w, 3) image with its top-left corner at (x, y), clipped to the picture."""
        h = min(image.shape[0], self.height - y)
        w = min(image.shape[1], self.width - x)
        if h > 0 and w > 0:
            self.pixels[y : y + h, x : x + w] = image[:h, :w]

    def place(self, other: Picture, x: int, y: int) -> None:
        """Draw ``other`` (pixels, labels and lines) with its top-left corner at (x, y)."""
        self.paste(other.pixels, x, y)
        self.labels += [Label(lb.x + x, lb.y + y, lb.text, lb.size, lb.color, lb.anchor) for lb in other.labels]
        self.lines += [
            Polyline(tuple((px + x, py + y) for px, py in ln.points), ln.color, ln.width, ln.markers) for ln in other.lines
        ]


def blank(height: int, width: int, color: tuple[float, float, float] = BACKGROUND) -> Picture:
    return Picture(torch.tensor(color, dtype=torch.float32).expand(height, width, 3).clone())


def text_width(text: str, size: int) -> int:
    """Width of ``text`` at ``size`` px in a proportional sans font (an upper-side estimate for layout)."""
    return math.ceil(len(text) * size * 0.62)


# --- colour ------------------------------------------------------------------------------------------------


def normalized(values: Tensor) -> Tensor:
    """``values`` stretched to [0, 1] between their minimum and maximum (all zeros when constant)."""
    values = values.float()
    low, high = values.min(), values.max()
    if float(high - low) <= 1e-12:
        return torch.zeros_like(values)
    return (values - low) / (high - low)


def colorize(values: Tensor) -> Tensor:
    """(h, w) in [0, 1] -> (h, w, 3) through the inferno colour map (piecewise linear between its samples)."""
    anchors = torch.tensor(INFERNO, dtype=torch.float32) / 255.0
    position = values.float().clamp(0.0, 1.0) * (len(INFERNO) - 1)
    lower = position.floor().long().clamp(max=len(INFERNO) - 2)
    fraction = (position - lower).unsqueeze(-1)
    return anchors[lower] * (1.0 - fraction) + anchors[lower + 1] * fraction


def resized(image: Tensor, size: tuple[int, int], *, smooth: bool) -> Tensor:
    """(h, w) or (h, w, c) resized to ``size`` = (height, width): bilinear when ``smooth``, else nearest."""
    flat = image.ndim == 2
    batch = image.float()[None, None] if flat else image.float().permute(2, 0, 1)[None]
    mode = {"mode": "bilinear", "align_corners": False} if smooth else {"mode": "nearest-exact"}
    out = F.interpolate(batch, size=size, **mode)[0]
    return out[0] if flat else out.permute(1, 2, 0)


def heat_overlay(background: Tensor, heat: Tensor, *, alpha: float = 0.7) -> Tensor:
    """A heat map (h, w) in [0, 1] over an (H, W, 3) image: the image in dimmed grey (so its colours do not
    compete), the map resized smoothly, coloured, and blended by ``alpha`` weighted by the heat itself, so
    cold regions show the image and hot ones the colour."""
    grey = (background.float() @ torch.tensor([0.299, 0.587, 0.114])).unsqueeze(-1).expand(*background.shape[:2], 3)
    heat = resized(heat, (background.shape[0], background.shape[1]), smooth=True).clamp(0.0, 1.0)
    weight = (alpha * (0.3 + 0.7 * heat)).unsqueeze(-1)
    return (0.15 + 0.6 * grey) * (1.0 - weight) + colorize(heat) * weight


def latent_preview(latent: Tensor) -> Tensor:
    """(channels, h, w) latent -> (h, w, 3) in [0, 1]: the first three channels, each stretched on its own
    (a rough picture of the latent without a VAE)."""
    channels = [normalized(latent[c]) for c in range(min(3, latent.shape[0]))]
    while len(channels) < 3:
        channels.append(channels[-1])
    return torch.stack(channels, dim=-1)


# --- layouts -----------------------------------------------------------------------------------------------


def block_code(block: BlockInfo) -> str:
    """The short name merge tools use (IN00 … IN11, M00, OUT00 … OUT11)."""
    prefix = {"input": "IN", "middle": "M", "output": "OUT"}[block.stage]
    return f"{prefix}{block.index:02d}"


def u_grid(
    architecture: Sequence[BlockInfo],
    tiles: Mapping[str, Tensor],
    *,
    title: str,
    tile: int = 64,
) -> Picture:
    """Blocks in forward order from left to right, each in the row of its output's resolution level, so the
    down path, the middle block and the up path draw the U (a V on its side). ``tiles`` maps block names to
    (h, w, 3) images; a block without one gets an empty tile."""
    levels = max(b.level for b in architecture) + 1
    aspect = architecture[0].size[0] / architecture[0].size[1]
    tile_h = max(8, round(tile * aspect))
    cell_w, cell_h, left, top = tile + 6, tile_h + 34, 96, 30
    picture = blank(top + levels * cell_h, left + len(architecture) * cell_w + 6)
    picture.labels.append(Label(8, 8, title, size=14))
    for level in range(levels):
        size = next((b.size for b in architecture if b.level == level), None)
        caption = f"level {level}" + (f": {size[0]}x{size[1]}" if size else "")
        picture.labels.append(Label(8, top + level * cell_h + tile_h / 2, caption, size=11, color=MUTED, anchor="lm"))
    for column, block in enumerate(architecture):
        x, y = left + column * cell_w, top + block.level * cell_h
        image = tiles.get(block.name)
        if image is None:
            picture.paste(torch.tensor(EMPTY_TILE).expand(tile_h, tile, 3), x, y)
        else:
            picture.paste(resized(image, (tile_h, tile), smooth=False), x, y)
        colour = TEXT if block.cross_attention else MUTED
        picture.labels.append(Label(x + tile / 2, y + tile_h + 3, block_code(block), size=11, color=colour, anchor="ma"))
        picture.labels.append(Label(x + tile / 2, y + tile_h + 17, f"{block.out_channels}ch", size=9, color=MUTED, anchor="ma"))
    return picture


def tile_sheet(
    tiles: Sequence[Tensor],
    captions: Sequence[str],
    *,
    title: str,
    columns: int = 6,
    tile: int = 128,
) -> Picture:
    """Images (h, w, 3) in a grid, each resized to ``tile`` wide with its caption above it."""
    if not tiles:
        picture = blank(40, 320)
        picture.labels.append(Label(8, 8, f"{title}: nothing to show", size=14))
        return picture
    aspect = tiles[0].shape[0] / tiles[0].shape[1]
    tile_h = max(8, round(tile * aspect))
    columns = max(1, min(columns, len(tiles)))
    cell_w, cell_h, top = tile + 8, tile_h + 22, 30
    rows = math.ceil(len(tiles) / columns)
    picture = blank(top + rows * cell_h + 4, max(8 + columns * cell_w, text_width(title, 14) + 16))
    picture.labels.append(Label(8, 8, title, size=14))
    for index, (image, caption) in enumerate(zip(tiles, captions, strict=True)):
        x, y = 8 + (index % columns) * cell_w, top + (index // columns) * cell_h
        picture.labels.append(Label(x, y + 2, caption, size=12))
        picture.paste(resized(image, (tile_h, tile), smooth=True), x, y + 18)
    return picture


def stack(pictures: Sequence[Picture], *, gap: int = 8) -> Picture:
    """Pictures one under the other, left-aligned."""
    width = max(p.width for p in pictures)
    height = sum(p.height for p in pictures) + gap * (len(pictures) - 1)
    out = blank(height, width)
    y = 0
    for picture in pictures:
        out.place(picture, 0, y)
        y += picture.height + gap
    return out


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, title: str, size: int = 12) -> Picture:
    """Text in columns, each as wide as its longest entry."""
    widths = [max(text_width(str(r[c]), size) for r in (header, *rows)) + 14 for c in range(len(header))]
    line, top = size + 7, 30
    picture = blank(top + line * (len(rows) + 1) + 8, max(sum(widths) + 16, text_width(title, 14) + 16))
    picture.labels.append(Label(8, 8, title, size=14))
    for r, row in enumerate((header, *rows)):
        x = 8
        for c, text in enumerate(row):
            picture.labels.append(Label(x, top + r * line, str(text), size=size, color=MUTED if r == 0 else TEXT))
            x += widths[c]
    picture.lines.append(Polyline(((8, top + line - 3), (8 + sum(widths), top + line - 3)), GRID))
    return picture
