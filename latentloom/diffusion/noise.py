"""Seeded noise: the initial latent noise and the noise samplers that ancestral and SDE samplers draw from.

Everything is drawn on the CPU from explicitly seeded ``torch.Generator`` objects (the SDE samplers' Brownian
tree from torchsde, seeded with the seed) and then moved to the latent's device, so one seed gives the same
numbers on every device and no global RNG state is touched.
A noise sampler is called as ``noise(sigma, sigma_next)`` and returns a standard-normal tensor shaped like
the latent (k-diffusion's convention).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

_SEED_MASK = (1 << 64) - 1


def cpu_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded like ``torch.manual_seed(seed)`` (seeds wrap into 64 bits)."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed & _SEED_MASK)
    return generator


def initial_noise(
    seed: int,
    shape: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    batch_indices: Sequence[int] | None = None,
) -> Tensor:
    """The latent noise for ``seed``: ``torch.randn(shape)`` from a CPU generator seeded with it, in float32,
    then cast and moved (ComfyUI's ``prepare_noise``).

    ``batch_indices`` (a latent's batch_index) draws one [1, ...] noise per index 0 … max, in order, and
    keeps those listed, so a batch item's noise depends on its index, not its position (ComfyUI's way).
    """
    generator = cpu_generator(seed)
    shape = tuple(int(d) for d in shape)
    if batch_indices is None:
        noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    else:
        indices = [int(i) for i in batch_indices]
        if len(indices) != shape[0] or min(indices, default=0) < 0:
            raise ValueError(f"batch_indices {indices} do not fit a batch of {shape[0]}")
        per_index = [torch.randn((1, *shape[1:]), generator=generator) for _ in range(max(indices) + 1)]
        noise = torch.cat([per_index[i] for i in indices])
    return noise.to(device=device, dtype=dtype)


class GaussianNoiseSampler:
    """Independent N(0, 1) draws, one per call, from a CPU generator seeded with ``seed``.

    ComfyUI's ancestral samplers on CPU use a fresh generator seeded with the run's seed + 1 (so the first
    draw differs from the initial noise); sampling.py passes that seed.
    """

    def __init__(self, seed: int, *, like: Tensor) -> None:
        self._generator = cpu_generator(seed)
        self._shape = tuple(like.shape)
        self._device = like.device
        self._dtype = like.dtype

    def __call__(self, sigma: float, sigma_next: float) -> Tensor:
        noise = torch.randn(self._shape, generator=self._generator, dtype=torch.float32)
        return noise.to(device=self._device, dtype=self._dtype)


class BrownianTreeNoiseSampler:
    """Noise from one Brownian motion W(σ) on [sigma_min, sigma_max]: ``(W(σ') - W(σ)) / sqrt(|σ' - σ|)``.

    Increments over disjoint intervals are independent N(0, 1), and the noise for an interval does not depend
    on which other intervals were asked for, so SDE samplers with substeps (dpmpp_sde) stay consistent
    (Li et al. 2020, "Scalable Gradients for SDEs", the Brownian tree). W is torchsde's ``BrownianTree`` with
    the seed as its entropy, built and queried on the CPU in float32 the way k-diffusion's
    BrownianTreeNoiseSampler does for ComfyUI's SDE samplers: the same seed gives ComfyUI's numbers.
    """

    def __init__(self, seed: int, *, like: Tensor, sigma_min: float, sigma_max: float) -> None:
        if not 0 <= sigma_min < sigma_max:
            raise ValueError(f"need 0 <= sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
        import torchsde  # imported on first use: it brings scipy along

        self._t0, self._t1 = _float32(sigma_min), _float32(sigma_max)
        self._device, self._dtype = like.device, like.dtype
        self._tree = torchsde.BrownianTree(self._t0, torch.zeros(like.shape), self._t1, entropy=seed & _SEED_MASK)
        # torchsde keeps its ends rounded to the tolerance's digits (1e-6) and warns about, then clamps, a
        # query beyond them (σ round trips through log/exp land there): clamp first, to the same ends.
        self._low, self._high = round(self._t0, _TREE_DIGITS), round(self._t1, _TREE_DIGITS)

    def __call__(self, sigma: float, sigma_next: float) -> Tensor:
        sigma, sigma_next = float(sigma), float(sigma_next)
        sign = 1.0 if sigma_next > sigma else -1.0
        increment = self._increment(min(sigma, sigma_next), max(sigma, sigma_next))
        scale = math.sqrt(abs(sigma_next - sigma))
        return (increment * (sign / scale)).to(device=self._device, dtype=self._dtype)

    def path(self, t: float) -> Tensor:
        """W(t) on the CPU in float32, with W(sigma_min) = 0 (t is clamped into the interval)."""
        return self._increment(self._t0, t)

    def _increment(self, a: float, b: float) -> Tensor:
        """W(b) - W(a) for a <= b."""
        a, b = (min(max(_float32(t), self._low), self._high) for t in (a, b))
        return self._tree(a, b)


_TREE_DIGITS = 6  # torchsde's BrownianTree tolerance, 1e-6


def _float32(value: float) -> float:
    """``value`` rounded to float32, as k-diffusion's σ tensors hold it (torchsde reads times as floats)."""
    return float(torch.tensor(float(value), dtype=torch.float32))
