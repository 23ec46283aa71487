"""EmptyLatent, LatentUpscale(By), LatentComposite, RepeatLatentBatch, SetLatentNoiseMask against formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from latentloom.api import NodeInputError


def test_empty_latent_is_zeros_of_an_eighth_of_the_size(bench):
    (latent,) = bench.run("EmptyLatentImage", width=96, height=64, batch_size=3)
    assert latent.keys() == {"samples"}
    assert latent["samples"].shape == (3, 4, 8, 12)
    assert not latent["samples"].any()


def test_empty_latent_refuses_sizes_that_are_not_multiples_of_8(bench):
    node = bench.node("EmptyLatent")
    assert node.validate(width=100, height=64, batch_size=1) == ["width 100 is not a multiple of 8"]
    assert node.validate(width=64, height=64, batch_size=1) == []
    with pytest.raises(NodeInputError, match="input 'height': 60 is not a multiple of 8"):
        node.execute(None, width=64, height=60, batch_size=1)


def sample_latent(*shape: int, seed: int = 0) -> dict:
    return {"samples": torch.randn(shape, generator=torch.Generator().manual_seed(seed)), "batch_index": [4, 5]}


def test_latent_upscale_resizes_to_an_eighth_of_the_pixels_and_keeps_other_entries(bench):
    latent = sample_latent(2, 4, 8, 8)
    (out,) = bench.run("LatentUpscale", samples=latent, upscale_method="bilinear", width=128, height=96, crop="disabled")
    assert torch.equal(out["samples"], F.interpolate(latent["samples"], size=(12, 16), mode="bilinear"))
    assert out["batch_index"] == [4, 5]
    assert latent["samples"].shape == (2, 4, 8, 8)  # the input is not changed


def test_latent_upscale_with_one_side_zero_keeps_the_aspect_ratio(bench):
    latent = sample_latent(1, 4, 8, 16)
    (out,) = bench.run("LatentUpscale", samples=latent, upscale_method="nearest-exact", width=0, height=128, crop="disabled")
    assert out["samples"].shape == (1, 4, 16, 32)
    assert torch.equal(out["samples"], F.interpolate(latent["samples"], size=(16, 32), mode="nearest-exact"))
    (same,) = bench.run("LatentUpscale", samples=latent, upscale_method="bilinear", width=0, height=0, crop="disabled")
    assert same is latent
    (floor,) = bench.run("LatentUpscale", samples=latent, upscale_method="bilinear", width=16, height=8, crop="disabled")
    assert floor["samples"].shape == (1, 4, 8, 8)  # never below 64 pixels a side


def test_latent_upscale_center_crop(bench):
    latent = sample_latent(1, 4, 8, 16)
    (out,) = bench.run("LatentUpscale", samples=latent, upscale_method="area", width=128, height=128, crop="center")
    assert torch.equal(out["samples"], F.interpolate(latent["samples"][..., 4:12], size=(16, 16), mode="area"))


def test_latent_upscale_by_rounds_the_scaled_size(bench):
    latent = sample_latent(1, 4, 7, 10)
    (out,) = bench.run("LatentUpscaleBy", samples=latent, upscale_method="bicubic", scale_by=1.5)
    assert torch.equal(out["samples"], F.interpolate(latent["samples"], size=(round(10.5), 15), mode="bicubic"))


def test_latent_composite_pastes_at_the_offset_and_cuts_what_overhangs(bench):
    to, source = sample_latent(2, 4, 8, 8, seed=1), sample_latent(2, 4, 6, 6, seed=2)
    (out,) = bench.run("LatentComposite", samples_to=to, samples_from=source, x=32, y=16, feather=0)
    expected = to["samples"].clone()
    expected[:, :, 2:8, 4:8] = source["samples"][:, :, :6, :4]
    assert torch.equal(out["samples"], expected)


def test_latent_composite_feathers_edges_inside_the_destination(bench):
    to = {"samples": torch.zeros(1, 4, 8, 8)}
    source = {"samples": torch.ones(1, 4, 4, 4)}
    (out,) = bench.run("LatentComposite", samples_to=to, samples_from=source, x=16, y=0, feather=16)
    weights = out["samples"][0, 0]
    # Feather of 2 latent pixels: the top edge lies on the border (no fade), the other three fade in.
    column_ramp = torch.tensor([0.5, 1.0, 1.0, 0.5])
    row_ramp = torch.tensor([1.0, 1.0, 1.0, 0.5])
    torch.testing.assert_close(weights[0:4, 2:6], row_ramp[:, None] * column_ramp[None, :])
    assert not weights[:, :2].any() and not weights[4:].any()


def test_latent_composite_refuses_a_channel_mismatch(bench):
    with pytest.raises(NodeInputError, match="samples_from"):
        bench.run("LatentComposite", samples_to=sample_latent(1, 4, 8, 8), samples_from=sample_latent(1, 3, 8, 8), x=0, y=0, feather=0)


def test_repeat_latent_batch_repeats_samples_masks_and_batch_indices(bench):
    latent = sample_latent(2, 4, 4, 4)
    latent["noise_mask"] = torch.rand(2, 1, 32, 32)
    (out,) = bench.run("RepeatLatentBatch", samples=latent, amount=3)
    assert torch.equal(out["samples"], torch.cat([latent["samples"]] * 3))
    assert torch.equal(out["noise_mask"], torch.cat([latent["noise_mask"]] * 3))
    assert out["batch_index"] == [4, 5, 6, 7, 8, 9]


def test_set_latent_noise_mask_stores_a_batch_of_one_channel_masks(bench):
    latent = sample_latent(1, 4, 4, 4)
    mask = torch.rand(32, 32)
    (out,) = bench.run("SetLatentNoiseMask", samples=latent, mask=mask)
    assert out["noise_mask"].shape == (1, 1, 32, 32)
    assert torch.equal(out["noise_mask"][0, 0], mask)
    assert out["samples"] is latent["samples"] and "noise_mask" not in latent


def test_a_latent_input_that_is_not_a_latent_names_the_input(bench):
    with pytest.raises(NodeInputError, match="input 'samples': expects a LATENT"):
        bench.run("RepeatLatentBatch", samples=torch.zeros(1, 4, 4, 4), amount=2)
