"""The discrete noise schedule of Stable Diffusion and its sigma table.

A DDPM trained on N discrete timesteps defines ᾱ_t (alphas_cumprod); in the variance-exploding view that
k-diffusion and ComfyUI sample in, timestep t has noise level σ_t = sqrt((1 - ᾱ_t) / ᾱ_t) and a noisy latent is
x = x0 + σ·ε. This module holds that table and converts between σ and t the way ComfyUI's
``ModelSamplingDiscrete`` does: the table is built in float64 and stored as float32, σ → t picks the nearest
table entry in log σ (or interpolates, k-diffusion's unquantized variant), and t → σ interpolates log σ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

SD_BETA_START = 0.00085
SD_BETA_END = 0.012
SD_NUM_TIMESTEPS = 1000


def scaled_linear_betas(beta_start: float, beta_end: float, num_timesteps: int) -> Tensor:
    """β_t = linspace(sqrt(β_start), sqrt(β_end), N)², in float64 (LDM's "linear" schedule)."""
    return torch.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=torch.float64) ** 2


@dataclass(frozen=True, eq=False)
class DiscreteSchedule:
    """σ table of a discrete-time model: ``sigmas[t]`` for t = 0 … N-1, ascending."""

    alphas_cumprod: Tensor  # float64, shape [N]
    sigmas: Tensor  # float32, shape [N]
    log_sigmas: Tensor  # float32, shape [N]

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: Tensor) -> DiscreteSchedule:
        acp = alphas_cumprod.detach().to(device="cpu", dtype=torch.float64)
        if acp.ndim != 1 or acp.numel() < 2:
            raise ValueError(f"alphas_cumprod must be a 1-D table of at least 2 entries, got shape {tuple(acp.shape)}")
        if not bool(((acp > 0) & (acp < 1)).all()):
            raise ValueError("alphas_cumprod must lie strictly between 0 and 1")
        sigmas = ((1 - acp) / acp) ** 0.5
        # Log is taken in float64 and then rounded, as ComfyUI does.
        return cls(alphas_cumprod=acp, sigmas=sigmas.float(), log_sigmas=sigmas.log().float())

    @classmethod
    def from_betas(cls, betas: Tensor) -> DiscreteSchedule:
        return cls.from_alphas_cumprod(torch.cumprod(1.0 - betas.to(torch.float64), dim=0))

    @classmethod
    def scaled_linear(
        cls,
        *,
        beta_start: float = SD_BETA_START,
        beta_end: float = SD_BETA_END,
        num_timesteps: int = SD_NUM_TIMESTEPS,
    ) -> DiscreteSchedule:
        """The Stable Diffusion 1.x/2.x/XL schedule (defaults: 0.00085 → 0.012 over 1000 steps)."""
        return cls.from_betas(scaled_linear_betas(beta_start, beta_end, num_timesteps))

    @property
    def num_timesteps(self) -> int:
        return int(self.sigmas.numel())

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def sigma_to_timestep(self, sigma: Tensor | float, *, quantize: bool = True) -> Tensor:
        """The timestep of each σ, as float32.

        ``quantize`` (ComfyUI's behaviour, what the model sees there) returns the index of the nearest table
        entry in log σ; otherwise the fractional timestep from linear interpolation of log σ (k-diffusion).
        """
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        log_sigma = sigma.detach().to("cpu", torch.float32).log()
        if quantize:
            dists = (log_sigma.reshape(1, -1) - self.log_sigmas[:, None]).abs()
            return dists.argmin(dim=0).float().reshape(sigma.shape).to(sigma.device)
        return _interpolate_timestep(log_sigma, self.log_sigmas).reshape(sigma.shape).to(sigma.device)

    def timestep_to_sigma(self, timestep: Tensor | float) -> Tensor:
        """σ at a (possibly fractional) timestep: linear interpolation of log σ, in float32."""
        timestep = torch.as_tensor(timestep)
        t = timestep.detach().to("cpu", torch.float32).clamp(0, self.num_timesteps - 1)
        low = t.floor().long()
        high = t.ceil().long()
        w = t.frac()
        log_sigma = (1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]
        return log_sigma.exp().to(timestep.device)

    def percent_to_sigma(self, percent: float) -> float:
        """σ at a fraction of the sampling run (0 = start, pure noise; 1 = end, clean), as ComfyUI reads
        ``start_percent``/``end_percent``. Beyond the ends it returns a huge σ and 0."""
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(self.timestep_to_sigma((1.0 - percent) * (self.num_timesteps - 1)))


def _interpolate_timestep(log_sigma: Tensor, log_sigmas: Tensor) -> Tensor:
    """Fractional index of each log σ in the ascending table ``log_sigmas`` (clamped to its ends)."""
    flat = log_sigma.reshape(-1)
    low = torch.searchsorted(log_sigmas, flat, right=True).sub(1).clamp(0, log_sigmas.numel() - 2)
    low_value, high_value = log_sigmas[low], log_sigmas[low + 1]
    w = ((flat - low_value) / (high_value - low_value)).clamp(0, 1)
    return low.float() + w
