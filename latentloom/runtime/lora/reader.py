"""A LoRA file's tensors → adapters keyed by the parameter they patch, plus every key that patches nothing.

Keys are ``<layer name><suffix>``; the suffix says which factor a tensor is (SUFFIXES), the layer name is
looked up in the target model's LayerIndex. Keys with an unknown suffix, layers no model has, and
incomplete adapters are all reported in ``LoraMatch.unmatched``, never dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from latentloom.api.errors import LatentLoomError
from latentloom.runtime.lora.adapters import (
    Adapter,
    DiffAdapter,
    DoraAdapter,
    LohaAdapter,
    LokrAdapter,
    LoraAdapter,
    combined,
)
from latentloom.runtime.lora.keys import LayerIndex

log = logging.getLogger(__name__)
SHOWN_KEYS = 8

# Suffix → factor name. Longest suffixes are tried first, so ".lora_down.weight" never reads as ".weight".
SUFFIXES = {
    ".lora_down.weight": "down",
    ".lora_up.weight": "up",
    ".lora_mid.weight": "mid",
    ".lora_A.weight": "down",
    ".lora_B.weight": "up",
    ".lora.down.weight": "down",
    ".lora.up.weight": "up",
    ".lora_linear_layer.down.weight": "down",
    ".lora_linear_layer.up.weight": "up",
    ".alpha": "alpha",
    ".hada_w1_a": "hada_w1_a",
    ".hada_w1_b": "hada_w1_b",
    ".hada_w2_a": "hada_w2_a",
    ".hada_w2_b": "hada_w2_b",
    ".hada_t1": "hada_t1",
    ".hada_t2": "hada_t2",
    ".lokr_w1": "lokr_w1",
    ".lokr_w1_a": "lokr_w1_a",
    ".lokr_w1_b": "lokr_w1_b",
    ".lokr_w2": "lokr_w2",
    ".lokr_w2_a": "lokr_w2_a",
    ".lokr_w2_b": "lokr_w2_b",
    ".lokr_t2": "lokr_t2",
    ".diff": "diff",
    ".diff_b": "diff_b",
    ".dora_scale": "dora_scale",
}
_BY_LENGTH = sorted(SUFFIXES, key=len, reverse=True)


class LoraFormatError(LatentLoomError):
    """A LoRA file whose tensors do not form adapters for the model; names the keys."""


@dataclass(frozen=True)
class LoraLayer:
    """The factors one layer name carries in the file, by factor name, with the file keys they came from."""

    name: str
    factors: Mapping[str, Tensor]
    keys: tuple[str, ...]


def group_layers(state: Mapping[str, Tensor]) -> tuple[dict[str, LoraLayer], list[str]]:
    """Group a LoRA file's keys by layer name; keys with no known suffix come back second."""
    factors: dict[str, dict[str, Tensor]] = {}
    keys: dict[str, list[str]] = {}
    unknown = []
    for key, tensor in state.items():
        suffix = next((s for s in _BY_LENGTH if key.endswith(s)), None)
        if suffix is None:
            unknown.append(key)
            continue
        name = key[: -len(suffix)]
        factors.setdefault(name, {})[SUFFIXES[suffix]] = tensor
        keys.setdefault(name, []).append(key)
    layers = {name: LoraLayer(name, found, tuple(keys[name])) for name, found in factors.items()}
    return layers, unknown


def adapters_of(layer: LoraLayer) -> list[tuple[str, Adapter]]:
    """(parameter name within the layer, adapter) for each adapter the layer's factors make."""
    f = layer.factors
    alpha = float(f["alpha"]) if "alpha" in f else None
    found: list[tuple[str, Adapter]] = []
    if "down" in f and "up" in f:
        found.append(("weight", LoraAdapter(down=f["down"], up=f["up"], alpha=alpha, mid=f.get("mid"))))
    if all(k in f for k in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")):
        found.append(("weight", LohaAdapter(
            f["hada_w1_a"], f["hada_w1_b"], f["hada_w2_a"], f["hada_w2_b"],
            alpha=alpha, t1=f.get("hada_t1"), t2=f.get("hada_t2"),
        )))  # fmt: skip
    has_w1 = "lokr_w1" in f or ("lokr_w1_a" in f and "lokr_w1_b" in f)
    has_w2 = "lokr_w2" in f or ("lokr_w2_a" in f and "lokr_w2_b" in f)
    if has_w1 and has_w2:
        found.append(("weight", LokrAdapter(
            w1=f.get("lokr_w1"), w1_a=f.get("lokr_w1_a"), w1_b=f.get("lokr_w1_b"),
            w2=f.get("lokr_w2"), w2_a=f.get("lokr_w2_a"), w2_b=f.get("lokr_w2_b"), t2=f.get("lokr_t2"), alpha=alpha,
        )))  # fmt: skip
    if "diff" in f:
        found.append(("weight", DiffAdapter(f["diff"])))
    if "diff_b" in f:
        found.append(("bias", DiffAdapter(f["diff_b"])))
    return _with_dora(found, f.get("dora_scale"))


def _with_dora(found: list[tuple[str, Adapter]], scale: Tensor | None) -> list[tuple[str, Adapter]]:
    """A layer's weight adapters (summed) as the direction of its DoRA magnitude, when it has one."""
    weights = [adapter for param, adapter in found if param == "weight"]
    if scale is None or not weights:
        return found
    direction = weights[0]
    for adapter in weights[1:]:
        direction = combined(direction, adapter)
    return [*((p, a) for p, a in found if p != "weight"), ("weight", DoraAdapter(direction, scale))]


@dataclass(frozen=True)
class LoraMatch:
    """Adapters by target ("unet"/"clip") and parameter key, and the file keys that patch nothing."""

    adapters: Mapping[str, Mapping[str, Adapter]]
    unmatched: tuple[str, ...]

    def describe_unmatched(self) -> str:
        shown = ", ".join(self.unmatched[:SHOWN_KEYS])
        more = f" and {len(self.unmatched) - SHOWN_KEYS} more" if len(self.unmatched) > SHOWN_KEYS else ""
        return f"{len(self.unmatched)} LoRA keys patch nothing: {shown}{more}"


def match_lora(
    state: Mapping[str, Tensor],
    *,
    targets: Mapping[str, tuple[LayerIndex, Mapping[str, Tensor]]],
    source: str = "",
) -> LoraMatch:
    """Match a LoRA file to the target models. ``targets``: name → (layer index, the model's state dict,
    used for shapes). Each adapter's delta is checked against its weight's shape on the meta device."""
    layers, unmatched = group_layers(state)
    adapters: dict[str, dict[str, Adapter]] = {name: {} for name in targets}
    for layer in layers.values():
        target = next(((t, index.find(layer.name)) for t, (index, _) in targets.items() if index.find(layer.name)), None)
        made = adapters_of(layer)
        if target is None or not made:
            unmatched.extend(layer.keys)
            continue
        name, path = target
        for param, adapter in made:
            key = f"{path}.{param}"
            _check_shape(adapter, targets[name][1], key, layer=layer, source=source)
            adapters[name][key] = combined(adapters[name].get(key), adapter)
    if unmatched:
        log.warning("%s: %s", source or "LoRA", LoraMatch({}, tuple(sorted(unmatched))).describe_unmatched())
    return LoraMatch(adapters, tuple(sorted(unmatched)))


def _check_shape(
    adapter: Adapter, state: Mapping[str, Tensor], key: str, *, layer: LoraLayer, source: str
) -> None:
    if key not in state:
        raise LoraFormatError(f"{source}: {layer.name} patches {key}, which the model does not have")
    weight = state[key]
    try:
        adapter.delta(torch.empty(weight.shape, device="meta", dtype=weight.dtype))
    except (RuntimeError, ValueError) as error:
        shapes = {k: tuple(t.shape) for k, t in layer.factors.items() if t.dim()}
        raise LoraFormatError(
            f"{source}: {layer.name} does not fit {key} {tuple(weight.shape)}: factors {shapes} ({error})"
        ) from error


def require_matches(match: LoraMatch, *, source: str, total_keys: int, targets: Sequence[str]) -> None:
    """A file where nothing matches is the wrong kind of file (another model family): say so."""
    if total_keys and not any(match.adapters[t] for t in targets):
        raise LoraFormatError(
            f"{source}: none of its {total_keys} keys names a layer of this model "
            f"(a LoRA for another model family?); {match.describe_unmatched()}"
        )
