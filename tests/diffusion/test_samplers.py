"""Deterministic samplers against the exact probability-flow ODE of a Gaussian toy: convergence and order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sampling_toys import MU, STD, CountingDenoiser, exact_ode_solution, gaussian_denoiser, log_spaced_sigmas

from latentloom.diffusion.sampler_registry import SAMPLER_ALIASES, SAMPLER_NAMES, SAMPLERS, sampler_spec
from latentloom.diffusion.samplers import SamplerError, ancestral_step, lms_coefficient

# Observed global order with lower-order start/end steps: (sampler, options, order).
ORDERS = [
    ("euler", {}, 1.0),
    ("ddim", {}, 1.0),
    ("heun", {}, 2.0),
    ("dpm_2", {}, 2.0),
    ("dpmpp_2m", {}, 2.0),
    ("lms", {}, 2.0),
    ("uni_pc", {}, 2.0),
    ("uni_pc_bh2", {}, 2.0),
    ("dpmpp_2s_ancestral", {"eta": 0.0}, 2.0),
    ("dpmpp_sde", {"eta": 0.0}, 2.0),
    ("dpmpp_2m_sde", {"eta": 0.0}, 2.0),
    ("dpmpp_2m_sde_heun", {"eta": 0.0}, 2.0),
    ("dpmpp_3m_sde", {"eta": 0.0}, 2.0),
]


def _start(sigma_max: float) -> torch.Tensor:
    z = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return MU + math.sqrt(STD**2 + sigma_max**2) * z


def _ode_error(name: str, options: dict, steps: int) -> float:
    sigmas = log_spaced_sigmas(steps)
    x = _start(sigmas[0])
    out = SAMPLERS[name].function(gaussian_denoiser, x, torch.tensor(sigmas, dtype=torch.float64), **options)
    return float((out - exact_ode_solution(x, sigmas[0], sigmas[-1])).abs().max())


@pytest.mark.parametrize(("name", "options", "order"), ORDERS)
def test_deterministic_samplers_converge_with_their_order(name, options, order):
    coarse, fine = _ode_error(name, options, 32), _ode_error(name, options, 64)
    assert fine < 0.04
    assert math.log2(coarse / fine) == pytest.approx(order, abs=0.25) or math.log2(coarse / fine) > order


def test_higher_order_samplers_are_more_accurate_than_euler():
    euler = _ode_error("euler", {}, 16)
    for name in ("heun", "dpm_2", "lms", "dpmpp_2m", "uni_pc", "dpmpp_3m_sde"):
        options = {"eta": 0.0} if name == "dpmpp_3m_sde" else {}
        assert _ode_error(name, options, 16) < euler / 4, name


def test_multistep_higher_orders_beat_second_order():
    assert _ode_error("lms", {}, 64) < _ode_error("dpmpp_2m", {}, 64) / 3
    assert _ode_error("dpmpp_3m_sde", {"eta": 0.0}, 64) < _ode_error("dpmpp_2m", {}, 64) / 2


def test_a_single_step_to_zero_returns_the_denoised_estimate():
    x = _start(5.0)
    expected = gaussian_denoiser(x, torch.tensor([5.0]))
    for name in SAMPLER_NAMES:
        if name.startswith("uni_pc"):
            continue  # UniPC ends at σ = 0.001, checked below
        out = SAMPLERS[name].function(gaussian_denoiser, x, torch.tensor([5.0, 0.0]), noise=lambda s, t: 0 * x)
        torch.testing.assert_close(out, expected, msg=name)


def test_uni_pc_replaces_a_final_zero_sigma_by_one_thousandth():
    x = _start(5.0)
    out = SAMPLERS["uni_pc"].function(gaussian_denoiser, x, [5.0, 0.0])
    # One first-order data-prediction step (DDIM) to σ = 0.001.
    denoised = gaussian_denoiser(x, torch.tensor([5.0]))
    torch.testing.assert_close(out, denoised + (x - denoised) * (0.001 / 5.0))


def test_ddim_is_the_euler_step():
    sigmas = log_spaced_sigmas(10)
    x = _start(sigmas[0])
    torch.testing.assert_close(
        SAMPLERS["ddim"].function(gaussian_denoiser, x, sigmas),
        SAMPLERS["euler"].function(gaussian_denoiser, x, sigmas),
    )


def test_dpmpp_2m_sde_without_noise_is_dpmpp_2m():
    sigmas = [*log_spaced_sigmas(12), 0.0]
    x = _start(sigmas[0])
    reference = SAMPLERS["dpmpp_2m"].function(gaussian_denoiser, x, sigmas)
    out = SAMPLERS["dpmpp_2m_sde"].function(gaussian_denoiser, x, sigmas, eta=0.0)
    torch.testing.assert_close(out, reference, atol=1e-12, rtol=0)


def test_stochastic_samplers_with_zero_eta_are_deterministic_and_draw_no_noise():
    sigmas = [*log_spaced_sigmas(6), 0.0]
    x = _start(sigmas[0])
    for name in ("dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde", "euler_ancestral", "dpmpp_2s_ancestral"):
        out = SAMPLERS[name].function(gaussian_denoiser, x, sigmas, eta=0.0)  # noise=None is never asked for
        assert bool(torch.isfinite(out).all()), name
    euler = SAMPLERS["euler"].function(gaussian_denoiser, x, sigmas)
    torch.testing.assert_close(SAMPLERS["euler_ancestral"].function(gaussian_denoiser, x, sigmas, eta=0.0), euler)


def test_callback_sees_every_step_with_the_denoised_estimate():
    sigmas = [*log_spaced_sigmas(5), 0.0]
    x = _start(sigmas[0])
    for name in SAMPLER_NAMES:
        seen = []
        noise = (lambda s, t: torch.zeros_like(x)) if SAMPLERS[name].noise != "none" else None
        SAMPLERS[name].function(
            gaussian_denoiser, x, sigmas, noise=noise, callback=lambda i, xi, d, s, seen=seen: seen.append((i, xi, d, s))
        )
        assert [step for step, *_ in seen] == list(range(6)), name
        step, x_step, denoised, sigma = seen[0]
        assert sigma == pytest.approx(sigmas[0])
        torch.testing.assert_close(denoised, gaussian_denoiser(x_step, torch.tensor([sigma])), msg=name)


def test_model_evaluations_per_sampler():
    sigmas = [*log_spaced_sigmas(6), 0.0]  # 7 steps, the last one to zero
    x = _start(sigmas[0])
    expected = {"euler": 7, "heun": 13, "dpm_2": 13, "lms": 7, "dpmpp_2m": 7, "dpmpp_sde": 13, "uni_pc": 7}
    for name, calls in expected.items():
        counter = CountingDenoiser()
        options = {"eta": 0.0} if name == "dpmpp_sde" else {}
        SAMPLERS[name].function(counter, x, sigmas, **options)
        assert len(counter.calls) == calls, name


def test_denoiser_receives_sigma_per_batch_item_and_extra_args():
    counter = CountingDenoiser()
    x = torch.zeros(3, 1, 2, 2)
    SAMPLERS["euler"].function(counter, x, [2.0, 1.0, 0.0], extra_args={"context": "c"})
    assert counter.calls[0]["sigma"].tolist() == [2.0, 2.0, 2.0]
    assert counter.calls[1]["context"] == "c"


def test_stochastic_samplers_need_a_noise_sampler():
    x = _start(5.0)
    for name in ("euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m_sde", "ddpm"):
        with pytest.raises(SamplerError, match=name):
            SAMPLERS[name].function(gaussian_denoiser, x, [5.0, 2.0, 0.0])


def test_ancestral_step_splits_the_variance():
    down, up = ancestral_step(3.0, 1.0)
    assert down**2 + up**2 == pytest.approx(1.0)
    assert up == pytest.approx(math.sqrt(1.0 * (9.0 - 1.0) / 9.0))
    assert ancestral_step(3.0, 1.0, eta=0.0) == (1.0, 0.0)
    assert ancestral_step(3.0, 0.0) == (0.0, 0.0)


def test_lms_coefficients_integrate_the_lagrange_basis_exactly():
    sigmas = [10.0, 6.0, 3.5, 2.0, 1.1, 0.5]
    i, order = 4, 4
    nodes = [sigmas[i - k] for k in range(order)]
    for j in range(order):
        others = [n for k, n in enumerate(nodes) if k != j]
        basis = np.poly1d(np.poly(others)) / np.prod([nodes[j] - o for o in others])
        antiderivative = np.polyint(basis)
        expected = antiderivative(sigmas[i + 1]) - antiderivative(sigmas[i])
        assert lms_coefficient(order, sigmas, i, j) == pytest.approx(expected, rel=1e-12)
    total = sum(lms_coefficient(order, sigmas, i, j) for j in range(order))
    assert total == pytest.approx(sigmas[i + 1] - sigmas[i])
    with pytest.raises(SamplerError, match="too high"):
        lms_coefficient(4, sigmas, 1, 0)


def test_registry_names_follow_comfyui():
    assert SAMPLER_NAMES == (
        "euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral",
        "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_2m_sde_heun", "dpmpp_3m_sde", "ddpm", "lcm", "ddim",
        "uni_pc", "uni_pc_bh2",
    )  # fmt: skip
    assert {name for name, spec in SAMPLERS.items() if spec.discard_penultimate_sigma} == {
        "dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2",
    }  # fmt: skip
    assert {name for name, spec in SAMPLERS.items() if spec.noise == "brownian"} == {
        "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_2m_sde_heun", "dpmpp_3m_sde",
    }  # fmt: skip
    for alias, target in SAMPLER_ALIASES.items():
        assert sampler_spec(alias) is SAMPLERS[target]
    with pytest.raises(SamplerError, match="unknown sampler 'warp'"):
        sampler_spec("warp")
