"""The reductions against independent numpy computations of the same formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentloom.diffusion.inspect.reduce import (
    PCA_PERCENTILE,
    channel_mean_magnitude,
    max_entropy,
    pca_rgb,
    reduce_attention,
    statistics,
)
from latentloom.diffusion.inspect.report import spatial_concentration


def seeded(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_statistics_per_batch_row_match_numpy() -> None:
    tensor = seeded(3, 5, 4, 6, seed=0) * 2 + 0.5
    stats = statistics(tensor)
    rows = tensor.numpy().reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(stats.mean, rows.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.std, rows.std(1), rtol=1e-5)
    np.testing.assert_allclose(stats.norm, np.linalg.norm(rows, axis=1), rtol=1e-5)
    np.testing.assert_allclose(stats.abs_max, np.abs(rows).max(1), rtol=1e-6)
    assert stats.row(1) == {"mean": stats.mean[1], "std": stats.std[1], "norm": stats.norm[1], "abs_max": stats.abs_max[1]}


def test_channel_mean_magnitude_is_the_mean_absolute_value_over_channels() -> None:
    features = seeded(2, 7, 3, 5, seed=1).half()
    expected = np.abs(features.float().numpy()).mean(axis=1)
    result = channel_mean_magnitude(features)
    assert result.dtype == torch.float32 and result.shape == (2, 3, 5)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-6)


def numpy_pca_rgb(features: np.ndarray) -> np.ndarray:
    """The same definition from numpy's SVD on every pixel: top three components, largest loading positive,
    each stretched between its 1st and 99th percentile (numpy's default linear interpolation)."""
    channels, height, width = features.shape
    pixels = features.reshape(channels, -1).T.astype(np.float64)
    centered = pixels - pixels.mean(0)
    _, _, vh = np.linalg.svd(centered, full_matrices=False)
    basis = vh[:3] * np.sign(vh[:3][np.arange(3), np.abs(vh[:3]).argmax(1)])[:, None]
    projected = centered @ basis.T
    low = np.quantile(projected, PCA_PERCENTILE, axis=0)
    high = np.quantile(projected, 1 - PCA_PERCENTILE, axis=0)
    return np.clip((projected - low) / (high - low), 0, 1).reshape(height, width, 3)


def test_pca_rgb_matches_a_numpy_svd_of_all_pixels() -> None:
    """Three spatial patterns along three channel directions plus a little noise."""
    height, width, channels = 12, 16, 10
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    patterns = torch.stack([4 * xs, 2 * ys, xs * ys])  # (3, h, w), variances about 5.9 : 1.5 : 0.13
    directions = torch.linalg.qr(seeded(channels, 3, seed=2))[0].T  # (3, channels), orthonormal
    features = torch.einsum("khw,kc->chw", patterns, directions) + 0.01 * seeded(channels, height, width, seed=3)
    result = pca_rgb(features[None], samples=height * width)[0]
    np.testing.assert_allclose(result.numpy(), numpy_pca_rgb(features.numpy()), atol=1e-4)
    for k in range(3):  # each colour channel follows one of the patterns
        correlation = np.corrcoef(result[..., k].flatten(), patterns[k].flatten())[0, 1]
        assert abs(correlation) > 0.95


def test_pca_rgb_on_a_subsample_is_reproducible_and_in_range() -> None:
    features = seeded(1, 16, 40, 40, seed=4)
    first, second = pca_rgb(features, samples=256, seed=7), pca_rgb(features, samples=256, seed=7)
    assert torch.equal(first, second)
    assert first.shape == (1, 40, 40, 3) and float(first.min()) >= 0 and float(first.max()) <= 1


def numpy_attention(q: np.ndarray, k: np.ndarray, heads: int) -> np.ndarray:
    batch, queries, inner = q.shape
    d = inner // heads
    qh = q.reshape(batch, queries, heads, d).transpose(0, 2, 1, 3).astype(np.float64)
    kh = k.reshape(batch, k.shape[1], heads, d).transpose(0, 2, 1, 3).astype(np.float64)
    scores = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(d)
    scores -= scores.max(-1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(-1, keepdims=True)  # (batch, heads, queries, tokens)


@pytest.mark.parametrize("chunk", [7, 4096])
def test_reduce_attention_matches_numpy_softmax(chunk: int) -> None:
    q, k = seeded(2, 30, 16, seed=5) * 2, seeded(2, 9, 16, seed=6) * 2
    reduced = reduce_attention(q, k, heads=4, tokens=(0, 3, 8, 40), keep_probabilities=True, chunk=chunk)
    reference = numpy_attention(q.numpy(), k.numpy(), heads=4)
    np.testing.assert_allclose(reduced.probabilities.numpy(), reference, atol=1e-6)
    assert reduced.kept_tokens == (0, 3, 8)  # position 40 is past the 9 tokens
    head_mean = reference.mean(1)  # (batch, queries, tokens)
    np.testing.assert_allclose(reduced.token_maps.numpy(), head_mean[:, :, [0, 3, 8]].transpose(0, 2, 1), atol=1e-6)
    entropy = -(reference * np.log(reference)).sum(-1).mean(-1)  # (batch, heads)
    np.testing.assert_allclose(reduced.entropy.numpy(), entropy, rtol=1e-5)
    np.testing.assert_allclose(reduced.token_mass.numpy(), head_mean.mean(1), atol=1e-6)
    assert float(reduced.entropy.max()) <= max_entropy(9) + 1e-6


def test_reduce_attention_keeps_no_probabilities_unless_asked() -> None:
    reduced = reduce_attention(seeded(1, 6, 8, seed=7), seeded(1, 4, 8, seed=8), heads=2)
    assert reduced.probabilities is None
    assert reduced.token_maps.shape == (1, 4, 6)


def test_spatial_concentration_runs_from_even_to_one_spot() -> None:
    assert spatial_concentration(torch.ones(8, 8)) == pytest.approx(0.0, abs=1e-6)
    spot = torch.zeros(8, 8)
    spot[3, 4] = 5.0
    assert spatial_concentration(spot) == pytest.approx(1.0)
    half = torch.zeros(8, 8)
    half[:4] = 1.0
    assert spatial_concentration(half) == pytest.approx(1.0 - math.log(32) / math.log(64))
