"""Schedulers: ComfyUI 0.8.0's σ lists for SD1.5, the formulas of the pure ones, the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentloom.diffusion import schedulers
from latentloom.diffusion.schedulers import SCHEDULER_NAMES, SCHEDULERS, beta_ppf, scheduler_sigmas
from latentloom.diffusion.schedules import DiscreteSchedule

REFERENCE_CASES = [
    (name, steps)
    for name in ("normal", "karras", "simple", "exponential", "sgm_uniform", "ddim_uniform", "beta")
    for steps in (4, 20)
]


@pytest.fixture(scope="module")
def sd() -> DiscreteSchedule:
    return DiscreteSchedule.scaled_linear()


@pytest.mark.parametrize(("name", "steps"), REFERENCE_CASES)
def test_sigmas_match_comfyui(sd, sampling_reference, name, steps):
    expected = torch.tensor(sampling_reference["sigmas"][f"{name}/{steps}"])
    got = scheduler_sigmas(name, sd, steps)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


def test_names_follow_comfyui_order():
    assert SCHEDULER_NAMES == (
        "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
        "linear_quadratic", "kl_optimal",
    )  # fmt: skip
    assert set(SCHEDULERS) == set(SCHEDULER_NAMES)


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
@pytest.mark.parametrize("steps", [1, 2, 7, 33])
def test_every_scheduler_descends_from_sigma_max_to_zero(sd, name, steps):
    sigmas = scheduler_sigmas(name, sd, steps)
    assert float(sigmas[-1]) == 0.0
    assert bool((sigmas[:-1].diff() < 0).all())
    assert float(sigmas[0]) <= sd.sigma_max * (1 + 1e-6)
    assert len(sigmas) - 1 == steps or name in ("ddim_uniform", "beta")


def test_karras_formula():
    sigmas = schedulers.karras(5, 0.1, 10.0, rho=7.0)
    ramp = np.linspace(0, 1, 5)
    expected = (10.0 ** (1 / 7) + ramp * (0.1 ** (1 / 7) - 10.0 ** (1 / 7))) ** 7
    np.testing.assert_allclose(sigmas[:-1].numpy(), expected, rtol=1e-5)


def test_exponential_is_log_uniform():
    sigmas = schedulers.exponential(6, 0.05, 12.0)
    ratios = (sigmas[1:-1] / sigmas[:-2]).numpy()
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-5)
    assert float(sigmas[0]) == pytest.approx(12.0, rel=1e-6)
    assert float(sigmas[-2]) == pytest.approx(0.05, rel=1e-6)


def test_kl_optimal_is_uniform_in_arctan():
    sigmas = schedulers.kl_optimal(5, 0.03, 14.6)
    angles = np.arctan(sigmas[:-1].numpy().astype(np.float64))
    np.testing.assert_allclose(np.diff(angles), (math.atan(0.03) - math.atan(14.6)) / 4, rtol=1e-5)


def test_linear_quadratic_ends_and_threshold():
    sigmas = schedulers.linear_quadratic(10, 0.03, 14.6)
    assert len(sigmas) == 11
    assert float(sigmas[0]) == pytest.approx(14.6, rel=1e-6)
    assert float(sigmas[-1]) == 0.0
    # The linear half ends at 1 - threshold_noise of σ_max; the quadratic half continues from there.
    np.testing.assert_allclose(sigmas[:5].numpy() / 14.6, 1 - np.arange(5) * 0.025 / 5, rtol=1e-5)
    assert float(sigmas[5]) / 14.6 == pytest.approx(1 - 0.025, rel=1e-5)


def test_ddim_uniform_takes_every_kth_table_entry(sd):
    sigmas = scheduler_sigmas("ddim_uniform", sd, 10)
    torch.testing.assert_close(sigmas[:-1], sd.sigmas[list(range(1, 1000, 100))[::-1]])
    # 1000 // 7 = 142 leaves a remainder, so ComfyUI walks 8 steps for 7.
    assert len(scheduler_sigmas("ddim_uniform", sd, 7)) - 1 == 8


@pytest.mark.parametrize(
    ("a", "b", "ppf"),
    [
        (1.0, 1.0, lambda q: q),
        (2.0, 1.0, lambda q: math.sqrt(q)),
        (1.0, 2.0, lambda q: 1 - math.sqrt(1 - q)),
        (0.5, 0.5, lambda q: math.sin(math.pi * q / 2) ** 2),
    ],
)
def test_beta_ppf_matches_closed_forms(a, b, ppf):
    for q in (0.01, 0.2, 0.5, 0.77, 0.999):
        assert beta_ppf(q, a, b) == pytest.approx(ppf(q), abs=1e-12)


def test_beta_ppf_inverts_the_numerically_integrated_cdf():
    # Independent check for the scheduler's Beta(0.6, 0.6): integrate the density with the substitution
    # x = sin²(θ), which removes the endpoint singularities.
    a = b = 0.6
    theta = np.linspace(0, math.pi / 2, 200001)
    density = 2 * np.sin(theta) ** (2 * a - 1) * np.cos(theta) ** (2 * b - 1) / math.exp(
        math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    )
    cdf = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(theta))])
    for q in (0.05, 0.3, 0.65, 0.9):
        x = beta_ppf(q, a, b)
        assert np.interp(math.asin(math.sqrt(x)), theta, cdf) == pytest.approx(q, abs=1e-4)


def test_unknown_scheduler_names_the_choices(sd):
    with pytest.raises(ValueError, match="unknown scheduler 'fast'.*karras"):
        scheduler_sigmas("fast", sd, 10)
    with pytest.raises(ValueError, match="at least 1 step"):
        scheduler_sigmas("karras", sd, 0)
