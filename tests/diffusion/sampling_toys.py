"""Toy denoisers with known answers for the sampler tests.

Data x0 ~ N(μ, s²) per element has the exact denoiser D(x; σ) = (s²·x + σ²·μ) / (s² + σ²), and the
probability-flow ODE dx/dσ = (x - D)/σ = σ(x - μ)/(s² + σ²) has the solution
x(σ') = μ + (x(σ) - μ)·sqrt(s² + σ'²)/sqrt(s² + σ²).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MU = 0.7
STD = 0.5


def gaussian_denoiser(x: Tensor, sigma: Tensor, **extra: object) -> Tensor:
    s = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    return (STD**2 * x + s**2 * MU) / (STD**2 + s**2)


def exact_ode_solution(x: Tensor, sigma_from: float, sigma_to: float) -> Tensor:
    return MU + (x - MU) * (math.sqrt(STD**2 + sigma_to**2) / math.sqrt(STD**2 + sigma_from**2))


def log_spaced_sigmas(n: int, sigma_max: float = 10.0, sigma_min: float = 0.05) -> list[float]:
    """n steps evenly spaced in log σ, not ending at 0 (so the ODE solution stays exact to compare)."""
    return [math.exp(math.log(sigma_max) + (math.log(sigma_min) - math.log(sigma_max)) * i / n) for i in range(n + 1)]


class CountingDenoiser:
    """Wraps a denoiser and records every call's batch size and keyword arguments."""

    def __init__(self, denoiser=gaussian_denoiser) -> None:
        self.denoiser = denoiser
        self.calls: list[dict[str, object]] = []

    def __call__(self, x: Tensor, sigma: Tensor, **extra: object) -> Tensor:
        self.calls.append({"batch": x.shape[0], "sigma": sigma.clone(), **extra})
        return self.denoiser(x, sigma, **extra)
