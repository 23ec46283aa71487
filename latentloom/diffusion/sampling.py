"""The KSampler: σ planning (scheduler, steps, denoise, start/end step), initial noise, img2img, inpainting
masks and the seeded noise samplers, around any sampler and denoiser. Pure tensors in, tensors out.

Latents here are in the model's space (already multiplied by the VAE scale factor). Behaviour follows
ComfyUI 0.8.0's KSampler / KSamplerAdvanced (comfy/samplers.py, comfy/sample.py), so a seed gives the same
starting noise, the same ancestral noise (on the CPU) and the same Brownian noise of the SDE samplers as
ComfyUI (see noise.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom.diffusion.noise import BrownianTreeNoiseSampler, GaussianNoiseSampler, initial_noise
from latentloom.diffusion.sampler_registry import NoiseKind, sampler_spec
from latentloom.diffusion.samplers import Denoiser, NoiseSampler, StepCallback, sigma_floats
from latentloom.diffusion.schedulers import scheduler_sigmas
from latentloom.diffusion.schedules import DiscreteSchedule


def sample_sigmas(
    schedule: DiscreteSchedule,
    *,
    sampler: str,
    scheduler: str,
    steps: int,
    denoise: float = 1.0,
    start_step: int | None = None,
    last_step: int | None = None,
    force_full_denoise: bool = False,
) -> Tensor:
    """The σ list a KSampler run walks; empty when there is nothing to do.

    ``denoise`` < 1 plans int(steps / denoise) steps and keeps the last ``steps`` of them (img2img strength).
    ``last_step`` cuts the run short (with ``force_full_denoise`` its last σ becomes 0); ``start_step`` skips
    the first steps (KSamplerAdvanced).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if denoise > 0.9999:
        sigmas = _scheduled(schedule, sampler, scheduler, steps)
    elif denoise <= 0.0:
        return torch.zeros(0)
    else:
        sigmas = _scheduled(schedule, sampler, scheduler, int(steps / denoise))[-(steps + 1) :]
    if last_step is not None and last_step < len(sigmas) - 1:
        sigmas = sigmas[: last_step + 1].clone()
        if force_full_denoise:
            sigmas[-1] = 0
    if start_step is not None:
        sigmas = sigmas[start_step:] if start_step < len(sigmas) - 1 else sigmas[:0]
    return sigmas


def _scheduled(schedule: DiscreteSchedule, sampler: str, scheduler: str, steps: int) -> Tensor:
    if sampler_spec(sampler).discard_penultimate_sigma:
        sigmas = scheduler_sigmas(scheduler, schedule, steps + 1)
        return torch.cat([sigmas[:-2], sigmas[-1:]])
    return scheduler_sigmas(scheduler, schedule, steps)


@dataclass(frozen=True, eq=False)
class InpaintDenoiser:
    """Keeps the unmasked region on the input latent: before each call the region where ``mask`` is 0 is
    replaced by the latent noised to the current σ, and the result there is the latent itself
    (ComfyUI's KSamplerX0Inpaint). ``mask`` is 1 where the sampler may change the latent."""

    denoiser: Denoiser
    latent: Tensor
    noise: Tensor
    mask: Tensor

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        keep = 1.0 - self.mask
        s = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        x = x * self.mask + (self.latent + self.noise * s) * keep
        return self.denoiser(x, sigma, **extra) * self.mask + self.latent * keep


def prepare_noise_mask(mask: Tensor, shape: Sequence[int]) -> Tensor:
    """A [H, W], [batch, H, W] or [batch, 1, H, W] mask at any resolution, resized bilinearly to the latent and
    repeated over its channels and batch."""
    batch, channels, height, width = (int(d) for d in shape)
    mask = mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]).float()
    mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    mask = mask.repeat(1, channels, 1, 1)
    if mask.shape[0] < batch:
        mask = mask.repeat(math.ceil(batch / mask.shape[0]), 1, 1, 1)
    return mask[:batch]


def run_sampler(
    denoiser: Denoiser,
    latent: Tensor,
    sigmas: Tensor,
    *,
    sampler: str,
    seed: int,
    noise: Tensor,
    sigma_max: float,
    noise_mask: Tensor | None = None,
    callback: StepCallback | None = None,
    extra_args: Mapping[str, Any] | None = None,
    sampler_options: Mapping[str, Any] | None = None,
) -> Tensor:
    """Noise ``latent`` to ``sigmas[0]`` and run ``sampler`` down the list.

    Starting at the model's ``sigma_max`` the noise is scaled by sqrt(1 + σ²) instead of σ (the VP prior,
    as ComfyUI does); img2img starts at latent + noise·σ₀. ``noise_mask`` (1 = regenerate) keeps the rest of
    the latent. The sampler's own noise derives from ``seed``.
    """
    if len(sigmas) == 0:
        return latent
    spec = sampler_spec(sampler)
    first = float(sigmas[0])
    scale = math.sqrt(1 + first**2) if math.isclose(sigma_max, first, rel_tol=1e-5) or first > sigma_max else first
    x = latent + noise.to(latent) * scale
    model = denoiser
    if noise_mask is not None:
        mask = prepare_noise_mask(noise_mask, latent.shape).to(latent)
        keep_noise = noise.to(latent)
        if spec.fresh_inpaint_noise:
            keep_noise = initial_noise(seed + 1, latent.shape, dtype=latent.dtype, device=latent.device)
        model = InpaintDenoiser(denoiser, latent, keep_noise, mask)
    noise_sampler = make_noise_sampler(spec.noise, seed, like=x, sigmas=sigmas)
    options = dict(sampler_options or {})
    return spec.function(model, x, sigmas, extra_args=extra_args, callback=callback, noise=noise_sampler, **options)


def make_noise_sampler(kind: NoiseKind, seed: int, *, like: Tensor, sigmas: Tensor) -> NoiseSampler | None:
    """The seeded noise sampler a sampler draws from: ComfyUI's ancestral samplers use a fresh generator
    seeded with seed + 1 (on the CPU); SDE samplers a Brownian tree over the run's σ range."""
    if kind == "gaussian":
        return GaussianNoiseSampler(seed + 1, like=like)
    if kind == "brownian":
        values = sigma_floats(sigmas)
        positive = [s for s in values if s > 0]
        high = max(values)
        low = min(positive) if positive and min(positive) < high else 0.0
        return BrownianTreeNoiseSampler(seed, like=like, sigma_min=low, sigma_max=high)
    return None


def ksample(
    denoiser: Denoiser,
    latent: Tensor,
    *,
    schedule: DiscreteSchedule,
    seed: int,
    steps: int,
    sampler: str,
    scheduler: str,
    denoise: float = 1.0,
    start_step: int | None = None,
    last_step: int | None = None,
    add_noise: bool = True,
    return_with_leftover_noise: bool = False,
    noise_mask: Tensor | None = None,
    batch_indices: Sequence[int] | None = None,
    callback: StepCallback | None = None,
    extra_args: Mapping[str, Any] | None = None,
) -> Tensor:
    """A whole KSampler / KSamplerAdvanced run on a model-space latent; returns the sampled latent.

    The plain KSampler is ``denoise`` with the defaults; KSamplerAdvanced sets ``start_step``/``last_step``,
    ``add_noise`` and ``return_with_leftover_noise`` (and denoise 1). The callback sees
    ``len(sample_sigmas(...)) - 1`` steps.
    """
    sigmas = sample_sigmas(
        schedule, sampler=sampler, scheduler=scheduler, steps=steps, denoise=denoise, start_step=start_step,
        last_step=last_step, force_full_denoise=not return_with_leftover_noise,
    )  # fmt: skip
    if len(sigmas) == 0:
        return latent
    if add_noise:
        noise = initial_noise(seed, latent.shape, dtype=latent.dtype, device=latent.device, batch_indices=batch_indices)
    else:
        noise = torch.zeros_like(latent)
    return run_sampler(
        denoiser, latent, sigmas, sampler=sampler, seed=seed, noise=noise, sigma_max=schedule.sigma_max,
        noise_mask=noise_mask, callback=callback, extra_args=extra_args,
    )  # fmt: skip
