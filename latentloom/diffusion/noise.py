"""Seeded noise: the initial latent noise and the noise samplers that ancestral and SDE samplers draw from.

Everything is drawn on the CPU from explicitly seeded ``torch.Generator`` objects and then moved to the
latent's device, so one seed gives the same numbers on every device and no global RNG state is touched.
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
    (k-diffusion's BrownianTreeNoiseSampler; Li et al. 2020, "Scalable Gradients for SDEs", the Brownian
    tree). W is built by recursive midpoint bridging of the interval; each node's Gaussian is drawn from a CPU
    generator seeded by hashing (seed, depth, index), so any W(σ) is a pure function of the seed. Below
    ``tolerance`` the path is linearly interpolated. The numbers differ from torchsde's tree.
    """

    def __init__(
        self, seed: int, *, like: Tensor, sigma_min: float, sigma_max: float, tolerance: float = 1e-6
    ) -> None:
        if not 0 <= sigma_min < sigma_max:
            raise ValueError(f"need 0 <= sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
        self._seed = seed & _SEED_MASK
        self._t0, self._t1 = float(sigma_min), float(sigma_max)
        self._depth = max(1, math.ceil(math.log2((self._t1 - self._t0) / tolerance)))
        self._shape = tuple(like.shape)
        self._device, self._dtype = like.device, like.dtype
        self._generator = torch.Generator(device="cpu")
        self._w1 = self._gaussian(0, 0) * math.sqrt(self._t1 - self._t0)

    def __call__(self, sigma: float, sigma_next: float) -> Tensor:
        sigma, sigma_next = float(sigma), float(sigma_next)
        increment = self.path(sigma_next) - self.path(sigma)
        sign = 1.0 if sigma_next > sigma else -1.0
        scale = math.sqrt(abs(sigma_next - sigma))
        return (increment * (sign / scale)).to(device=self._device, dtype=self._dtype)

    def path(self, t: float) -> Tensor:
        """W(t) on the CPU in float32, with W(sigma_min) = 0 (t is clamped into the interval)."""
        t = min(max(t, self._t0), self._t1)
        a, b = self._t0, self._t1
        w_a, w_b = torch.zeros(self._shape), self._w1
        index = 0  # of the interval [a, b] among the 2^(depth - 1) intervals of its level
        for depth in range(1, self._depth + 1):
            if t == a:
                return w_a
            if t == b:
                return w_b
            mid = (a + b) / 2
            # Brownian bridge: W(mid) | W(a), W(b) ~ N((W(a) + W(b)) / 2, (b - a) / 4).
            w_mid = (w_a + w_b) / 2 + self._gaussian(depth, index) * math.sqrt((b - a) / 4)
            if t < mid:
                b, w_b, index = mid, w_mid, 2 * index
            else:
                a, w_a, index = mid, w_mid, 2 * index + 1
        return w_a + (w_b - w_a) * ((t - a) / (b - a))

    def _gaussian(self, depth: int, index: int) -> Tensor:
        self._generator.manual_seed(_mix_seed(self._seed, depth, index))
        return torch.randn(self._shape, generator=self._generator)


def _mix_seed(seed: int, depth: int, index: int) -> int:
    """A 63-bit seed for one tree node: splitmix64 rounds over (seed, depth, index)."""
    value = seed
    for part in (depth, index):
        value = _splitmix64((value ^ _splitmix64(part + 0x9E3779B97F4A7C15)) & _SEED_MASK)
    return value >> 1


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _SEED_MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _SEED_MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _SEED_MASK
    return value ^ (value >> 31)
