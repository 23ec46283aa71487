"""One look inside the UNet at one noise level: noise the latent to σ, run the denoiser once per prompt side
and keep what the observer captured.

The network passed in is the model as a sampler would run it (e.g. ``UNetCall`` on a patched handle); the
observer is the one its patches installed, so every pass it records is a pass of that network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from latentloom.diffusion.denoiser import DiffusionModel, Prediction, make_denoiser
from latentloom.diffusion.inspect.capture import InspectionObserver, PassCapture
from latentloom.diffusion.sampling import sample_sigmas
from latentloom.diffusion.schedules import DiscreteSchedule


class ProbeError(ValueError):
    """A noise level or input the probe cannot use (names what was wrong)."""


@dataclass(frozen=True)
class NoiseLevel:
    sigma: float
    timestep: float  # the DDPM timestep (0..999) the UNet is given for σ
    step: int | None = None  # when chosen as a step of a schedule: which step (0 = the noisiest) …
    steps: int | None = None  # … of how many …
    scheduler: str | None = None  # … spaced by which scheduler

    def to_json(self) -> dict[str, Any]:
        return {
            "sigma": self.sigma,
            "timestep": self.timestep,
            "step": self.step,
            "steps": self.steps,
            "scheduler": self.scheduler,
        }


def noise_level(
    schedule: DiscreteSchedule,
    *,
    sigma: float | None = None,
    scheduler: str = "normal",
    steps: int = 20,
    step: int = 0,
) -> NoiseLevel:
    """σ given directly, or step ``step`` of ``steps`` spaced by ``scheduler`` (what a KSampler run with
    those settings feeds the model at that step)."""
    if sigma is not None:
        if not sigma > 0:
            raise ProbeError(f"sigma must be positive, got {sigma}")
        return NoiseLevel(sigma=float(sigma), timestep=_timestep(schedule, sigma))
    if not 0 <= step < steps:
        raise ProbeError(f"step {step} is not one of the {steps} steps (0 … {steps - 1})")
    try:
        sigmas = sample_sigmas(schedule, sampler="euler", scheduler=scheduler, steps=steps)
    except ValueError as error:
        raise ProbeError(str(error)) from error
    value = float(sigmas[step])
    return NoiseLevel(sigma=value, timestep=_timestep(schedule, value), step=step, steps=steps, scheduler=scheduler)


def _timestep(schedule: DiscreteSchedule, sigma: float) -> float:
    return float(schedule.sigma_to_timestep(torch.tensor([sigma]))[0])


@dataclass(frozen=True)
class Probe:
    level: NoiseLevel
    noisy: Tensor  # x = latent + σ·noise, what the denoiser was given (CPU float32)
    denoised: Tensor  # D(x; σ) with the positive context (CPU float32)
    positive: PassCapture
    negative: PassCapture | None = None
    denoised_negative: Tensor | None = None


def probe(
    network: DiffusionModel,
    observer: InspectionObserver,
    *,
    schedule: DiscreteSchedule,
    prediction: Prediction,
    latent: Tensor,
    noise: Tensor,
    level: NoiseLevel,
    positive: Tensor,
    negative: Tensor | None = None,
) -> Probe:
    """Run the denoiser at ``level`` on ``latent`` + σ·``noise``, once with ``positive`` as the context and
    once with ``negative`` when given. ``network`` must report its passes to ``observer``.

    At the schedule's largest σ the noise is scaled by sqrt(1 + σ²) instead, as a KSampler run starts there.

    latent, noise: (batch, channels, h, w) on the compute device; contexts (1 or batch, tokens, dim).
    """
    denoiser = make_denoiser(network, schedule, prediction=prediction)
    top = math.isclose(level.sigma, schedule.sigma_max, rel_tol=1e-5) or level.sigma > schedule.sigma_max
    x = latent + noise.to(latent) * (math.sqrt(1 + level.sigma**2) if top else level.sigma)
    sigma = torch.full((x.shape[0],), level.sigma, device=x.device, dtype=x.dtype)
    with torch.inference_mode():
        denoised, positive_pass = _one_pass(denoiser, observer, x, sigma, positive)
        denoised_negative, negative_pass = None, None
        if negative is not None:
            denoised_negative, negative_pass = _one_pass(denoiser, observer, x, sigma, negative)
    return Probe(
        level=level,
        noisy=x.float().cpu(),
        denoised=denoised,
        positive=positive_pass,
        negative=negative_pass,
        denoised_negative=denoised_negative,
    )


def _one_pass(
    denoiser: Any, observer: InspectionObserver, x: Tensor, sigma: Tensor, context: Tensor
) -> tuple[Tensor, PassCapture]:
    if context.shape[0] not in (1, x.shape[0]):
        raise ProbeError(f"a context batch of {context.shape[0]} does not fit a latent batch of {x.shape[0]}")
    context = context.to(device=x.device).expand(x.shape[0], *context.shape[1:])
    before = len(observer.passes)
    denoised = denoiser(x, sigma, context=context)
    recorded = observer.passes[before:]
    if len(recorded) != 1:
        raise ProbeError(f"the network reported {len(recorded)} UNet passes to the observer, expected 1")
    return denoised.float().cpu(), recorded[0]
