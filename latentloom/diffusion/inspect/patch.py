"""Observers as model patches, and the UNet call that honours them.

A MODEL value (runtime's ModelHandle) records its patches as data; the weights are never touched. An
ObserverPatch says "watch every forward pass of this model with this observer". Whoever runs the model
turns the handle's patches into the network the denoiser wraps (diffusion.unet_call)::

    model = UNetCall(handle.load(), observer=patch_observer(handle.patches))
    denoiser = make_denoiser(model, handle.schedule, prediction=...)

Patches that are not ObserverPatches (LoRA, merges) are left for their own appliers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from latentloom.diffusion.observe import AttentionCall, UNetObserver


@dataclass(frozen=True, eq=False)
class ObserverPatch:
    """A model patch: every forward pass of the patched model is shown to ``observer``.

    The patch is the record of the choice; the observer is where captures land (it fills as the model
    runs). An observer that only reads leaves the model's output bit-for-bit unchanged.
    """

    observer: UNetObserver
    label: str = "observer"


class ObserverChain(UNetObserver):
    """Several observers as one: each sees every hook; the first attention replacement wins."""

    def __init__(self, observers: Sequence[UNetObserver]) -> None:
        self.observers = tuple(observers)

    def block_output(self, name: str, output: Tensor) -> None:
        for observer in self.observers:
            observer.block_output(name, output)

    def skip(self, *, source: str, target: str, tensor: Tensor) -> None:
        for observer in self.observers:
            observer.skip(source=source, target=target, tensor=tensor)

    def attention(self, call: AttentionCall) -> Tensor | None:
        replaced = None
        for observer in self.observers:
            out = observer.attention(call)
            replaced = out if replaced is None else replaced
        return replaced


def patch_observer(patches: Sequence[object]) -> UNetObserver | None:
    """The observer a model's patches ask for: None, the one observer, or a chain in patch order."""
    observers = [p.observer for p in patches if isinstance(p, ObserverPatch)]
    if not observers:
        return None
    return observers[0] if len(observers) == 1 else ObserverChain(observers)
