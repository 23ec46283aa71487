"""ε- and v-prediction wrappers: the network sees the VP input and timestep, and D recovers x0 exactly."""

from __future__ import annotations

import pytest
import torch

from latentloom.diffusion.denoiser import EpsDenoiser, VDenoiser, make_denoiser
from latentloom.diffusion.schedules import DiscreteSchedule

SCHEDULE = DiscreteSchedule.scaled_linear()


def _noisy(sigmas: list[float]):
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(len(sigmas), 4, 3, 3, generator=generator)
    eps = torch.randn(len(sigmas), 4, 3, 3, generator=generator)
    sigma = torch.tensor(sigmas)
    return x0, eps, sigma, x0 + eps * sigma.reshape(-1, 1, 1, 1)


def test_eps_denoiser_recovers_x0_from_the_true_noise():
    x0, eps, sigma, x = _noisy([0.5, 3.0, 14.0])
    seen = {}

    def model(x_in, t, **extra):
        seen.update(x_in=x_in, t=t, extra=extra)
        return eps

    denoised = EpsDenoiser(model, SCHEDULE)(x, sigma, context="ctx")
    torch.testing.assert_close(denoised, x0)
    torch.testing.assert_close(seen["x_in"], x / (sigma**2 + 1).sqrt().reshape(-1, 1, 1, 1))
    torch.testing.assert_close(seen["t"], SCHEDULE.sigma_to_timestep(sigma))
    assert seen["extra"] == {"context": "ctx"}


def test_v_denoiser_recovers_x0_from_the_true_velocity():
    x0, eps, sigma, x = _noisy([0.2, 1.0, 9.0])
    alpha = (1 / (sigma**2 + 1).sqrt()).reshape(-1, 1, 1, 1)
    sigma_vp = (sigma.reshape(-1, 1, 1, 1) * alpha)
    velocity = alpha * eps - sigma_vp * x0  # Salimans & Ho: v = α·ε - σ·x0 in the VP form

    def model(x_in, t, **extra):
        torch.testing.assert_close(x_in, alpha * x0 + sigma_vp * eps)
        return velocity

    torch.testing.assert_close(VDenoiser(model, SCHEDULE)(x, sigma), x0, rtol=1e-5, atol=1e-5)


def test_unquantized_timesteps_are_fractional():
    sigma = torch.tensor([float(SCHEDULE.timestep_to_sigma(123.4))])
    seen = {}
    EpsDenoiser(lambda x_in, t: seen.setdefault("t", t) * 0 + x_in, SCHEDULE, quantize_timesteps=False)(
        torch.zeros(1, 1, 1, 1), sigma
    )
    assert float(seen["t"][0]) == pytest.approx(123.4, abs=1e-3)


def test_scalar_sigma_is_broadcast_to_the_batch_and_output_cast_to_x():
    seen = {}

    def model(x_in, t, **extra):
        seen["t"] = t
        return torch.zeros_like(x_in, dtype=torch.float16)

    out = make_denoiser(model, SCHEDULE, prediction="eps")(torch.ones(3, 1, 2, 2), torch.tensor(2.0))
    assert out.dtype == torch.float32
    assert seen["t"].shape == (3,)
    assert isinstance(make_denoiser(model, SCHEDULE, prediction="v"), VDenoiser)
    with pytest.raises(ValueError, match="unknown prediction type 'x0'"):
        make_denoiser(model, SCHEDULE, prediction="x0")
