"""Step-for-step agreement with diffusers' schedulers where they implement the same algorithm.

Both sides drive the same toy ε-model, which depends on the scaled input only (so the timestep conventions of
the two libraries cannot matter), over the same σ / timestep lists, with the same noise draws. diffusers keeps
the k-diffusion schedulers (Euler, Heun, KDPM2) in the variance-exploding form and the others in the
variance-preserving one, x_vp = x / sqrt(1 + σ²).
"""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    DPMSolverSDEScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LCMScheduler,
    LMSDiscreteScheduler,
    UniPCMultistepScheduler,
)

from latentloom.diffusion.denoiser import EpsDenoiser
from latentloom.diffusion.sampler_registry import SAMPLERS
from latentloom.diffusion.sampling import make_noise_sampler
from latentloom.diffusion.schedules import DiscreteSchedule

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SD_CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
SHAPE = (1, 4, 6, 6)


def toy_eps(x_in: torch.Tensor, timestep: object = None, **extra: object) -> torch.Tensor:
    return 0.4 * torch.tanh(1.3 * x_in) + 0.15 * x_in - 0.05


@pytest.fixture(scope="module")
def denoiser() -> EpsDenoiser:
    return EpsDenoiser(toy_eps, DiscreteSchedule.scaled_linear())


def _start() -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))


def _run_diffusers(scheduler, sample, *, generator=None):
    trajectory = []
    for t in scheduler.timesteps:
        trajectory.append(sample)
        eps = toy_eps(scheduler.scale_model_input(sample, t))
        extra = {"generator": generator} if generator is not None else {}
        sample = scheduler.step(eps, t, sample, **extra).prev_sample
    return sample, trajectory


def _seeded_noise(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return lambda sigma, sigma_next: torch.randn(SHAPE, generator=generator)


def _table_sigmas(scheduler) -> list[float]:
    """σ of diffusers' timesteps from the ᾱ table, then 0 (DDIM/DDPM/LCM step to ᾱ = 1 at the end)."""
    acp = scheduler.alphas_cumprod.double()
    return [float(((1 - acp[int(t)]) / acp[int(t)]).sqrt()) for t in scheduler.timesteps] + [0.0]


@pytest.mark.parametrize(
    ("name", "scheduler_class", "steps"),
    [
        ("euler", EulerDiscreteScheduler, 12),
        ("heun", HeunDiscreteScheduler, 8),
        ("dpm_2", KDPM2DiscreteScheduler, 8),
    ],
)
def test_karras_family_matches_diffusers(denoiser, name, scheduler_class, steps):
    scheduler = scheduler_class(**SD_CONFIG)
    scheduler.set_timesteps(steps)
    sigmas = scheduler.sigmas.tolist()
    # diffusers stores each inner σ twice for its two stages (KDPM2 pads the end with extra zeros).
    if name == "heun":
        sigmas = [sigmas[0], *sigmas[1:-1:2], sigmas[-1]]
    elif name == "dpm_2":
        sigmas = sigmas[::2]
    x = _start() * scheduler.init_noise_sigma
    expected, _ = _run_diffusers(scheduler, x)
    ours = SAMPLERS[name].function(denoiser, x, sigmas)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_euler_ancestral_matches_diffusers_with_the_same_noise(denoiser):
    scheduler = EulerAncestralDiscreteScheduler(**SD_CONFIG)
    scheduler.set_timesteps(10)
    x = _start() * scheduler.init_noise_sigma
    expected, _ = _run_diffusers(scheduler, x, generator=torch.Generator().manual_seed(21))
    ours = SAMPLERS["euler_ancestral"].function(denoiser, x, scheduler.sigmas, noise=_seeded_noise(21))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("steps", [6, 15])
def test_lms_matches_diffusers_lms(denoiser, steps):
    # Both integrate the Lagrange basis of the last four derivatives over each step (k-diffusion's LMS).
    scheduler = LMSDiscreteScheduler(**SD_CONFIG)
    scheduler.set_timesteps(steps)
    x = _start() * scheduler.init_noise_sigma
    expected, _ = _run_diffusers(scheduler, x)
    ours = SAMPLERS["lms"].function(denoiser, x, scheduler.sigmas.tolist())
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_dpm_2_ancestral_matches_diffusers_kdpm2_ancestral_with_the_same_noise(denoiser):
    scheduler = KDPM2AncestralDiscreteScheduler(**SD_CONFIG)
    scheduler.set_timesteps(8)
    sigmas = scheduler.sigmas.tolist()[::2]  # diffusers stores each step's σ with its midpoint's
    x = _start() * scheduler.init_noise_sigma
    expected, _ = _run_diffusers(scheduler, x, generator=torch.Generator().manual_seed(5))
    ours = SAMPLERS["dpm_2_ancestral"].function(denoiser, x, sigmas, noise=_seeded_noise(5))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_dpmpp_2m_matches_dpm_solver_multistep(denoiser):
    # 20 steps: below 15 diffusers also drops to first order on the next-to-last step.
    scheduler = DPMSolverMultistepScheduler(**SD_CONFIG, algorithm_type="dpmsolver++", solver_order=2)
    scheduler.set_timesteps(20)
    x_vp = _start()
    expected, trajectory = _run_diffusers(scheduler, x_vp)
    sigmas = scheduler.sigmas.tolist()
    seen = []
    ours = SAMPLERS["dpmpp_2m"].function(
        denoiser, x_vp * math.sqrt(1 + sigmas[0] ** 2), sigmas, callback=lambda i, x, d, s: seen.append(x)
    )
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    for x_ve, x_diffusers, sigma in zip(seen, trajectory, sigmas, strict=False):
        torch.testing.assert_close(x_ve / math.sqrt(1 + sigma**2), x_diffusers, rtol=1e-4, atol=1e-4)


def test_dpmpp_2m_sde_matches_sde_dpm_solver_multistep(denoiser):
    scheduler = DPMSolverMultistepScheduler(**SD_CONFIG, algorithm_type="sde-dpmsolver++", solver_order=2)
    scheduler.set_timesteps(20)
    x_vp = _start()
    expected, _ = _run_diffusers(scheduler, x_vp, generator=torch.Generator().manual_seed(8))
    sigmas = scheduler.sigmas.tolist()
    x = x_vp * math.sqrt(1 + sigmas[0] ** 2)
    ours = SAMPLERS["dpmpp_2m_sde"].function(denoiser, x, sigmas, noise=_seeded_noise(8))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:Should have ta>=t0:UserWarning")  # diffusers' own query, clamped by torchsde
@pytest.mark.parametrize("seed", [1234, 2**64 - 1])
def test_dpmpp_sde_matches_diffusers_dpm_solver_sde_for_the_same_seed(denoiser, seed):
    # diffusers seeds torchsde's Brownian tree with noise_sampler_seed as k-diffusion (and so ComfyUI) does:
    # the same seed gives the same image, Brownian noise included.
    scheduler = DPMSolverSDEScheduler(**SD_CONFIG, use_karras_sigmas=True, noise_sampler_seed=seed)
    scheduler.set_timesteps(8)
    sigmas = scheduler.sigmas.tolist()
    sigmas = [sigmas[0], *sigmas[1:-1:2], sigmas[-1]]  # diffusers stores each inner σ twice, for its two stages
    x = _start() * scheduler.init_noise_sigma
    expected, _ = _run_diffusers(scheduler, x)
    noise = make_noise_sampler("brownian", seed, like=x, sigmas=torch.tensor(sigmas))
    ours = SAMPLERS["dpmpp_sde"].function(denoiser, x, sigmas, noise=noise)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    other = SAMPLERS["dpmpp_sde"].function(
        denoiser, x, sigmas, noise=make_noise_sampler("brownian", seed - 1, like=x, sigmas=torch.tensor(sigmas))
    )
    assert not torch.allclose(other, expected, rtol=1e-4, atol=1e-4)  # the noise matters at this tolerance


def test_ddim_matches_diffusers_ddim(denoiser):
    scheduler = DDIMScheduler(**SD_CONFIG, clip_sample=False, set_alpha_to_one=True, steps_offset=1)
    scheduler.set_timesteps(10)
    x_vp = _start()
    expected, _ = _run_diffusers(scheduler, x_vp)
    sigmas = _table_sigmas(scheduler)
    ours = SAMPLERS["ddim"].function(denoiser, x_vp * math.sqrt(1 + sigmas[0] ** 2), sigmas)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_ddpm_matches_diffusers_ddpm_with_the_same_noise(denoiser):
    scheduler = DDPMScheduler(**SD_CONFIG, clip_sample=False, variance_type="fixed_small")
    scheduler.set_timesteps(10)
    x_vp = _start()
    expected, _ = _run_diffusers(scheduler, x_vp, generator=torch.Generator().manual_seed(4))
    sigmas = _table_sigmas(scheduler)
    x = x_vp * math.sqrt(1 + sigmas[0] ** 2)
    ours = SAMPLERS["ddpm"].function(denoiser, x, sigmas, noise=_seeded_noise(4))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_lcm_matches_diffusers_lcm_with_the_same_noise(denoiser):
    # At LCM's timesteps (≥ 259 here) its boundary condition c_skip ≈ 4e-8, so D is the plain estimate.
    scheduler = LCMScheduler(**SD_CONFIG)
    scheduler.set_timesteps(4)
    x_vp = _start()
    expected, _ = _run_diffusers(scheduler, x_vp, generator=torch.Generator().manual_seed(6))
    sigmas = _table_sigmas(scheduler)
    x = x_vp * math.sqrt(1 + sigmas[0] ** 2)
    ours = SAMPLERS["lcm"].function(denoiser, x, sigmas, noise=_seeded_noise(6))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("name", "variant"), [("uni_pc", "bh1"), ("uni_pc_bh2", "bh2")])
@pytest.mark.parametrize("steps", [5, 12])
def test_uni_pc_matches_diffusers_unipc(denoiser, name, variant, steps):
    scheduler = UniPCMultistepScheduler(
        **SD_CONFIG, solver_order=3, solver_type=variant, final_sigmas_type="sigma_min", timestep_spacing="trailing"
    )
    scheduler.set_timesteps(steps)
    x_vp = _start()
    expected, _ = _run_diffusers(scheduler, x_vp)
    sigmas = scheduler.sigmas.tolist()  # ends at σ_min, so neither side meets σ = 0
    ours = SAMPLERS[name].function(denoiser, x_vp * math.sqrt(1 + sigmas[0] ** 2), sigmas, order=3)
    torch.testing.assert_close(ours / math.sqrt(1 + sigmas[-1] ** 2), expected, rtol=1e-4, atol=1e-4)
