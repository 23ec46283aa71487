"""The discrete SD schedule: its σ table against ComfyUI's numbers, against diffusers' ᾱ, and σ ↔ t."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import DDPMScheduler

from latentloom.diffusion.schedules import DiscreteSchedule


@pytest.fixture(scope="module")
def sd() -> DiscreteSchedule:
    return DiscreteSchedule.scaled_linear()


def test_sigma_table_matches_comfyui(sd, sampling_reference):
    ref = sampling_reference["model_sampling"]
    assert sd.num_timesteps == ref["num_sigmas"] == 1000
    assert sd.sigma_min == pytest.approx(ref["sigma_min"], rel=1e-7)
    assert sd.sigma_max == pytest.approx(ref["sigma_max"], rel=1e-7)
    torch.testing.assert_close(sd.sigmas[:5], torch.tensor(ref["sigmas_first5"]), rtol=1e-7, atol=0)
    torch.testing.assert_close(sd.sigmas[-5:], torch.tensor(ref["sigmas_last5"]), rtol=1e-7, atol=0)


def test_alphas_cumprod_match_diffusers_scaled_linear_betas(sd):
    reference = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    torch.testing.assert_close(sd.alphas_cumprod.float(), reference.alphas_cumprod, rtol=1e-6, atol=0)


def test_sigma_is_the_noise_to_signal_ratio_of_alphas_cumprod(sd):
    acp = sd.alphas_cumprod
    torch.testing.assert_close(sd.sigmas.double(), ((1 - acp) / acp).sqrt(), rtol=1e-6, atol=0)
    assert bool((sd.sigmas.diff() > 0).all())


def test_timestep_of_a_table_sigma_is_its_index(sd):
    indices = torch.tensor([0, 1, 250, 500, 998, 999])
    assert sd.sigma_to_timestep(sd.sigmas[indices]).tolist() == indices.float().tolist()
    torch.testing.assert_close(sd.sigma_to_timestep(sd.sigmas[indices], quantize=False), indices.float())


def test_quantized_timestep_is_nearest_in_log_sigma(sd):
    # Just below the geometric mean of two neighbours rounds down, just above rounds up.
    mid = math.sqrt(float(sd.sigmas[400]) * float(sd.sigmas[401]))
    assert float(sd.sigma_to_timestep(mid * 0.9999)) == 400
    assert float(sd.sigma_to_timestep(mid * 1.0001)) == 401


def test_unquantized_timestep_interpolates_log_sigma(sd):
    log_a, log_b = float(sd.log_sigmas[300]), float(sd.log_sigmas[301])
    sigma = math.exp(log_a + 0.25 * (log_b - log_a))
    assert float(sd.sigma_to_timestep(sigma, quantize=False)) == pytest.approx(300.25, abs=1e-3)


def test_timestep_to_sigma_round_trips_and_clamps(sd):
    t = torch.tensor([0.0, 12.5, 480.75, 999.0])
    torch.testing.assert_close(sd.sigma_to_timestep(sd.timestep_to_sigma(t), quantize=False), t, atol=1e-3, rtol=0)
    assert float(sd.timestep_to_sigma(-5.0)) == pytest.approx(sd.sigma_min)
    assert float(sd.timestep_to_sigma(2000.0)) == pytest.approx(sd.sigma_max)


def test_sigma_to_timestep_keeps_shape_and_device(sd):
    sigma = torch.full((2, 3), 1.0)
    assert sd.sigma_to_timestep(sigma).shape == (2, 3)


def test_percent_to_sigma_follows_comfyui(sd):
    assert sd.percent_to_sigma(0.0) > 1e8
    assert sd.percent_to_sigma(1.0) == 0.0
    assert sd.percent_to_sigma(0.5) == pytest.approx(float(sd.timestep_to_sigma(499.5)))
    assert sd.percent_to_sigma(0.25) > sd.percent_to_sigma(0.75)


def test_schedule_from_betas_and_bad_tables():
    betas = torch.linspace(1e-4, 0.02, 10, dtype=torch.float64)
    schedule = DiscreteSchedule.from_betas(betas)
    torch.testing.assert_close(schedule.alphas_cumprod, torch.cumprod(1 - betas, 0))
    with pytest.raises(ValueError, match="between 0 and 1"):
        DiscreteSchedule.from_alphas_cumprod(torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="1-D"):
        DiscreteSchedule.from_alphas_cumprod(torch.ones(2, 2) * 0.5)
