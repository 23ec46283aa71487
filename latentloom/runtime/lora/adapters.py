"""Low-rank adapters and the weight delta each one stands for, at strength 1.

- LoRA (Hu et al. 2021) and LoCon: ``ΔW = up · down · alpha / rank``; conv layers flatten the kernel
  into ``down``'s columns, and an optional ``mid`` core (LoCon's Tucker form) sits between the two.
- LoHa (LyCORIS, Hyeon-Woo et al. 2022, FedPara): ``ΔW = (w1a·w1b) ⊙ (w2a·w2b) · alpha / rank``, each
  factor optionally through a Tucker core t1/t2.
- LoKr (LyCORIS): ``ΔW = w1 ⊗ w2`` (Kronecker product), each side whole or ``a·b``; ``alpha / rank``
  applies only when a side is factored (rank = that factorisation's inner size), as LyCORIS does.
- Full difference (LyCORIS "full"/kohya "diff"): ``ΔW = diff``.
- DoRA (Liu et al. 2024; kohya/LyCORIS ``dora_scale``): any of the above as the direction, re-scaled per
  column: ``W' = m · V / ‖V‖``, ``V = W + ΔW``, with the norm over every axis but the one ``m`` lies on
  (the input axis for ``m`` of shape [1, in, …], as ComfyUI and kohya write it; the output axis for [out, 1, …],
  LyCORIS' ``wd_on_out``). Its delta is ``W' − W``, so strength s gives ``W + s · (W' − W)`` as in ComfyUI.
``alpha`` absent means alpha = rank (scale 1). Every delta is reshaped to the weight it patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _scale(alpha: Tensor | float | None, rank: int) -> float:
    return 1.0 if alpha is None else float(alpha) / rank


def _to(tensor: Tensor | None, like: Tensor) -> Tensor | None:
    return None if tensor is None else tensor.to(device=like.device, dtype=like.dtype)


def _tucker(core: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Rebuild a conv factor from its Tucker core (LyCORIS' CP form; a is [rank, out], b [rank, in]):
    [p, r, k, l] = Σ core[i,j,k,l] · b[j,r] · a[i,p]."""
    return torch.einsum("i j k l, j r, i p -> p r k l", core, b.flatten(1), a.flatten(1))


@dataclass(frozen=True, eq=False)
class LoraAdapter:
    down: Tensor  # [rank, in] or [rank, in, kh, kw] (or [rank, in, 1, 1] with a mid core)
    up: Tensor  # [out, rank] or [out, rank, 1, 1]
    alpha: float | None = None
    mid: Tensor | None = None  # [rank, rank, kh, kw]

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    def delta(self, weight: Tensor) -> Tensor:
        down, up, mid = _to(self.down, weight), _to(self.up, weight), _to(self.mid, weight)
        if mid is not None:
            # [out, in, kh, kw] = Σ up[o,a] · mid[a,b,kh,kw] · down[b,i]
            delta = torch.einsum("o a, a b h w, b i -> o i h w", up.flatten(1), mid, down.flatten(1))
        else:
            delta = up.flatten(1) @ down.flatten(1)
        return delta.reshape(weight.shape) * _scale(self.alpha, self.rank)


@dataclass(frozen=True, eq=False)
class LohaAdapter:
    w1_a: Tensor  # [out, rank] ([rank, out] with t1)
    w1_b: Tensor  # [rank, in·kh·kw] ([rank, in] with t1)
    w2_a: Tensor
    w2_b: Tensor
    alpha: float | None = None
    t1: Tensor | None = None  # [rank, rank, kh, kw]
    t2: Tensor | None = None

    @property
    def rank(self) -> int:
        return self.w1_b.shape[0]

    def delta(self, weight: Tensor) -> Tensor:
        w1a, w1b, w2a, w2b = (_to(t, weight) for t in (self.w1_a, self.w1_b, self.w2_a, self.w2_b))
        t1, t2 = _to(self.t1, weight), _to(self.t2, weight)
        w1 = _tucker(t1, w1a, w1b) if t1 is not None else w1a @ w1b
        w2 = _tucker(t2, w2a, w2b) if t2 is not None else w2a @ w2b
        return (w1 * w2).reshape(weight.shape) * _scale(self.alpha, self.rank)


@dataclass(frozen=True, eq=False)
class LokrAdapter:
    w1: Tensor | None = None  # whole left factor, or w1_a · w1_b
    w1_a: Tensor | None = None
    w1_b: Tensor | None = None
    w2: Tensor | None = None  # whole right factor, or w2_a · w2_b (through t2 for conv)
    w2_a: Tensor | None = None
    w2_b: Tensor | None = None
    t2: Tensor | None = None
    alpha: float | None = None

    def delta(self, weight: Tensor) -> Tensor:
        rank = None
        w1 = _to(self.w1, weight)
        if w1 is None:
            w1 = _to(self.w1_a, weight) @ _to(self.w1_b, weight)
            rank = self.w1_b.shape[0]
        w2 = _to(self.w2, weight)
        if w2 is None:
            a, b, t2 = _to(self.w2_a, weight), _to(self.w2_b, weight), _to(self.t2, weight)
            w2 = _tucker(t2, a, b) if t2 is not None else a @ b.flatten(1)
            rank = self.w2_b.shape[0]
        if w2.dim() == 4 and w1.dim() == 2:
            w1 = w1[:, :, None, None]
        elif w2.dim() == 2 and len(weight.shape) == 4:
            w2 = w2.reshape(w2.shape[0], -1, *weight.shape[2:])
            w1 = w1[:, :, None, None]
        scale = 1.0 if rank is None else _scale(self.alpha, rank)
        return torch.kron(w1, w2).reshape(weight.shape) * scale


@dataclass(frozen=True, eq=False)
class DiffAdapter:
    diff: Tensor  # the whole difference, shaped like the weight

    def delta(self, weight: Tensor) -> Tensor:
        return _to(self.diff, weight).reshape(weight.shape)


@dataclass(frozen=True, eq=False)
class SumAdapter:
    """Several adapters on one parameter (a file naming a layer twice, or LoRA and LoHa on one layer)."""

    parts: tuple[LoraAdapter | LohaAdapter | LokrAdapter | DiffAdapter, ...]

    def delta(self, weight: Tensor) -> Tensor:
        total = self.parts[0].delta(weight)
        for part in self.parts[1:]:
            total = total + part.delta(weight)
        return total


@dataclass(frozen=True, eq=False)
class DoraAdapter:
    """A direction adapter whose result is re-normalised to the learned magnitude ``scale``."""

    direction: LoraAdapter | LohaAdapter | LokrAdapter | DiffAdapter | SumAdapter
    scale: Tensor  # [1, in, 1…] (input axis) or [out, 1, 1…] (output axis)

    def delta(self, weight: Tensor) -> Tensor:
        merged = weight + self.direction.delta(weight)
        axis = _magnitude_axis(self.scale, weight.shape)
        others = tuple(d for d in range(merged.dim()) if d != axis)
        norm = torch.linalg.vector_norm(merged, dim=others, keepdim=True)
        magnitude = _to(self.scale, weight).reshape(norm.shape)
        return merged * (magnitude / norm) - weight


def _magnitude_axis(scale: Tensor, shape: torch.Size) -> int:
    """1 when the magnitude runs along the input axis, 0 along the output axis; anything else does not fit."""
    if len(shape) >= 2 and scale.numel() == shape[1] and (scale.dim() < 2 or scale.shape[1] == shape[1]):
        return 1
    if scale.numel() == shape[0] and (scale.dim() < 1 or scale.shape[0] == shape[0]):
        return 0
    raise ValueError(f"dora_scale of shape {tuple(scale.shape)} fits neither axis of a weight {tuple(shape)}")


Adapter = LoraAdapter | LohaAdapter | LokrAdapter | DiffAdapter | SumAdapter | DoraAdapter


def combined(existing: Adapter | None, new: Adapter) -> Adapter:
    """``new`` added to whatever already patches the same parameter."""
    if existing is None:
        return new
    earlier = existing.parts if isinstance(existing, SumAdapter) else (existing,)
    return SumAdapter((*earlier, new))
