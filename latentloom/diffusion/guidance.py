"""Classifier-free guidance with ComfyUI's conditioning features, as a denoiser wrapper.

Ho & Salimans (2022), "Classifier-Free Diffusion Guidance": D = D_uncond + cfg·(D_cond - D_uncond), here on
denoised estimates. Each side (positive, negative) is a list of ``Cond``s; a side's prediction is the weighted
average of its conds' predictions over the regions they cover (area, feathered edges, mask, strength), as in
ComfyUI. All conds whose inputs have the same shape go through the wrapped denoiser in one batched call —
without areas, cond and uncond are one call; with cfg == 1 the negative side is skipped.

Model keyword arguments built per call: ``context`` [batch, tokens, dim] from the embeddings, ``pooled`` when
the conds carry pooled embeddings, and each key of ``Cond.extra``; all concatenated along the batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom.diffusion.samplers import Denoiser
from latentloom.diffusion.schedules import DiscreteSchedule

Area = tuple[int, int, int, int]  # (height, width, y, x) in latent pixels
FEATHER = 8  # latent pixels of linear fade at area edges that are inside the image (ComfyUI's value)
MAX_TOKEN_REPEAT = 4  # batch contexts of different lengths by repeating tokens up to this factor


class GuidanceError(ValueError):
    """Conditioning that cannot be applied to this latent (batch, area or mask does not fit)."""


@dataclass(frozen=True, eq=False)
class Cond:
    """One conditioning entry (ComfyUI's [embedding, {options}] pair)."""

    embedding: Tensor  # [1 or batch, tokens, dim]: the cross-attention context
    pooled: Tensor | None = None  # [1 or batch, dim]: pooled text embedding (SDXL)
    area: Area | None = None  # region in latent pixels; None = the whole latent
    area_fraction: tuple[float, float, float, float] | None = None  # the same as fractions of the latent
    strength: float = 1.0
    mask: Tensor | None = None  # [H, W] or [1 or batch, H, W], any resolution; resized bilinearly
    mask_strength: float = 1.0
    mask_bounds_area: bool = False  # set the area to the mask's bounding box (at least 8×8)
    start_percent: float = 0.0  # active from this fraction of the run …
    end_percent: float = 1.0  # … to this one (needs the schedule)
    # More model inputs, batched like the embedding; those shaped like the latent are cut to the area too.
    extra: Mapping[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class _Resolved:
    cond: Cond
    area: Area | None
    mask: Tensor | None  # [1 or batch, H, W] at the latent's size


@dataclass(eq=False)
class _Entry:
    side: int
    area: Area | None
    mult: Tensor
    x: Tensor
    inputs: dict[str, Tensor]


class GuidedDenoiser:
    """``denoiser(x, sigma, **extra)`` with CFG over positive and negative conds (see the module doc)."""

    def __init__(
        self,
        denoiser: Denoiser,
        positive: Sequence[Cond],
        negative: Sequence[Cond],
        *,
        cfg: float,
        schedule: DiscreteSchedule | None = None,
    ) -> None:
        if not positive:
            raise GuidanceError("positive conditioning is empty")
        if not negative and not math.isclose(cfg, 1.0):
            raise GuidanceError(f"negative conditioning is empty but cfg is {cfg} (only cfg 1 needs none)")
        self.denoiser = denoiser
        self.cfg = float(cfg)
        self.schedule = schedule
        self.sides = [list(positive), list(negative)]
        self._resolved: dict[tuple[int, int], list[list[_Resolved]]] = {}

    @property
    def uses_negative(self) -> bool:
        return not math.isclose(self.cfg, 1.0)

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        sides = self._resolve(x)[: 2 if self.uses_negative else 1]
        sigma_value = float(torch.as_tensor(sigma).reshape(-1)[0])
        active = [[r for r in side if self._active(r.cond, sigma_value)] for side in sides]
        predictions = predict_sides(self.denoiser, active, x, sigma, extra)
        if not self.uses_negative:
            return predictions[0]
        cond, uncond = predictions
        return uncond + (cond - uncond) * self.cfg

    def _active(self, cond: Cond, sigma: float) -> bool:
        if cond.start_percent <= 0.0 and cond.end_percent >= 1.0:
            return True
        if self.schedule is None:
            raise GuidanceError("conds with start/end percent need the model's schedule")
        return self.schedule.percent_to_sigma(cond.end_percent) <= sigma <= self.schedule.percent_to_sigma(
            cond.start_percent
        )

    def _resolve(self, x: Tensor) -> list[list[_Resolved]]:
        size = (x.shape[-2], x.shape[-1])
        if size not in self._resolved:
            sides = [[resolve_cond(c, size, x.device) for c in side] for side in self.sides]
            self._resolved[size] = _with_opposite_areas(sides)
        return self._resolved[size]


def cfg_denoiser(
    denoiser: Denoiser,
    positive: Sequence[Cond],
    negative: Sequence[Cond],
    *,
    cfg: float,
    schedule: DiscreteSchedule | None = None,
) -> GuidedDenoiser:
    """Wrap ``denoiser`` with classifier-free guidance of scale ``cfg``."""
    return GuidedDenoiser(denoiser, positive, negative, cfg=cfg, schedule=schedule)


def resolve_cond(cond: Cond, size: tuple[int, int], device: torch.device) -> _Resolved:
    """Fix a cond's area and mask for a latent of spatial ``size``."""
    height, width = size
    area = cond.area
    if cond.area_fraction is not None:
        fh, fw, fy, fx = cond.area_fraction
        area = (max(1, round(fh * height)), max(1, round(fw * width)), round(fy * height), round(fx * width))
    mask = None
    if cond.mask is not None:
        mask = cond.mask.to(device=device, dtype=torch.float32)
        mask = mask.unsqueeze(0) if mask.ndim == 2 else mask
        if mask.ndim != 3:
            raise GuidanceError(f"a cond mask must be [H, W] or [batch, H, W], got shape {tuple(cond.mask.shape)}")
        if tuple(mask.shape[1:]) != size:
            mask = F.interpolate(mask.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
        if cond.mask_bounds_area:
            area = _mask_bounds(mask)
    if area is not None:
        area = _clip_area(area, size)
    return _Resolved(cond, area, mask)


def _mask_bounds(mask: Tensor) -> Area:
    """Bounding box of the mask's nonzero pixels over the batch, at least 8×8 (8×8 at 0,0 when empty)."""
    covered = mask.abs().amax(dim=0) != 0
    if not bool(covered.any()):
        return (8, 8, 0, 0)
    ys, xs = torch.where(covered)
    y, x = int(ys.min()), int(xs.min())
    return (max(8, int(ys.max()) - y + 1), max(8, int(xs.max()) - x + 1), y, x)


def _clip_area(area: Area, size: tuple[int, int]) -> Area:
    h, w, y, x = (int(v) for v in area)
    if not (0 <= y < size[0] and 0 <= x < size[1]) or h < 1 or w < 1:
        raise GuidanceError(f"area (h, w, y, x) = {area} does not overlap a latent of size {size}")
    return (min(h, size[0] - y), min(w, size[1] - x), y, x)


def predict_sides(
    denoiser: Denoiser, sides: list[list[_Resolved]], x: Tensor, sigma: Tensor, extra: Mapping[str, Any]
) -> list[Tensor]:
    """Each side's weighted-average prediction; conds of equal input shape share one denoiser call."""
    totals = [torch.zeros_like(x) for _ in sides]
    counts = [torch.full_like(x, 1e-37) for _ in sides]
    pending = [_entry(k, r, x) for k, side in enumerate(sides) for r in side]
    sigma = torch.as_tensor(sigma, device=x.device).reshape(-1).expand(x.shape[0])
    while pending:
        group = [e for e in pending if _batchable(e, pending[0])]
        pending = [e for e in pending if not any(e is g for g in group)]
        outputs = _run_group(denoiser, group, sigma, extra)
        for entry, output in zip(group, outputs, strict=True):
            _region(totals[entry.side], entry.area).add_(output * entry.mult)
            _region(counts[entry.side], entry.area).add_(entry.mult)
    return [total / count for total, count in zip(totals, counts, strict=True)]


def _entry(side: int, resolved: _Resolved, x: Tensor) -> _Entry:
    cond, area = resolved.cond, resolved.area
    x_in = _region(x, area)
    if resolved.mask is not None:
        mask = _region(resolved.mask[: x.shape[0]], area) * cond.mask_strength
        if x.shape[0] % mask.shape[0]:
            raise GuidanceError(f"a mask batch of {mask.shape[0]} does not divide the latent batch {x.shape[0]}")
        mult = mask.unsqueeze(1).repeat(x.shape[0] // mask.shape[0], x.shape[1], 1, 1) * cond.strength
    else:
        mult = torch.full_like(x_in, cond.strength)
        if area is not None:
            _feather(mult, area, (x.shape[-2], x.shape[-1]))
    inputs = {"context": _batch(cond.embedding, x.shape[0], "embedding")}
    if cond.pooled is not None:
        inputs["pooled"] = _batch(cond.pooled, x.shape[0], "pooled")
    inputs |= {key: _batch(_spatial_region(value, x, area), x.shape[0], key) for key, value in cond.extra.items()}
    return _Entry(side, area, mult.to(x.dtype), x_in, inputs)


def _spatial_region(value: Tensor, x: Tensor, area: Area | None) -> Tensor:
    """An extra input laid out like the latent (e.g. an inpainting model's mask and image) is cut to the
    cond's area like the latent itself; other extras pass unchanged."""
    if value.ndim == x.ndim and value.shape[-2:] == x.shape[-2:]:
        return _region(value, area)
    return value


def _feather(mult: Tensor, area: Area, size: tuple[int, int]) -> None:
    """Fade the weight linearly over the edges of an area that lie inside the latent, so composed regions
    blend (ComfyUI: over min(8, side // 4) pixels)."""
    h, w, y, x = area
    for dim, offset, length, full in ((2, y, h, size[0]), (3, x, w, size[1])):
        ramp = min(FEATHER, length // 4)
        for t in range(ramp):
            weight = (t + 1) / ramp
            if offset != 0:
                mult.narrow(dim, t, 1).mul_(weight)
            if offset + length < full:
                mult.narrow(dim, length - 1 - t, 1).mul_(weight)


def _batch(tensor: Tensor, batch: int, name: str) -> Tensor:
    if tensor.shape[0] == batch:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(batch, *tensor.shape[1:])
    raise GuidanceError(f"cond {name} has batch {tensor.shape[0]}, which does not fit a latent batch of {batch}")


def _batchable(a: _Entry, b: _Entry) -> bool:
    if a.x.shape != b.x.shape or a.inputs.keys() != b.inputs.keys():
        return False
    for key, value in a.inputs.items():
        other = b.inputs[key]
        if key == "context":
            if value.shape[0] != other.shape[0] or value.shape[2:] != other.shape[2:]:
                return False
            longest = math.lcm(value.shape[1], other.shape[1])
            if longest // min(value.shape[1], other.shape[1]) > MAX_TOKEN_REPEAT:
                return False
        elif value.shape != other.shape:
            return False
    return True


def _run_group(denoiser: Denoiser, group: list[_Entry], sigma: Tensor, extra: Mapping[str, Any]) -> list[Tensor]:
    """One denoiser call for the whole group; contexts of different lengths are repeated to a common length,
    which leaves cross-attention unchanged (each key/value appears the same number of times)."""
    tokens = math.lcm(*(e.inputs["context"].shape[1] for e in group))
    inputs: dict[str, Tensor] = {}
    for key in group[0].inputs:
        parts = [e.inputs[key] for e in group]
        if key == "context":
            parts = [p.repeat(1, tokens // p.shape[1], 1) for p in parts]
        inputs[key] = torch.cat(parts)
    x_in = torch.cat([e.x for e in group])
    output = denoiser(x_in, sigma.repeat(len(group)), **inputs, **extra)
    return list(output.chunk(len(group)))


def _region(tensor: Tensor, area: Area | None) -> Tensor:
    """The [..., h, w] view of ``tensor`` under ``area`` (the whole tensor for None)."""
    if area is None:
        return tensor
    h, w, y, x = area
    return tensor[..., y : y + h, x : x + w]


def _with_opposite_areas(sides: list[list[_Resolved]]) -> list[list[_Resolved]]:
    """Give every area cond an opposite on the other side with the same area, using the embedding of the
    smallest opposite cond that covers it (ComfyUI's create_cond_with_same_area_if_none), so CFG compares
    like with like inside each region."""
    out = [list(side) for side in sides]
    for k, side in enumerate(sides):
        other = out[1 - k]
        for item in side:
            if item.area is None:
                continue
            host = _smallest_cover(other, item.area)
            if host is None or host.area == item.area:
                continue
            host_inputs = {"embedding": host.cond.embedding, "pooled": host.cond.pooled, "extra": host.cond.extra}
            other.append(replace(item, cond=replace(item.cond, **host_inputs)))
    return out


def _smallest_cover(items: Sequence[_Resolved], area: Area) -> _Resolved | None:
    best = None
    for item in items:
        if item.area is None:
            best = best or item
        elif _inside(area, item.area) and (best is None or best.area is None or _size(item.area) < _size(best.area)):
            best = item
    return best


def _inside(inner: Area, outer: Area) -> bool:
    h, w, y, x = inner
    oh, ow, oy, ox = outer
    return y >= oy and x >= ox and y + h <= oy + oh and x + w <= ox + ow


def _size(area: Area) -> int:
    return area[0] * area[1]
