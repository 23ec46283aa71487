"""Reductions applied to UNet tensors as they are captured, so nothing of full size outlives its forward pass.

Every function takes a batch-first tensor in any dtype on any device, computes in float32 and returns small
results: statistics as Python floats per batch row, maps on the CPU. None of them touches a global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from latentloom.diffusion.attention import attention_probabilities

# Rows of the attention matrix computed at once: bounds the float32 probabilities held at one time to
# batch·heads·QUERY_CHUNK·tokens values, whatever the latent size.
QUERY_CHUNK = 4096
PCA_SAMPLES = 4096  # pixels that fit the PCA basis; every pixel is then projected onto it
PCA_PERCENTILE = 0.01  # each PCA channel is stretched between its 1st and 99th percentile


@dataclass(frozen=True)
class Statistics:
    """Per batch row: mean, standard deviation, L2 norm and largest magnitude of a tensor's values."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    norm: tuple[float, ...]
    abs_max: tuple[float, ...]

    def row(self, index: int) -> dict[str, float]:
        return {
            "mean": self.mean[index],
            "std": self.std[index],
            "norm": self.norm[index],
            "abs_max": self.abs_max[index],
        }


def statistics(tensor: Tensor) -> Statistics:
    """Statistics of each batch row of ``tensor`` (batch, ...); std is the population std (divide by n)."""
    rows = tensor.detach().float().flatten(1)  # (batch, everything else)
    table = torch.stack(
        [
            rows.mean(1),
            rows.std(1, correction=0),
            rows.norm(dim=1),
            rows.abs().amax(1),
        ],
        dim=1,
    ).cpu()  # (batch, 4): one transfer for all four
    mean, std, norm, abs_max = (tuple(float(v) for v in column) for column in table.T)
    return Statistics(mean=mean, std=std, norm=norm, abs_max=abs_max)


def channel_mean_magnitude(features: Tensor) -> Tensor:
    """(batch, channels, h, w) -> (batch, h, w): mean |value| over channels, float32 on the CPU."""
    return features.detach().float().abs().mean(1).cpu()


def pca_rgb(features: Tensor, *, samples: int = PCA_SAMPLES, seed: int = 0) -> Tensor:
    """(batch, channels, h, w) -> (batch, h, w, 3) in [0, 1]: each pixel's channel vector projected onto
    the row's first three principal components, each stretched between its 1st and 99th percentile.

    The basis comes from an SVD of at most ``samples`` pixels drawn with a generator seeded by ``seed``;
    each component's sign is fixed so its largest loading is positive, so the colours are reproducible.
    """
    images = [_pca_rgb_row(row, samples=samples, seed=seed) for row in features.detach()]
    return torch.stack(images).cpu()


def _pca_rgb_row(features: Tensor, *, samples: int, seed: int) -> Tensor:
    channels, height, width = features.shape
    pixels = features.float().flatten(1).T  # (h*w, channels)
    fit = pixels
    if pixels.shape[0] > samples:
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(pixels.shape[0], generator=generator)[:samples]
        fit = pixels[chosen.to(pixels.device)]
    center = fit.mean(0)
    _, _, vh = torch.linalg.svd(fit - center, full_matrices=False)
    basis = vh[:3]  # (≤3, channels): the leading principal directions
    signs = torch.sign(basis.gather(1, basis.abs().argmax(1, keepdim=True)))
    basis = basis * torch.where(signs == 0, torch.ones_like(signs), signs)
    projected = (pixels - center) @ basis.T  # (h*w, ≤3)
    if projected.shape[1] < 3:
        projected = torch.cat([projected, projected.new_zeros(projected.shape[0], 3 - projected.shape[1])], 1)
    low = torch.quantile(projected, PCA_PERCENTILE, dim=0)
    high = torch.quantile(projected, 1.0 - PCA_PERCENTILE, dim=0)
    span = torch.where(high - low > 1e-12, high - low, torch.ones_like(high))
    rgb = ((projected - low) / span).clamp(0.0, 1.0)
    return rgb.reshape(height, width, 3)


@dataclass(frozen=True)
class AttentionReduction:
    """What one cross-attention call leaves behind (CPU, float32)."""

    kept_tokens: tuple[int, ...]  # the token positions of ``token_maps``' second axis
    token_maps: Tensor  # (batch, kept tokens, queries): probability averaged over heads
    entropy: Tensor  # (batch, heads): mean over queries of the entropy over tokens, in nats
    token_mass: Tensor  # (batch, tokens): probability averaged over heads and queries
    probabilities: Tensor | None  # (batch, heads, queries, tokens), only when asked for


def reduce_attention(
    q: Tensor,
    k: Tensor,
    heads: int,
    *,
    tokens: Sequence[int] | None = None,
    keep_probabilities: bool = False,
    chunk: int = QUERY_CHUNK,
) -> AttentionReduction:
    """softmax(q kᵀ/√d) per head, reduced ``chunk`` query rows at a time.

    q: (batch, queries, heads·dim_head); k: (batch, tokens, heads·dim_head). ``tokens`` picks the token
    positions whose maps are kept (None: all); positions past the context's length are left out.
    """
    batch, queries, _ = q.shape
    key_tokens = k.shape[1]
    kept = list(range(key_tokens)) if tokens is None else [t for t in tokens if 0 <= t < key_tokens]
    kept_index = torch.tensor(kept, dtype=torch.long, device=q.device)
    maps: list[Tensor] = []
    full: list[Tensor] = []
    entropy_sum = q.new_zeros(batch, heads, dtype=torch.float32)
    mass_sum = q.new_zeros(batch, key_tokens, dtype=torch.float32)
    for start in range(0, queries, chunk):
        probs = attention_probabilities(q[:, start : start + chunk], k, heads)  # (batch, heads, rows, tokens)
        mean_heads = probs.mean(1)  # (batch, rows, tokens)
        maps.append(mean_heads.index_select(2, kept_index).transpose(1, 2).cpu())
        entropy_sum += -(probs * probs.clamp_min(1e-30).log()).sum(-1).sum(-1)
        mass_sum += mean_heads.sum(1)
        if keep_probabilities:
            full.append(probs.cpu())
    return AttentionReduction(
        kept_tokens=tuple(kept),
        token_maps=torch.cat(maps, dim=2),
        entropy=(entropy_sum / queries).cpu(),
        token_mass=(mass_sum / queries).cpu(),
        probabilities=torch.cat(full, dim=2) if keep_probabilities else None,
    )


def max_entropy(tokens: int) -> float:
    """The entropy of attention spread evenly over ``tokens`` tokens (the upper bound), in nats."""
    return math.log(tokens) if tokens > 0 else 0.0
