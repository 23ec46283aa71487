"""Seeded noise: ComfyUI's initial noise, CPU-generator determinism, the ancestral and Brownian samplers."""

from __future__ import annotations

import math

import pytest
import torch
import torchsde

from latentloom.diffusion.noise import BrownianTreeNoiseSampler, GaussianNoiseSampler, initial_noise


def test_initial_noise_for_seed_42_matches_comfyui(sampling_reference):
    ref = sampling_reference["initial_noise"]
    noise = initial_noise(42, (1, 4, 8, 8))
    assert noise.dtype == torch.float32
    torch.testing.assert_close(noise.flatten(), torch.tensor(ref["seed42_1x4x8x8_full"]), rtol=0, atol=0)
    assert float(noise.mean()) == pytest.approx(ref["seed42_1x4x8x8"]["mean"], abs=1e-6)
    larger = initial_noise(42, (1, 4, 32, 32))
    torch.testing.assert_close(larger.flatten()[:8], torch.tensor(ref["seed42_1x4x32x32"]["first8"]), rtol=0, atol=0)
    assert float(larger.std()) == pytest.approx(ref["seed42_1x4x32x32"]["std"], abs=1e-6)


def test_initial_noise_leaves_the_global_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    initial_noise(1234, (2, 4, 8, 8))
    assert torch.equal(torch.rand(3), expected)


def test_initial_noise_is_deterministic_per_seed_and_cast_after_drawing():
    a = initial_noise(5, (1, 4, 6, 6))
    assert torch.equal(a, initial_noise(5, (1, 4, 6, 6)))
    assert not torch.equal(a, initial_noise(6, (1, 4, 6, 6)))
    half = initial_noise(5, (1, 4, 6, 6), dtype=torch.float16)
    assert half.dtype == torch.float16
    assert torch.equal(half, a.half())


def test_batch_indices_pick_per_index_draws():
    # Noise for index k is the k-th [1, ...] draw of the seeded generator (ComfyUI's prepare_noise).
    generator = torch.Generator().manual_seed(9)
    draws = [torch.randn(1, 4, 5, 5, generator=generator) for _ in range(3)]
    picked = initial_noise(9, (2, 4, 5, 5), batch_indices=[2, 0])
    assert torch.equal(picked[0], draws[2][0])
    assert torch.equal(picked[1], draws[0][0])
    assert torch.equal(initial_noise(9, (1, 4, 5, 5), batch_indices=[0]), initial_noise(9, (1, 4, 5, 5)))
    with pytest.raises(ValueError, match="do not fit"):
        initial_noise(9, (2, 4, 5, 5), batch_indices=[0])


def test_huge_seeds_wrap_like_comfyui_accepts_them():
    assert initial_noise(2**64 - 1, (4,)).shape == (4,)
    assert torch.equal(initial_noise(2**64 + 3, (4,)), initial_noise(3, (4,)))


def test_gaussian_sampler_continues_one_seeded_stream():
    like = torch.zeros(2, 3)
    sampler = GaussianNoiseSampler(43, like=like)
    generator = torch.Generator().manual_seed(43)
    for _ in range(3):
        assert torch.equal(sampler(1.0, 0.5), torch.randn(2, 3, generator=generator))


def test_gaussian_sampler_follows_the_latent_dtype():
    sampler = GaussianNoiseSampler(1, like=torch.zeros(4, dtype=torch.float64))
    assert sampler(1.0, 0.5).dtype == torch.float64


@pytest.fixture
def tree() -> BrownianTreeNoiseSampler:
    return BrownianTreeNoiseSampler(11, like=torch.zeros(20000), sigma_min=0.03, sigma_max=14.6)


def test_brownian_noise_is_standard_normal_for_any_interval(tree):
    for sigma, sigma_next in ((14.6, 10.0), (1.0, 0.9), (0.05, 0.03)):
        noise = tree(sigma, sigma_next)
        assert float(noise.mean()) == pytest.approx(0.0, abs=0.03)
        assert float(noise.std()) == pytest.approx(1.0, abs=0.03)


def test_brownian_increments_of_disjoint_intervals_are_independent(tree):
    first, second = tree(10.0, 5.0), tree(5.0, 2.0)
    assert abs(float((first * second).mean())) < 0.03


def test_brownian_noise_is_consistent_across_subdivisions(tree):
    # W(a) - W(c) = (W(a) - W(b)) + (W(b) - W(c)): the same path whatever intervals are asked for.
    a, b, c = 8.0, 3.3, 0.7
    whole = tree(a, c) * math.sqrt(a - c)
    parts = tree(a, b) * math.sqrt(a - b) + tree(b, c) * math.sqrt(b - c)
    torch.testing.assert_close(whole, parts, rtol=0, atol=1e-4)


def test_brownian_path_does_not_depend_on_query_order():
    like = torch.zeros(64)
    first = BrownianTreeNoiseSampler(3, like=like, sigma_min=0.1, sigma_max=10.0)
    second = BrownianTreeNoiseSampler(3, like=like, sigma_min=0.1, sigma_max=10.0)
    early = first(9.0, 4.0)
    second(2.0, 1.0)
    assert torch.equal(second(9.0, 4.0), early)
    assert torch.equal(first.path(0.1), torch.zeros(64))


def test_brownian_noise_depends_on_the_seed_only():
    like = torch.zeros(256)
    one = BrownianTreeNoiseSampler(1, like=like, sigma_min=0.1, sigma_max=10.0)(5.0, 2.0)
    again = BrownianTreeNoiseSampler(1, like=like, sigma_min=0.1, sigma_max=10.0)(5.0, 2.0)
    other = BrownianTreeNoiseSampler(2, like=like, sigma_min=0.1, sigma_max=10.0)(5.0, 2.0)
    assert torch.equal(one, again)
    assert not torch.allclose(one, other)


def test_brownian_variance_grows_with_interval_length(tree):
    w_long = tree.path(12.0) - tree.path(2.0)
    w_short = tree.path(2.5) - tree.path(2.0)
    assert float(w_long.var()) == pytest.approx(10.0, rel=0.05)
    assert float(w_short.var()) == pytest.approx(0.5, rel=0.05)


def test_brownian_rejects_an_empty_interval():
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        BrownianTreeNoiseSampler(0, like=torch.zeros(1), sigma_min=1.0, sigma_max=1.0)


def test_brownian_noise_is_k_diffusions_tree_for_the_same_seed():
    # k-diffusion's BrownianTreeNoiseSampler as ComfyUI's SDE samplers build it (cpu=True, the KSampler seed):
    # torchsde's BrownianTree from σ_min to σ_max (float32 tensors), noise = ±(W(b) - W(a)) / sqrt(|b - a|).
    x = torch.zeros(1, 4, 8, 8)
    sigma_min, sigma_max = torch.tensor(0.0292), torch.tensor(14.6146)
    reference = torchsde.BrownianTree(sigma_min, torch.zeros_like(x), sigma_max, entropy=42)
    ours = BrownianTreeNoiseSampler(42, like=x, sigma_min=0.0292, sigma_max=14.6146)
    for sigma, sigma_next in ((12.0, 7.0), (7.0, 1.5), (1.5, 0.5), (0.5, 0.03)):
        a, b = torch.tensor(sigma), torch.tensor(sigma_next)
        expected = -reference(b, a) / (a - b).abs().sqrt()  # σ falls: the sign flips the sorted increment
        torch.testing.assert_close(ours(sigma, sigma_next), expected, rtol=1e-5, atol=1e-6)
