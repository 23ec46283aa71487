"""DPM-Solver++ samplers: single-step ancestral, multistep, and the SDE variants.

Same signature and conventions as samplers.py. These solvers step in λ = -log σ (the half log-SNR of the
variance-exploding form, where α = 1), integrating the linear part of the ODE exactly (exponential
integrators) and approximating the denoised estimate by a low-order polynomial in λ.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentloom.diffusion.samplers import (
    Denoiser,
    ExtraArgs,
    NoiseSampler,
    Sigmas,
    StepCallback,
    ancestral_step,
    denoise,
    report,
    require_noise,
    sigma_floats,
)


@torch.no_grad()
def sample_dpmpp_2s_ancestral(
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
    """Ancestral sampling with DPM-Solver++(2S) steps: Lu et al. (2022), "DPM-Solver++: Fast Solver for
    Guided Sampling of Diffusion Probabilistic Models", Algorithm 1 (r = 1/2), down to σ_down, then fresh
    noise up to σ'."""
    s = sigma_floats(sigmas)
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        sigma_down, sigma_up = ancestral_step(s[i], s[i + 1], eta)
        if sigma_down == 0:
            x = denoised
        else:
            h = math.log(s[i]) - math.log(sigma_down)
            sigma_mid = s[i] * math.exp(-h / 2)
            x_mid = (sigma_mid / s[i]) * x - math.expm1(-h / 2) * denoised
            denoised_mid = denoise(denoiser, x_mid, sigma_mid, extra_args)
            x = (sigma_down / s[i]) * x - math.expm1(-h) * denoised_mid
        if s[i + 1] > 0 and sigma_up > 0:
            x = x + require_noise(noise, "dpmpp_2s_ancestral")(s[i], s[i + 1]) * (s_noise * sigma_up)
    return x


@torch.no_grad()
def sample_dpmpp_sde(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    r: float = 0.5,
) -> Tensor:
    """DPM-Solver++ (stochastic, two stages per step, k-diffusion's "DPM++ SDE"): Lu et al. (2022),
    "DPM-Solver++", with ancestral noise in each stage; the noise should come from a Brownian tree so the
    stage at λ_s + r·h is consistent with the full step."""
    s = sigma_floats(sigmas)
    stochastic = eta > 0 and s_noise > 0
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        if s[i + 1] == 0:
            x = denoised
            continue
        sigma_mid = stage_sigma(s[i], s[i + 1], r)
        # Stage 1: to λ_s + r·h.
        sigma_down, sigma_up = ancestral_step(s[i], sigma_mid, eta)
        x_mid = (sigma_down / s[i]) * x - math.expm1(math.log(sigma_down / s[i])) * denoised
        if stochastic:
            x_mid = x_mid + require_noise(noise, "dpmpp_sde")(s[i], sigma_mid) * (s_noise * sigma_up)
        denoised_mid = denoise(denoiser, x_mid, sigma_mid, extra_args)
        # Stage 2: the full step with the denoised estimate extrapolated to the step's end.
        sigma_down, sigma_up = ancestral_step(s[i], s[i + 1], eta)
        fac = 1 / (2 * r)
        denoised_d = (1 - fac) * denoised + fac * denoised_mid
        x = (sigma_down / s[i]) * x - math.expm1(math.log(sigma_down / s[i])) * denoised_d
        if stochastic:
            x = x + require_noise(noise, "dpmpp_sde")(s[i], s[i + 1]) * (s_noise * sigma_up)
    return x


def stage_sigma(sigma: float, sigma_next: float, r: float) -> float:
    """σ at λ_s + r·(λ_t - λ_s), λ = -log σ, computed in float32 as k-diffusion does: the Brownian noise is
    queried at this σ, so the same arithmetic gives ComfyUI's noise for the stage."""
    lambda_s = torch.tensor(sigma, dtype=torch.float32).log().neg()
    lambda_t = torch.tensor(sigma_next, dtype=torch.float32).log().neg()
    return float((lambda_s + r * (lambda_t - lambda_s)).neg().exp())


@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
) -> Tensor:
    """DPM-Solver++(2M): Lu et al. (2022), "DPM-Solver++", Algorithm 2 — second-order multistep with the
    previous denoised estimate; first and last steps are first order."""
    s = sigma_floats(sigmas)
    old_denoised = None
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        if s[i + 1] == 0:
            x = denoised
            continue
        h = math.log(s[i]) - math.log(s[i + 1])
        denoised_d = denoised
        if old_denoised is not None:
            r = (math.log(s[i - 1]) - math.log(s[i])) / h
            denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        x = (s[i + 1] / s[i]) * x - math.expm1(-h) * denoised_d
        old_denoised = denoised
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    solver_type: str = "midpoint",
) -> Tensor:
    """DPM-Solver++(2M) SDE: the second-order multistep solver of the diffusion SDE from Lu et al. (2022),
    "DPM-Solver++" (§ SDE solvers), with k-diffusion's "midpoint" or "heun" correction term."""
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"solver_type must be 'midpoint' or 'heun', got {solver_type!r}")
    s = sigma_floats(sigmas)
    old_denoised, h_last = None, None
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        if s[i + 1] == 0:
            x = denoised
            continue
        h = math.log(s[i]) - math.log(s[i + 1])
        h_eta = h * (eta + 1)
        phi_1 = -math.expm1(-h_eta)
        x = (s[i + 1] / s[i]) * math.exp(-h * eta) * x + phi_1 * denoised
        if old_denoised is not None:
            r = h_last / h
            weight = 0.5 * phi_1 if solver_type == "midpoint" else 1 - phi_1 / h_eta
            x = x + (weight / r) * (denoised - old_denoised)
        x = _add_sde_noise(x, noise, "dpmpp_2m_sde", s[i], s[i + 1], h * eta, s_noise)
        old_denoised, h_last = denoised, h
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde_heun(
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
    """DPM-Solver++(2M) SDE with the "heun" correction term (ComfyUI's dpmpp_2m_sde_heun)."""
    return sample_dpmpp_2m_sde(
        denoiser, x, sigmas, extra_args=extra_args, callback=callback, noise=noise, eta=eta,
        s_noise=s_noise, solver_type="heun",
    )  # fmt: skip


@torch.no_grad()
def sample_dpmpp_3m_sde(
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
    """DPM-Solver++(3M) SDE: third-order multistep solver of the diffusion SDE (k-diffusion, after Lu et al.
    2022, "DPM-Solver++"), using the two previous denoised estimates; lower order while history builds up."""
    s = sigma_floats(sigmas)
    history: list[tuple[Tensor, float]] = []  # (denoised, h) of earlier steps, newest first
    for i in range(len(s) - 1):
        denoised = denoise(denoiser, x, s[i], extra_args)
        report(callback, i, x, denoised, s[i])
        if s[i + 1] == 0:
            x = denoised
            continue
        h = math.log(s[i]) - math.log(s[i + 1])
        h_eta = h * (eta + 1)
        x = (s[i + 1] / s[i]) * math.exp(-h * eta) * x - math.expm1(-h_eta) * denoised
        phi_2 = math.expm1(-h_eta) / h_eta + 1
        if len(history) >= 2:
            (denoised_1, h_1), (denoised_2, h_2) = history[0], history[1]
            r0, r1 = h_1 / h, h_2 / h
            d1_0 = (denoised - denoised_1) / r0
            d1_1 = (denoised_1 - denoised_2) / r1
            d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1))
            d2 = (d1_0 - d1_1) / (r0 + r1)
            phi_3 = phi_2 / h_eta - 0.5
            x = x + phi_2 * d1 - phi_3 * d2
        elif history:
            denoised_1, h_1 = history[0]
            x = x + phi_2 * ((denoised - denoised_1) / (h_1 / h))
        x = _add_sde_noise(x, noise, "dpmpp_3m_sde", s[i], s[i + 1], h * eta, s_noise)
        history = [(denoised, h), *history][:2]
    return x


def _add_sde_noise(x, noise, sampler, sigma, sigma_next, h_eta, s_noise):
    """The SDE step's noise term σ'·sqrt(1 - e^(-2hη))·z (nothing when η or s_noise is 0)."""
    if h_eta <= 0 or s_noise <= 0:
        return x
    scale = sigma_next * math.sqrt(-math.expm1(-2 * h_eta)) * s_noise
    return x + require_noise(noise, sampler)(sigma, sigma_next) * scale
