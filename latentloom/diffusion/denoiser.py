"""Denoiser wrappers: turn a discrete-time network ``model(x_in, t, **extra) -> output`` into the one boundary
samplers see, ``denoiser(x, sigma, **extra) -> D(x; σ)``.

The latent is in the variance-exploding form x = x0 + σ·ε; the network was trained on the variance-preserving
x_t = sqrt(ᾱ)·x0 + sqrt(1 - ᾱ)·ε = x / sqrt(σ² + 1), so the input is scaled by c_in = 1/sqrt(σ² + 1) and the
timestep is read from the schedule's σ table (Karras et al. 2022, Table 1, "VP" preconditioning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from latentloom.diffusion.schedules import DiscreteSchedule

Prediction = Literal["eps", "v"]


class DiffusionModel(Protocol):
    """The network: noisy input scaled to unit variance, timesteps of shape [batch], extra conditioning."""

    def __call__(self, x: Tensor, timestep: Tensor, **extra: Any) -> Tensor: ...


def _per_sample(sigma: Tensor, x: Tensor) -> Tensor:
    """σ of shape [batch] (or a scalar) as [batch, 1, 1, …] to broadcast over x."""
    sigma = torch.as_tensor(sigma, device=x.device, dtype=x.dtype)
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))


def _timesteps(schedule: DiscreteSchedule, sigma: Tensor, x: Tensor, quantize: bool) -> Tensor:
    sigma = torch.as_tensor(sigma).reshape(-1).expand(x.shape[0])
    return schedule.sigma_to_timestep(sigma, quantize=quantize).to(device=x.device)


@dataclass(frozen=True)
class EpsDenoiser:
    """ε-prediction (SD 1.x, SDXL): D(x; σ) = x - σ·ε̂(x / sqrt(σ² + 1), t(σ)).

    ``quantize_timesteps`` feeds the nearest table timestep, as ComfyUI does; off, the fractional one."""

    model: DiffusionModel
    schedule: DiscreteSchedule
    quantize_timesteps: bool = True

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        s = _per_sample(sigma, x)
        t = _timesteps(self.schedule, sigma, x, self.quantize_timesteps)
        eps = self.model(x / (s**2 + 1) ** 0.5, t, **extra).to(x.dtype)
        return x - eps * s


@dataclass(frozen=True)
class VDenoiser:
    """v-prediction (SD 2.x 768-v; Salimans & Ho 2022, "Progressive Distillation", appendix D):
    D(x; σ) = x / (σ² + 1) - v̂·σ / sqrt(σ² + 1)."""

    model: DiffusionModel
    schedule: DiscreteSchedule
    quantize_timesteps: bool = True

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        s = _per_sample(sigma, x)
        t = _timesteps(self.schedule, sigma, x, self.quantize_timesteps)
        v = self.model(x / (s**2 + 1) ** 0.5, t, **extra).to(x.dtype)
        return x / (s**2 + 1) - v * s / (s**2 + 1) ** 0.5


def make_denoiser(
    model: DiffusionModel,
    schedule: DiscreteSchedule,
    *,
    prediction: Prediction = "eps",
    quantize_timesteps: bool = True,
) -> EpsDenoiser | VDenoiser:
    """The denoiser for a network trained with ``prediction`` ("eps" or "v")."""
    if prediction == "eps":
        return EpsDenoiser(model, schedule, quantize_timesteps=quantize_timesteps)
    if prediction == "v":
        return VDenoiser(model, schedule, quantize_timesteps=quantize_timesteps)
    raise ValueError(f"unknown prediction type {prediction!r}; expected 'eps' or 'v'")
