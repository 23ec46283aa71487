"""Ancestral and SDE samplers: seeded reproducibility, and the distribution they sample on a Gaussian toy."""

from __future__ import annotations

import math

import pytest
import torch
from sampling_toys import MU, STD, gaussian_denoiser

from latentloom.diffusion.noise import BrownianTreeNoiseSampler, GaussianNoiseSampler
from latentloom.diffusion.sampler_registry import SAMPLERS
from latentloom.diffusion.sampling import make_noise_sampler, run_sampler
from latentloom.diffusion.schedulers import karras

STOCHASTIC = [name for name, spec in SAMPLERS.items() if spec.noise != "none"]
# LCM is left out of the statistics: with a plain (not consistency-distilled) denoiser it is not exact.
MARGINAL_PRESERVING = [name for name in STOCHASTIC if name != "lcm"]


def _run(name: str, seed: int, latent: torch.Tensor) -> torch.Tensor:
    sigmas = karras(8, 0.03, 14.6)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(seed))
    return run_sampler(gaussian_denoiser, latent, sigmas, sampler=name, seed=seed, noise=noise, sigma_max=14.6)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_same_seed_same_result_other_seed_other_result(name):
    latent = torch.zeros(1, 4, 8, 8)
    first, again, other = _run(name, 10, latent), _run(name, 10, latent), _run(name, 11, latent)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_ancestral_noise_is_not_the_initial_noise(name):
    # Same initial noise, different sampler seed: the sampler's own draws must change the result.
    latent = torch.zeros(1, 4, 8, 8)
    sigmas = karras(6, 0.03, 14.6)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    a = run_sampler(gaussian_denoiser, latent, sigmas, sampler=name, seed=1, noise=noise, sigma_max=14.6)
    b = run_sampler(gaussian_denoiser, latent, sigmas, sampler=name, seed=2, noise=noise, sigma_max=14.6)
    assert not torch.allclose(a, b)


def test_ancestral_samplers_draw_from_a_generator_seeded_with_seed_plus_one():
    # ComfyUI on the CPU: default_noise_sampler seeds a fresh generator with seed + 1.
    x = torch.zeros(1, 4, 8, 8)
    sampler = make_noise_sampler("gaussian", 42, like=x, sigmas=torch.tensor([1.0, 0.0]))
    assert torch.equal(sampler(1.0, 0.5), torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(43)))


def test_sde_samplers_get_a_brownian_tree_over_the_runs_sigma_range():
    x = torch.zeros(1, 2, 4, 4)
    sigmas = torch.tensor([9.0, 3.0, 0.5, 0.0])
    sampler = make_noise_sampler("brownian", 5, like=x, sigmas=sigmas)
    reference = BrownianTreeNoiseSampler(5, like=x, sigma_min=0.5, sigma_max=9.0)
    assert torch.equal(sampler(9.0, 3.0), reference(9.0, 3.0))
    assert make_noise_sampler("none", 5, like=x, sigmas=sigmas) is None
    # One σ above zero still gives a usable interval.
    assert make_noise_sampler("brownian", 5, like=x, sigmas=torch.tensor([2.0, 0.0]))(2.0, 1.0).shape == x.shape


@pytest.mark.parametrize("name", MARGINAL_PRESERVING)
def test_stochastic_samplers_sample_the_data_distribution(name):
    # Start from the exact noisy marginal N(μ, s² + σ_max²); the result should be N(μ, s²).
    shape = (1, 1, 100, 200)
    start = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = MU + math.sqrt(STD**2 + 14.6**2) * start
    like = torch.zeros(shape, dtype=torch.float64)
    spec = SAMPLERS[name]
    if spec.noise == "gaussian":
        noise = GaussianNoiseSampler(5, like=like)
    else:
        noise = BrownianTreeNoiseSampler(5, like=like, sigma_min=0.03, sigma_max=14.6)
    out = spec.function(gaussian_denoiser, x, karras(60, 0.03, 14.6).double(), noise=noise)
    assert float(out.mean()) == pytest.approx(MU, abs=0.01)
    assert float(out.std()) == pytest.approx(STD, abs=0.03)
