"""Weight patches: changes to named parameters, applied to a view of a model and never to the model.

A weight patch knows which parameter keys (the module's own state-dict names) it changes and how:
``apply(key, weight) -> new weight``. A handle's patches apply in the order they were added, each to
the result of the ones before. ``patched_view`` gives a module of the same class whose unchanged
parameters are the base module's own tensors (shared, no copy) and whose changed parameters are new
tensors computed on the base's device in its dtype; the base module and every other view of it stay as
they were, so a cached checkpoint serves every graph at once.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@runtime_checkable
class WeightPatch(Protocol):
    """A change to some parameters of one module, as data."""

    def patched_keys(self) -> Collection[str]:
        """The parameter keys (``module.state_dict()`` names) this patch changes (fast ``in``)."""
        ...

    def apply(self, key: str, weight: Tensor) -> Tensor:
        """The new value of ``key`` given its current one (same shape, device and dtype)."""
        ...


def weight_patches(patches: Sequence[object]) -> tuple[WeightPatch, ...]:
    """The weight patches among a handle's patches (others, such as observers, are not about weights)."""
    return tuple(p for p in patches if isinstance(p, WeightPatch))


def patched_keys(patches: Sequence[object]) -> set[str]:
    return {key for patch in weight_patches(patches) for key in patch.patched_keys()}


def effective_weight(
    base: Tensor,
    key: str,
    patches: Sequence[object],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``base`` after every weight patch that names ``key``, computed on ``device`` in ``dtype``.

    Without patches for ``key`` the base tensor itself is returned (moved only when asked), never a copy.
    """
    weight = base.to(device=device or base.device, dtype=dtype or base.dtype)
    with torch.no_grad():
        for patch in weight_patches(patches):
            if key in patch.patched_keys():
                weight = patch.apply(key, weight)
    return weight


def patched_view(module: nn.Module, patches: Sequence[object]) -> nn.Module:
    """``module`` with its weight patches applied, as a new module sharing every unpatched tensor.

    Patched values are computed where each base parameter lives (the compute device once loaded) in its
    dtype. Without weight patches the module itself is returned.
    """
    keys = patched_keys(patches)
    if not keys:
        return module
    params = dict(module.named_parameters())
    unknown = sorted(keys - params.keys())
    if unknown:
        raise KeyError(f"weight patches name parameters the {type(module).__name__} lacks: {unknown[:5]}")
    view = shallow_clone(module)
    for key in sorted(keys):
        owner_name, _, attr = key.rpartition(".")
        owner = view.get_submodule(owner_name)
        value = effective_weight(params[key], key, patches)
        owner._parameters[attr] = nn.Parameter(value, requires_grad=False)
    return view


def shallow_clone(module: nn.Module) -> nn.Module:
    """A copy of the module tree whose parameter, buffer and child tables are its own, holding the
    same tensors: replacing a parameter in the clone leaves the original untouched."""
    clone = copy.copy(module)
    clone._parameters = dict(module._parameters)
    clone._buffers = dict(module._buffers)
    clone._modules = {name: None if child is None else shallow_clone(child) for name, child in module._modules.items()}
    return clone



class PatchedViewSlot:
    """The last patched view of one base module, kept so that running the same patched model again
    (a new seed, a second prompt) does not recompute every patched tensor.

    One slot is shared by every handle cloned from the same loaded model, so at most one patched set per
    base model is alive: a view for other patches replaces it (dropped before the new one is computed, so
    two never coexist). The entry is valid for the exact patch objects, the same base module and the base's
    placement (device, dtype, storage), so a model moved off the device and back is patched afresh.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._view: nn.Module | None = None

    def view(self, module: nn.Module, patches: Sequence[object], *, keep: bool = True) -> nn.Module:
        """``patched_view(module, patches)``, from the slot when nothing changed; ``keep=False`` computes
        without keeping (and clears the slot)."""
        active = weight_patches(patches)
        if not active:
            return module
        key = (module, _placement(module), *active)
        with self._lock:
            if keep and self._view is not None and _same(self._key, key):
                return self._view
            self._key, self._view = None, None  # free the old view before computing the new one
            view = patched_view(module, active)
            if keep:
                self._key, self._view = key, view
            return view

    def clear(self) -> None:
        with self._lock:
            self._key, self._view = None, None

    @property
    def holds_view(self) -> bool:
        return self._view is not None

    @property
    def kept_bytes(self) -> int:
        """Bytes of the kept view's own tensors: the patched ones (the rest are the base module's)."""
        with self._lock:
            if self._view is None or self._key is None:
                return 0
            base = self._key[0]
            shared = {(t.device, t.data_ptr()) for t in (*base.parameters(), *base.buffers())}
            own = {(t.device, t.data_ptr()): t for t in self._view.parameters()}
            return sum(t.numel() * t.element_size() for place, t in own.items() if place not in shared)


def _placement(module: nn.Module) -> tuple[object, ...]:
    first = next(module.parameters(), None)
    return () if first is None else (first.device, first.dtype, first.data_ptr())


def _same(old: tuple[object, ...] | None, new: tuple[object, ...]) -> bool:
    """Patches compare by identity (a new LoRA node run is a new patch), placements by value."""
    if old is None or len(old) != len(new):
        return False
    module_old, placement_old, *patches_old = old
    module_new, placement_new, *patches_new = new
    return (module_old is module_new and placement_old == placement_new
            and all(a is b for a, b in zip(patches_old, patches_new, strict=True)))  # fmt: skip
