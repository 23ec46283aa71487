"""The inspection report: plain JSON (dicts, lists, strings, finite numbers, None) that the canvas shows inside
the node and the history keeps. Everything is read from batch row 0 (the first image of the batch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from latentloom.diffusion.inspect.architecture import BlockInfo, Size
from latentloom.diffusion.inspect.capture import PassCapture
from latentloom.diffusion.inspect.probe import Probe
from latentloom.diffusion.inspect.reduce import max_entropy
from latentloom.diffusion.inspect.trajectory import StepCapture
from latentloom.diffusion.inspect.views import block_code

REPORT_VERSION = 1
TOP_TOKENS = 5  # tokens listed per cross-attention layer, most attended first


@dataclass(frozen=True)
class TokenLabel:
    position: int  # index into the context (0 is the start token)
    text: str


def finite(value: float) -> float | None:
    """A float JSON can carry (NaN and ±inf become None)."""
    value = float(value)
    return value if math.isfinite(value) else None


def spatial_concentration(heat: Tensor) -> float:
    """1 − H(p)/log(n) for the map normalised to a distribution p over its n pixels: 0 when attention is
    spread evenly over the image, 1 when it sits on a single pixel."""
    p = heat.float().flatten().clamp_min(0)
    total = float(p.sum())
    if p.numel() < 2 or total <= 0:
        return 0.0
    p = p / total
    entropy = float(-(p * p.clamp_min(1e-30).log()).sum())
    return 1.0 - entropy / math.log(p.numel())


def architecture_json(architecture: Sequence[BlockInfo]) -> dict[str, Any]:
    sites = [site for block in architecture for site in block.cross_attention]
    return {
        "blocks": [block.to_json() | {"code": block_code(block)} for block in architecture],
        "parameters": sum(block.parameters for block in architecture),
        "cross_attention_layers": len(sites),
        "attention_sizes": [list(size) for size in sorted({s.size for s in sites}, key=lambda s: -s[0] * s[1])],
    }


def _label(tokens: Mapping[int, str], position: int) -> str:
    return tokens.get(position, f"#{position}")


def block_entropy(capture: PassCapture) -> dict[str, float]:
    """Mean normalised cross-attention entropy (0 = one token, 1 = all tokens alike) per block."""
    per_block: dict[str, list[float]] = {}
    for layer in capture.attention:
        bound = max_entropy(layer.context_tokens)
        per_block.setdefault(layer.block, []).append(float(layer.entropy[0].mean()) / bound if bound else 0.0)
    return {block: sum(values) / len(values) for block, values in per_block.items()}


def blocks_json(positive: PassCapture, negative: PassCapture | None = None) -> list[dict[str, Any]]:
    entropy = block_entropy(positive)
    rows = []
    for name, block in positive.blocks.items():
        row = {"name": name, "shape": list(block.shape), "positive": _stats_row(block.statistics.row(0))}
        if negative is not None and name in negative.blocks:
            row["negative"] = _stats_row(negative.blocks[name].statistics.row(0))
        row["attention_entropy"] = finite(entropy[name]) if name in entropy else None
        rows.append(row)
    return rows


def _stats_row(values: Mapping[str, float]) -> dict[str, float | None]:
    return {key: finite(value) for key, value in values.items()}


def attention_json(capture: PassCapture, tokens: Mapping[int, str]) -> dict[str, Any]:
    layers = []
    for layer in capture.attention:
        mass = layer.token_mass[0]
        top = torch.topk(mass, min(TOP_TOKENS, mass.numel()))
        bound = max_entropy(layer.context_tokens)
        layers.append({
            "layer": layer.layer,
            "block": layer.block,
            "size": list(layer.size),
            "heads": layer.heads,
            "entropy": finite(layer.entropy[0].mean()),
            "entropy_normalized": finite(layer.entropy[0].mean() / bound) if bound else None,
            "entropy_per_head": [finite(v) for v in layer.entropy[0]],
            "top_tokens": [
                {"position": int(p), "text": _label(tokens, int(p)), "mass": finite(m)}
                for m, p in zip(top.values, top.indices, strict=True)
            ],
        })  # fmt: skip
    return {
        "layers": layers,
        "sizes": [{"size": list(size), "layers": capture.layers_at(size)} for size in capture.attention_sizes],
        "tokens": _tokens_json(capture, tokens),
    }


def _tokens_json(capture: PassCapture, tokens: Mapping[int, str]) -> list[dict[str, Any]]:
    if not capture.attention:
        return []
    maps = capture.combined_maps()[0]  # (kept tokens, h, w)
    mass = torch.stack([layer.token_mass[0] for layer in capture.attention]).mean(0)
    return [
        {
            "position": position,
            "text": _label(tokens, position),
            "mass": finite(mass[position]),
            "concentration": finite(spatial_concentration(maps[index])),
        }
        for index, position in enumerate(capture.kept_tokens)
    ]


def skips_json(capture: PassCapture) -> list[dict[str, Any]]:
    return [
        {"source": s.source, "target": s.target, "shape": list(s.shape), "norm": finite(s.statistics.norm[0])}
        for s in capture.skips
    ]


def probe_report(
    probe: Probe,
    *,
    architecture: Sequence[BlockInfo],
    tokens: Mapping[int, str],
    views: Sequence[str] = (),
) -> dict[str, Any]:
    """The report of one look at one noise level."""
    report = {
        "kind": "unet_inspection",
        "version": REPORT_VERSION,
        "latent_shape": list(probe.noisy.shape),
        "noise": probe.level.to_json(),
        "architecture": architecture_json(architecture),
        "blocks": blocks_json(probe.positive, probe.negative),
        "skips": skips_json(probe.positive),
        "attention": attention_json(probe.positive, tokens),
        "views": list(views),
    }
    if probe.negative is not None:
        report["attention_negative"] = {"layers": attention_json(probe.negative, {})["layers"]}
    return report


# --- trajectories ------------------------------------------------------------------------------------------


def block_std_series(steps: Sequence[StepCapture], blocks: Sequence[str]) -> dict[str, list[float | None]]:
    return {
        name: [finite(s.capture.blocks[name].statistics.std[0]) if name in s.capture.blocks else None for s in steps]
        for name in blocks
    }


def entropy_series(steps: Sequence[StepCapture]) -> dict[str, list[float | None]]:
    """Mean normalised cross-attention entropy per query-grid size, per step."""
    sizes: list[Size] = steps[0].capture.attention_sizes if steps else []
    series = {}
    for size in sizes:
        values = []
        for step in steps:
            layers = [a for a in step.capture.attention if a.size == size]
            norms = [float(a.entropy[0].mean()) / max_entropy(a.context_tokens) for a in layers]
            values.append(finite(sum(norms) / len(norms)) if norms else None)
        series[f"{size[0]}x{size[1]}"] = values
    return series


def token_series(steps: Sequence[StepCapture], tokens: Mapping[int, str]) -> dict[str, dict[str, list]]:
    """Per kept token: its share of attention and the spatial concentration of its map, per step."""
    out: dict[str, dict[str, list]] = {}
    for step in steps:
        capture = step.capture
        if not capture.attention:
            continue
        maps = capture.combined_maps()[0]
        mass = torch.stack([a.token_mass[0] for a in capture.attention]).mean(0)
        for index, position in enumerate(capture.kept_tokens):
            entry = out.setdefault(f"{position}:{_label(tokens, position)}", {"mass": [], "concentration": []})
            entry["mass"].append(finite(mass[position]))
            entry["concentration"].append(finite(spatial_concentration(maps[index])))
    return out


def trajectory_report(
    steps: Sequence[StepCapture],
    *,
    architecture: Sequence[BlockInfo],
    tokens: Mapping[int, str],
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The report of a sampling run: one entry per step."""
    names = [block.name for block in architecture]
    entropy = entropy_series(steps)
    per_token = token_series(steps, tokens)
    entries = []
    for index, step in enumerate(steps):
        entries.append({
            "step": step.step,
            "sigma": finite(step.sigma),
            "passes": step.passes,
            "blocks": {n: _stats_row(step.capture.blocks[n].statistics.row(0)) for n in names if n in step.capture.blocks},
            "attention_entropy": {size: values[index] for size, values in entropy.items()},
            "tokens": {key: {"mass": v["mass"][index], "concentration": v["concentration"][index]}
                       for key, v in per_token.items() if index < len(v["mass"])},
        })  # fmt: skip
    return {
        "kind": "unet_trajectory",
        "version": REPORT_VERSION,
        "settings": dict(settings),
        "architecture": architecture_json(architecture),
        "tokens": [{"position": p, "text": _label(tokens, p)} for p in (steps[0].capture.kept_tokens if steps else ())],
        "steps": entries,
    }
