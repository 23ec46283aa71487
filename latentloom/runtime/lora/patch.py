"""LoRA as a weight patch on MODEL and CLIP handles: ``W' = W + strength · ΔW`` per patched parameter.

``apply_lora`` clones the handles; the cached base model is untouched, several LoRAs stack (each patch
adds its delta to the result of the ones before) and negative strengths subtract.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from torch import Tensor

from latentloom.runtime.handles import ClipHandle, ModelHandle
from latentloom.runtime.lora.adapters import Adapter
from latentloom.runtime.lora.keys import text_index, unet_index
from latentloom.runtime.lora.reader import LoraMatch, match_lora, require_matches


@dataclass(frozen=True, eq=False)
class LoraPatch:
    """One LoRA at one strength, on the parameters of one model (UNet or text encoder)."""

    adapters: Mapping[str, Adapter]  # parameter key → adapter
    strength: float
    name: str = ""

    def patched_keys(self) -> Collection[str]:
        return self.adapters.keys()

    def apply(self, key: str, weight: Tensor) -> Tensor:
        return weight + self.adapters[key].delta(weight) * self.strength

    def __repr__(self) -> str:
        return f"LoraPatch({self.name!r}, strength={self.strength}, {len(self.adapters)} parameters)"


@dataclass(frozen=True)
class LoraResult:
    model: ModelHandle
    clip: ClipHandle | None
    match: LoraMatch


def apply_lora(
    state: Mapping[str, Tensor],
    *,
    model: ModelHandle,
    clip: ClipHandle | None = None,
    strength_model: float = 1.0,
    strength_clip: float = 1.0,
    name: str = "",
) -> LoraResult:
    """Patched clones of ``model`` (and ``clip``); a strength of 0 leaves that handle as it was."""
    targets = {"unet": (unet_index(model.unet, model.unet.config), model.unet.state_dict())}
    if clip is not None:
        targets["clip"] = (text_index(clip.encoder.model), clip.encoder.model.state_dict())
    match = match_lora(state, targets=targets, source=name)
    require_matches(match, source=name, total_keys=len(state), targets=tuple(targets))
    if strength_model != 0 and match.adapters["unet"]:
        model = model.clone_with_patch(LoraPatch(match.adapters["unet"], strength_model, name))
    if clip is not None and strength_clip != 0 and match.adapters["clip"]:
        clip = clip.clone_with_patch(LoraPatch(match.adapters["clip"], strength_clip, name))
    return LoraResult(model, clip, match)
