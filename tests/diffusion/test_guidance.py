"""Classifier-free guidance: one batched call, the exact combination, cfg = 1, area/mask composition."""

from __future__ import annotations

import pytest
import torch
from sampling_toys import CountingDenoiser

from latentloom.diffusion.guidance import Cond, GuidanceError, cfg_denoiser
from latentloom.diffusion.schedules import DiscreteSchedule

H = W = 32


def context_denoiser(x, sigma, *, context, **extra):
    """A stand-in network whose prediction is x/2 plus the mean of the context (so conds are told apart)."""
    return x / 2 + context.mean(dim=(1, 2)).reshape(-1, 1, 1, 1)


def emb(value: float, tokens: int = 77) -> torch.Tensor:
    return torch.full((1, tokens, 8), value)


def _x(batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 4, H, W, generator=torch.Generator().manual_seed(0))


def test_cond_and_uncond_run_in_one_batched_call_and_combine_exactly():
    counter = CountingDenoiser(context_denoiser)
    guided = cfg_denoiser(counter, [Cond(emb(1.0))], [Cond(emb(-1.0))], cfg=7.5)
    x = _x(batch=2)
    out = guided(x, torch.full((2,), 3.0))
    assert len(counter.calls) == 1
    assert counter.calls[0]["batch"] == 4
    assert counter.calls[0]["sigma"].tolist() == [3.0] * 4
    cond, uncond = x / 2 + 1.0, x / 2 - 1.0
    torch.testing.assert_close(out, uncond + 7.5 * (cond - uncond))


def test_cfg_one_skips_the_negative_pass():
    counter = CountingDenoiser(context_denoiser)
    out = cfg_denoiser(counter, [Cond(emb(1.0))], [Cond(emb(-1.0))], cfg=1.0)(_x(), torch.tensor([2.0]))
    assert [call["batch"] for call in counter.calls] == [1]
    torch.testing.assert_close(out, _x() / 2 + 1.0)
    cfg_denoiser(counter, [Cond(emb(1.0))], [], cfg=1.0)(_x(), torch.tensor([2.0]))  # no negative needed
    with pytest.raises(GuidanceError, match="negative conditioning is empty"):
        cfg_denoiser(counter, [Cond(emb(1.0))], [], cfg=5.0)


def test_pooled_and_extra_inputs_are_batched_alongside_the_context():
    counter = CountingDenoiser(context_denoiser)
    positive = [Cond(emb(1.0), pooled=torch.ones(1, 5), extra={"y": torch.ones(1, 3)})]
    negative = [Cond(emb(0.0), pooled=torch.zeros(1, 5), extra={"y": torch.zeros(1, 3)})]
    cfg_denoiser(counter, positive, negative, cfg=3.0)(_x(batch=2), torch.full((2,), 1.0))
    call = counter.calls[0]
    assert call["context"].shape == (4, 77, 8)
    assert call["pooled"][:, 0].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert call["y"].shape == (4, 3)


def test_contexts_of_different_lengths_share_a_call_by_repeating_tokens():
    counter = CountingDenoiser(context_denoiser)
    long_prompt = torch.cat([torch.full((1, 77, 8), 2.0), torch.full((1, 77, 8), 4.0)], dim=1)
    out = cfg_denoiser(counter, [Cond(long_prompt)], [Cond(emb(1.0))], cfg=2.0)(_x(), torch.tensor([1.0]))
    assert len(counter.calls) == 1 and counter.calls[0]["context"].shape == (2, 154, 8)
    torch.testing.assert_close(out, (_x() / 2 + 1.0) + 2.0 * 2.0)  # token means 3.0 and 1.0 are unchanged


def _feathered_weight(length: int, offset: int, full: int) -> torch.Tensor:
    """ComfyUI's fade: min(8, length // 4) rows ramp (t + 1)/ramp at edges inside the latent."""
    weight = torch.ones(length)
    ramp = min(8, length // 4)
    for t in range(ramp):
        if offset != 0:
            weight[t] *= (t + 1) / ramp
        if offset + length < full:
            weight[length - 1 - t] *= (t + 1) / ramp
    return weight


def test_area_cond_is_averaged_in_with_feathered_weights():
    background, patch = Cond(emb(0.0)), Cond(emb(10.0), area=(16, 12, 8, 20), strength=0.5)
    x = torch.zeros(1, 4, H, W)
    out = cfg_denoiser(context_denoiser, [background, patch], [], cfg=1.0)(x, torch.tensor([1.0]))
    weight = torch.zeros(H, W)
    weight[8:24, 20:32] = 0.5 * torch.outer(_feathered_weight(16, 8, H), _feathered_weight(12, 20, W))
    expected = (0.0 * 1.0 + 10.0 * weight) / (1.0 + weight)
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(out[0, 3], expected)


def test_area_fraction_resolves_against_the_latent_size():
    patch = Cond(emb(10.0), area_fraction=(0.5, 0.25, 0.5, 0.0))
    out = cfg_denoiser(context_denoiser, [Cond(emb(0.0)), patch], [], cfg=1.0)(torch.zeros(1, 4, H, W), 1.0)
    assert float(out[0, 0, :16].abs().max()) == 0.0  # above the area: background only
    assert float(out[0, 0, 24, 2]) == pytest.approx(5.0)  # well inside (8, 8) at (16, 0): equal weights


def test_masked_cond_applies_only_where_the_mask_is_set():
    mask = torch.zeros(H * 2, W * 2)
    mask[:, : W] = 1.0  # left half, at twice the latent resolution (resized bilinearly)
    masked = Cond(emb(6.0), mask=mask, strength=2.0)
    out = cfg_denoiser(context_denoiser, [Cond(emb(0.0)), masked], [], cfg=1.0)(torch.zeros(1, 4, H, W), 1.0)
    torch.testing.assert_close(out[0, :, :, :8], torch.full((4, H, 8), 6.0 * 2.0 / 3.0))
    torch.testing.assert_close(out[0, :, :, -8:], torch.zeros(4, H, 8))


def test_mask_bounds_area_runs_the_cond_on_the_mask_bounding_box():
    mask = torch.zeros(H, W)
    mask[4:10, 6:20] = 1.0
    counter = CountingDenoiser(context_denoiser)
    cfg_denoiser(counter, [Cond(emb(0.0)), Cond(emb(1.0), mask=mask, mask_bounds_area=True)], [], cfg=1.0)(
        torch.zeros(1, 4, H, W), 1.0
    )
    assert sorted(call["batch"] for call in counter.calls) == [1, 1]  # full latent, then the 8×14 box


def test_negative_side_gets_an_opposite_cond_for_each_positive_area():
    counter = CountingDenoiser(context_denoiser)
    positive = [Cond(emb(0.0)), Cond(emb(10.0), area=(16, 16, 0, 0))]
    negative = [Cond(emb(-3.0))]
    out = cfg_denoiser(counter, positive, negative, cfg=2.0)(torch.zeros(1, 4, H, W), torch.tensor([1.0]))
    # Two calls: the full-size pair, then the 16×16 pair (positive area + its negative copy).
    assert [call["batch"] for call in counter.calls] == [2, 2]
    assert counter.calls[1]["context"][:, 0, 0].tolist() == [10.0, -3.0]
    # Far from the area only the background conds count: -3 + 2·(0 - -3) = 3.
    assert float(out[0, 0, 31, 31]) == pytest.approx(3.0)


def test_timestep_range_switches_conds_on_and_off():
    schedule = DiscreteSchedule.scaled_linear()
    late = Cond(emb(5.0), start_percent=0.5)
    guided = cfg_denoiser(context_denoiser, [Cond(emb(1.0)), late], [], cfg=1.0, schedule=schedule)
    x = torch.zeros(1, 4, 8, 8)
    assert float(guided(x, torch.tensor([10.0]))[0, 0, 0, 0]) == pytest.approx(1.0)  # early: inactive
    assert float(guided(x, torch.tensor([0.5]))[0, 0, 0, 0]) == pytest.approx(3.0)  # late: averaged in
    with pytest.raises(GuidanceError, match="schedule"):
        cfg_denoiser(context_denoiser, [late], [], cfg=1.0)(x, torch.tensor([1.0]))


def test_conditioning_that_does_not_fit_is_named():
    x = torch.zeros(3, 4, 8, 8)
    with pytest.raises(GuidanceError, match="embedding has batch 2"):
        cfg_denoiser(context_denoiser, [Cond(torch.zeros(2, 77, 8))], [], cfg=1.0)(x, 1.0)
    with pytest.raises(GuidanceError, match="does not overlap"):
        cfg_denoiser(context_denoiser, [Cond(emb(1.0), area=(4, 4, 20, 0))], [], cfg=1.0)(x, 1.0)
    with pytest.raises(GuidanceError, match="positive conditioning is empty"):
        cfg_denoiser(context_denoiser, [], [], cfg=1.0)
