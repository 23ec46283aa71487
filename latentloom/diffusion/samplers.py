"""Samplers of the Euler/Karras family, DDIM, DDPM and LCM, in k-diffusion's style.

Every sampler is one function with one signature::

    sample_x(denoiser, x, sigmas, *, extra_args=None, callback=None, noise=None, **options) -> Tensor

``denoiser(x, sigma, **extra_args)`` returns the denoised estimate D(x; σ) (σ is a tensor of shape [batch]);
``x`` starts at noise level ``sigmas[0]`` (x = x0 + σ·ε, the variance-exploding form); ``sigmas`` descends,
usually to 0. ``callback(i, x, denoised, sigma)`` runs once per step after the denoiser, so callers can report
progress and stop. ``noise(sigma, sigma_next)`` supplies the standard-normal draws of stochastic samplers
(see noise.py); deterministic samplers ignore it. Samplers never touch a global RNG and never print.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

Sigmas = Tensor | Sequence[float]
ExtraArgs = Mapping[str, Any] | None


class Denoiser(Protocol):
    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor: ...


class NoiseSampler(Protocol):
    def __call__(self, sigma: float, sigma_next: float) -> Tensor: ...


class StepCallback(Protocol):
    def __call__(self, step: int, x: Tensor, denoised: Tensor, sigma: float) -> None: ...


class SamplerError(ValueError):
    """A sampler was asked for something it cannot do (unknown name, missing noise sampler, bad option)."""


# --- helpers shared by the sampler modules -----------------------------------------------------------------


def sigma_floats(sigmas: Tensor | Sequence[float]) -> list[float]:
    """The σ list as Python floats: scalar step arithmetic stays off the device."""
    if isinstance(sigmas, Tensor):
        return [float(s) for s in sigmas.detach().cpu().flatten()]
    return [float(s) for s in sigmas]


def denoise(denoiser: Denoiser, x: Tensor, sigma: float, extra_args: Mapping[str, Any] | None) -> Tensor:
    """D(x; σ) with σ broadcast to the batch, as samplers call it."""
    return denoiser(x, x.new_full((x.shape[0],), sigma), **(extra_args or {}))


def report(callback: StepCallback | None, step: int, x: Tensor, denoised: Tensor, sigma: float) -> None:
    if callback is not None:
        callback(step, x, denoised, sigma)


def require_noise(noise: NoiseSampler | None, sampler: str) -> NoiseSampler:
    if noise is None:
        raise SamplerError(f"sampler {sampler!r} is stochastic and needs a noise sampler (noise=...)")
    return noise


def ode_derivative(x: Tensor, denoised: Tensor, sigma: float) -> Tensor:
    """dx/dσ of the probability-flow ODE, (x - D(x; σ)) / σ (Karras et al. 2022, eq. 4)."""
    return (x - denoised) / sigma


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """Split the step σ → σ' into a deterministic step down to σ_down and fresh noise of std σ_up, with
    σ_down² + σ_up² = σ'² (η = 1 is DDPM's posterior variance, η = 0 is deterministic)."""
    if not eta or sigma_next == 0:
        return sigma_next, 0.0
    sigma_up = min(sigma_next, eta * (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
    sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


# --- samplers ----------------------------------------------------------------------------------------------


@torch.no_grad()
def sample_euler(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
) -> Tensor:
    """Euler steps of the probability-flow ODE: Karras et al. (2022), "Elucidating the Design Space of
    Diffusion-Based Generative Models", Algorithm 2 without churn."""
    s = sigma_floats(sigmas)
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        x = x + ode_derivative(x, denoised, s[i]) * (s[i + 1] - s[i])
    return x


@torch.no_grad()
def sample_euler_ancestral(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> Tensor:
    """Ancestral sampling with Euler steps: an Euler step down to σ_down, then fresh noise up to σ'
    (k-diffusion; the ancestral split follows Ho et al. 2020, "Denoising Diffusion Probabilistic Models")."""
    s = sigma_floats(sigmas)
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        sigma_down, sigma_up = ancestral_step(s[i], s[i + 1], eta)
        if sigma_down == 0:
            x = denoised
            continue
        x = x + ode_derivative(x, denoised, s[i]) * (sigma_down - s[i])
        if sigma_up > 0:
            x = x + require_noise(noise, "euler_ancestral")(s[i], s[i + 1]) * (s_noise * sigma_up)
    return x


@torch.no_grad()
def sample_heun(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
) -> Tensor:
    """Heun's second-order method on the probability-flow ODE: Karras et al. (2022), Algorithm 1/2 without
    churn; the last step to σ = 0 is an Euler step."""
    s = sigma_floats(sigmas)
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        d = ode_derivative(x, denoised, s[i])
        dt = s[i + 1] - s[i]
        if s[i + 1] == 0:
            x = x + d * dt
            continue
        x_euler = x + d * dt
        d_next = ode_derivative(x_euler, denoise(denoiser, x_euler, s[i + 1], extra_args), s[i + 1])
        x = x + (d + d_next) / 2 * dt
    return x


@torch.no_grad()
def sample_dpm_2(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
) -> Tensor:
    """Second-order midpoint steps in log σ, inspired by DPM-Solver-2 (Lu et al. 2022, "DPM-Solver") and
    Karras et al. (2022), Algorithm 2; the last step to σ = 0 is an Euler step."""
    s = sigma_floats(sigmas)
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        d = ode_derivative(x, denoised, s[i])
        if s[i + 1] == 0:
            x = x + d * (s[i + 1] - s[i])
            continue
        x = _dpm_2_step(denoiser, x, d, s[i], s[i + 1], extra_args)
    return x


def _dpm_2_step(denoiser, x, d, sigma, sigma_to, extra_args):
    """One DPM-Solver-2 step from σ to σ_to given dx/dσ at σ: evaluate at the log-midpoint, step with it."""
    sigma_mid = math.exp((math.log(sigma) + math.log(sigma_to)) / 2)
    x_mid = x + d * (sigma_mid - sigma)
    d_mid = ode_derivative(x_mid, denoise(denoiser, x_mid, sigma_mid, extra_args), sigma_mid)
    return x + d_mid * (sigma_to - sigma)


@torch.no_grad()
def sample_dpm_2_ancestral(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> Tensor:
    """Ancestral sampling with DPM-Solver-2 steps (Lu et al. 2022) down to σ_down, then fresh noise to σ'."""
    s = sigma_floats(sigmas)
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        sigma_down, sigma_up = ancestral_step(s[i], s[i + 1], eta)
        d = ode_derivative(x, denoised, s[i])
        if sigma_down == 0:
            x = x + d * (sigma_down - s[i])
            continue
        x = _dpm_2_step(denoiser, x, d, s[i], sigma_down, extra_args)
        if sigma_up > 0:
            x = x + require_noise(noise, "dpm_2_ancestral")(s[i], s[i + 1]) * (s_noise * sigma_up)
    return x


@torch.no_grad()
def sample_lms(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
    order: int = 4,
) -> Tensor:
    """Linear multistep (Adams–Bashforth with non-uniform steps) on the probability-flow ODE, as in
    k-diffusion; see Karras et al. (2022) and Liu et al. (2022), "Pseudo Numerical Methods for Diffusion
    Models". The last step to σ = 0 returns the denoised estimate."""
    s = sigma_floats(sigmas)
    derivatives: list[Tensor] = []
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        derivatives = [*derivatives, ode_derivative(x, denoised, s[i])][-order:]
        if s[i + 1] == 0:
            x = denoised
            continue
        current_order = min(i + 1, order)
        coefficients = [lms_coefficient(current_order, s, i, j) for j in range(current_order)]
        x = x + sum(c * d for c, d in zip(coefficients, reversed(derivatives), strict=False))
    return x


def lms_coefficient(order: int, sigmas: Sequence[float], i: int, j: int) -> float:
    """∫ from σ_i to σ_(i+1) of the Lagrange basis polynomial through σ_i … σ_(i-order+1) for node σ_(i-j).

    Gauss–Legendre with ``order`` nodes integrates that degree-(order-1) polynomial exactly."""
    if order - 1 > i:
        raise SamplerError(f"LMS order {order} is too high for step {i}")
    nodes, weights = np.polynomial.legendre.leggauss(order)
    a, b = sigmas[i], sigmas[i + 1]
    taus = (b - a) / 2 * nodes + (a + b) / 2
    basis = np.ones_like(taus)
    for k in range(order):
        if k != j:
            basis *= (taus - sigmas[i - k]) / (sigmas[i - j] - sigmas[i - k])
    return float((b - a) / 2 * np.sum(weights * basis))


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
) -> Tensor:
    """Deterministic DDIM (η = 0): Song et al. (2021), "Denoising Diffusion Implicit Models", eq. 12, in σ form
    x' = D + (σ'/σ)(x - D). This is the Euler step of the probability-flow ODE, which is why ComfyUI runs
    "ddim" as euler; its use of fresh noise for inpainting is set in the sampler registry."""
    s = sigma_floats(sigmas)
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        x = denoised + (x - denoised) * (s[i + 1] / s[i])
    return x


@torch.no_grad()
def sample_ddpm(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
) -> Tensor:
    """Ancestral DDPM steps with the posterior variance β̃ (Ho et al. 2020, "Denoising Diffusion Probabilistic
    Models", Algorithm 2), between arbitrary σ levels: ᾱ = 1/(1 + σ²), taken in the variance-preserving form."""
    s = sigma_floats(sigmas)
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        alpha_bar, alpha_bar_next = 1 / (1 + s[i] ** 2), 1 / (1 + s[i + 1] ** 2)
        alpha = alpha_bar / alpha_bar_next
        eps = (x - denoised) / s[i]
        x_vp = x / math.sqrt(1 + s[i] ** 2)
        x = (x_vp - eps * ((1 - alpha) / math.sqrt(1 - alpha_bar))) / math.sqrt(alpha)
        if s[i + 1] > 0:
            posterior_std = math.sqrt((1 - alpha) * (1 - alpha_bar_next) / (1 - alpha_bar))
            x = x + require_noise(noise, "ddpm")(s[i], s[i + 1]) * posterior_std
            x = x * math.sqrt(1 + s[i + 1] ** 2)
    return x


@torch.no_grad()
def sample_lcm(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
) -> Tensor:
    """Latent Consistency Model multistep sampling: Luo et al. (2023), "Latent Consistency Models",
    Algorithm 1 — jump to the denoised estimate, then re-noise it to the next σ with fresh noise."""
    s = sigma_floats(sigmas)
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        x = denoised
        if s[i + 1] > 0:
            x = x + require_noise(noise, "lcm")(s[i], s[i + 1]) * s[i + 1]
    return x
