"""LoRA + LoRA → LoRA, written in kohya sd-scripts format (``<name>.lora_down.weight``, ``.lora_up.weight``,
``.alpha``).

The merged delta of a layer is ``s_a·ΔW_a + s_b·ΔW_b`` (ΔW = up·down·alpha/rank). Two ways to store it:

- "concat": the ranks side by side — down = [down_a; down_b], up = [up_a·c_a, up_b·c_b] with
  c = s·alpha/rank and alpha = the new rank. Exact; the rank is the sum.
- "svd": the merged delta re-factored to ``rank`` by a truncated SVD (Eckart–Young: the best rank-k
  approximation), split as up = U·√S, down = √S·Vᵀ, alpha = rank.

Layer names are normalised to kohya sd-scripts' own: UNet layers are found in the model they are for and
named ``lora_unet_`` + their diffusers path with '.'→'_' (an LDM path where diffusers has none), text
encoder layers ``lora_te_text_model_…``; so the same layer in a kohya and a PEFT file merges as one.
LoRA/LoCon factors are merged; LoHa, LoKr, Tucker (mid) and full-difference layers are refused by name,
since their factors have no low-rank up/down form to concatenate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from latentloom.api.errors import LatentLoomError
from latentloom.diffusion.unet_config import UNetConfig
from latentloom.runtime.lora.adapters import LoraAdapter
from latentloom.runtime.lora.extract import truncated_factors
from latentloom.runtime.lora.keys import diffusers_block_prefixes, diffusers_path, unet_index
from latentloom.runtime.lora.reader import adapters_of, group_layers

MergeMode = Literal["concat", "svd"]
MERGE_MODES: tuple[MergeMode, ...] = ("concat", "svd")
# Text encoder layer-name prefixes; the rest of the name is the checkpoint path (text_model.…) in any format.
TEXT_PREFIXES = ("lora_te_", "text_encoder.", "cond_stage_model.transformer.")


class LoraMergeError(LatentLoomError):
    """LoRA files that cannot be merged; names the layer and why."""


def unet_namer(unet: nn.Module, config: UNetConfig) -> Callable[[str], str | None]:
    """A file's UNet layer name (any format) → kohya sd-scripts' name for that layer, or None if unknown."""
    index, prefixes = unet_index(unet, config), diffusers_block_prefixes(config)

    def name(layer: str) -> str | None:
        path = index.find(layer)
        return None if path is None else "lora_unet_" + (diffusers_path(path, prefixes) or path).replace(".", "_")

    return name


def kohya_name(name: str, *, unet_name: Callable[[str], str | None]) -> str:
    for prefix in TEXT_PREFIXES:
        if name.startswith(prefix):
            return "lora_te_" + name[len(prefix) :].replace(".", "_")
    found = unet_name(name)
    if found is None:
        raise LoraMergeError(f"layer {name!r} is no layer of this model's UNet or text encoder")
    return found


def lora_layers(
    state: Mapping[str, Tensor], *, source: str, unet_name: Callable[[str], str | None]
) -> dict[str, LoraAdapter]:
    """kohya layer name → LoRA factors of a LoRA file; anything else in it is an error naming the keys."""
    layers, unknown = group_layers(state)
    if unknown:
        raise LoraMergeError(f"{source}: {len(unknown)} keys are not LoRA factors: {', '.join(sorted(unknown)[:5])}")
    found: dict[str, LoraAdapter] = {}
    for layer in layers.values():
        made = adapters_of(layer)
        kinds = {type(adapter).__name__ for _, adapter in made}
        if not made or kinds != {"LoraAdapter"} or layer.factors.get("mid") is not None:
            what = ", ".join(sorted(layer.factors)) or "nothing"
            raise LoraMergeError(f"{source}: layer {layer.name} holds {what}; only LoRA/LoCon up/down factors merge")
        name = kohya_name(layer.name, unet_name=unet_name)
        if name in found:
            raise LoraMergeError(f"{source}: layer {layer.name} appears twice (as {name})")
        found[name] = made[0][1]
    return found


def merge_lora_layers(
    a: Mapping[str, LoraAdapter],
    b: Mapping[str, LoraAdapter],
    *,
    strength_a: float,
    strength_b: float,
    mode: MergeMode,
    rank: int,
) -> dict[str, LoraAdapter]:
    merged = {}
    for name in sorted(a.keys() | b.keys()):
        parts = [(adapter, s) for adapter, s in ((a.get(name), strength_a), (b.get(name), strength_b)) if adapter]
        merged[name] = _concat(parts) if mode == "concat" else _svd(parts, rank=rank, name=name)
    return merged


def _scaled_up(adapter: LoraAdapter, strength: float) -> Tensor:
    alpha = adapter.rank if adapter.alpha is None else adapter.alpha
    return adapter.up.float() * (strength * alpha / adapter.rank)


def _concat(parts: list[tuple[LoraAdapter, float]]) -> LoraAdapter:
    down = torch.cat([adapter.down.float() for adapter, _ in parts], dim=0)
    up = torch.cat([_scaled_up(adapter, strength) for adapter, strength in parts], dim=1)
    return LoraAdapter(down=down, up=up, alpha=float(down.shape[0]))


def _svd(parts: list[tuple[LoraAdapter, float]], *, rank: int, name: str) -> LoraAdapter:
    kernels = {tuple(adapter.down.shape[1:]) for adapter, _ in parts}
    if len(kernels) > 1:
        raise LoraMergeError(f"layer {name}: the LoRAs' down factors have different shapes {sorted(kernels)}")
    (down_shape,) = kernels
    delta = sum(_scaled_up(adapter, s).flatten(1) @ adapter.down.float().flatten(1) for adapter, s in parts)
    up, down = truncated_factors(delta, rank)
    k = up.shape[1]
    up_shape = (up.shape[0], k, 1, 1) if len(down_shape) == 3 else (up.shape[0], k)
    return LoraAdapter(down=down.reshape(k, *down_shape), up=up.reshape(up_shape), alpha=float(k))


def kohya_state_dict(layers: Mapping[str, LoraAdapter], *, dtype: torch.dtype = torch.float16) -> dict[str, Tensor]:
    state = {}
    for name, adapter in layers.items():
        state[f"{name}.lora_down.weight"] = adapter.down.to(dtype).contiguous()
        state[f"{name}.lora_up.weight"] = adapter.up.to(dtype).contiguous()
        state[f"{name}.alpha"] = torch.tensor(float(adapter.rank if adapter.alpha is None else adapter.alpha), dtype=dtype)
    return state
