"""Line plots as Pictures (axes, ticks, series and a legend as a display list), for trajectories."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from latentloom.diffusion.inspect.views import (
    GRID,
    MUTED,
    SERIES_COLOURS,
    Label,
    Picture,
    Polyline,
    blank,
    text_width,
)

TICKS = 5


def nice_ticks(low: float, high: float, count: int = TICKS) -> list[float]:
    """About ``count`` round values (1, 2 or 5 × 10ⁿ apart) covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def tick_format(ticks: Sequence[float]) -> str:
    """A format showing the ticks with as many decimals as their spacing needs (and no more)."""
    if len(ticks) < 2:
        return "{:.3g}"
    step = abs(ticks[1] - ticks[0])
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 3
    if step >= 1e5 or 0 < step < 1e-4:
        return "{:.2e}"
    return "{:." + str(decimals) + "f}"


def line_plot(
    xs: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_names: Mapping[float, str] | None = None,
    width: int = 640,
    height: int = 280,
) -> Picture:
    """One line per series over ``xs`` (a None value breaks the line; every point gets a dot), with a legend
    on the right. ``x_names`` labels x positions with names instead of numbers."""
    legend_w = max([text_width(name, 11) for name in series] + [60]) + 28
    left, top, bottom = 56, 44, 58 if x_names else 44  # named ticks may take two rows
    picture = blank(height, width + legend_w)
    picture.labels.append(Label(8, 8, title, size=14))
    values = [v for line in series.values() for v in line if v is not None and math.isfinite(v)]
    y_ticks = nice_ticks(min(values, default=0.0), max(values, default=1.0))
    x_ticks = list(x_names) if x_names else _x_ticks(xs)
    y_format, x_format = tick_format(y_ticks), tick_format(x_ticks)
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    x_high = x_high if x_high > x_low else x_low + 1.0
    plot_w, plot_h = width - left - 8, height - top - bottom

    def at(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x_low) / (x_high - x_low) * plot_w
        py = top + plot_h - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * plot_h
        return (px, py)

    for tick in y_ticks:
        (x0, y), (x1, _) = at(x_low, tick), at(x_high, tick)
        picture.lines.append(Polyline(((x0, y), (x1, y)), GRID))
        picture.labels.append(Label(x0 - 6, y, y_format.format(tick), size=10, color=MUTED, anchor="rm"))
    crowded = x_names is not None and len(x_ticks) * 34 > plot_w
    for index, tick in enumerate(x_ticks):
        x, y = at(tick, y_ticks[0])
        drop = 12 if crowded and index % 2 else 0  # alternate rows when names would overlap
        picture.lines.append(Polyline(((x, y), (x, y + 4 + drop)), MUTED))
        name = x_names[tick] if x_names else x_format.format(tick)
        picture.labels.append(Label(x, y + 6 + drop, name, size=10 if x_names is None else 9, color=MUTED, anchor="ma"))
    picture.lines.append(Polyline((at(x_low, y_ticks[-1]), at(x_low, y_ticks[0]), at(x_high, y_ticks[0])), MUTED))
    picture.labels.append(Label(left + plot_w / 2, height - 6, x_label, size=11, color=MUTED, anchor="ms"))
    picture.labels.append(Label(8, top - 10, y_label, size=11, color=MUTED, anchor="ls"))
    for index, (name, line) in enumerate(series.items()):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        for run in _runs(xs, line):
            points = tuple(at(x, y) for x, y in run)
            picture.lines.append(Polyline(points, colour, width=2, markers=True))
        legend_y = top + 4 + index * 16
        picture.lines.append(Polyline(((width + 6, legend_y), (width + 22, legend_y)), colour, width=3))
        picture.labels.append(Label(width + 28, legend_y, name, size=11, color=colour, anchor="lm"))
    return picture


def _x_ticks(xs: Sequence[float]) -> list[float]:
    if not xs:
        return [0.0, 1.0]
    ticks = nice_ticks(min(xs), max(xs), count=min(TICKS + 3, max(2, len(xs))))
    return [t for t in ticks if min(xs) <= t <= max(xs)] or [min(xs)]


def _runs(xs: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """The stretches of consecutive finite values."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if y is None or not math.isfinite(y):
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]
