"""Resizing as the upscale nodes do it: torch's modes, the centre crop, bislerp and Lanczos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from nodes.resize import bislerp, center_crop_to_aspect, lanczos, resize, slerp


@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic"])
def test_torch_methods_are_interpolate(method):
    samples = torch.randn(2, 4, 9, 13, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(samples, size=(18, 20), mode=method)
    assert torch.equal(resize(samples, width=20, height=18, method=method), expected)


def test_center_crop_trims_the_longer_axis_to_the_target_aspect():
    samples = torch.arange(10 * 20, dtype=torch.float32).reshape(1, 1, 10, 20)
    cropped = center_crop_to_aspect(samples, width=8, height=8)  # 2:1 -> 1:1 keeps the middle 10 columns
    assert torch.equal(cropped, samples[..., :, 5:15])
    tall = center_crop_to_aspect(samples.transpose(-1, -2), width=8, height=8)
    assert torch.equal(tall, samples.transpose(-1, -2)[..., 5:15, :])
    assert torch.equal(center_crop_to_aspect(samples, width=40, height=20), samples)


def test_crop_center_then_resize():
    samples = torch.randn(1, 3, 10, 20)
    out = resize(samples, width=4, height=4, method="bilinear", crop="center")
    assert torch.equal(out, F.interpolate(samples[..., 5:15], size=(4, 4), mode="bilinear"))


def test_bislerp_of_parallel_vectors_is_bilinear_on_their_lengths():
    """Where every channel vector points the same way, slerp only interpolates lengths: the result is
    the bilinear resize of the length field times that direction."""
    lengths = torch.rand(2, 1, 6, 7, generator=torch.Generator().manual_seed(1)) + 0.5
    direction = torch.tensor([0.6, -0.8, 0.0, 0.0]).reshape(1, 4, 1, 1)
    for height, width in ((12, 14), (3, 5), (6, 7), (9, 4)):
        expected = F.interpolate(lengths, size=(height, width), mode="bilinear", align_corners=False) * direction
        torch.testing.assert_close(bislerp(lengths * direction, width=width, height=height), expected)


def test_slerp_keeps_unit_length_between_orthogonal_unit_vectors_and_hits_the_ends():
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0]])
    half = slerp(a, b, torch.tensor([[0.5]]))
    torch.testing.assert_close(half, torch.tensor([[2**-0.5, 2**-0.5]]))
    torch.testing.assert_close(slerp(a, b, torch.tensor([[0.0]])), a)
    torch.testing.assert_close(slerp(a, b, torch.tensor([[1.0]])), b)
    # Opposite vectors and zero vectors fall back to linear interpolation instead of dividing by zero.
    torch.testing.assert_close(slerp(a, -a, torch.tensor([[0.25]])), torch.tensor([[0.5, 0.0]]))
    torch.testing.assert_close(slerp(a * 0, b, torch.tensor([[0.5]])), torch.tensor([[0.0, 0.5]]))


def test_lanczos_matches_pil_on_8_bit_images():
    pixels = np.random.default_rng(3).integers(0, 256, size=(11, 9, 3), dtype=np.uint8)
    image = torch.from_numpy(pixels.astype(np.float32) / 255.0).movedim(-1, 0).unsqueeze(0)
    out = lanczos(image, width=20, height=15)
    expected = np.asarray(Image.fromarray(pixels).resize((20, 15), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    assert out.shape == (1, 3, 15, 20)
    torch.testing.assert_close(out[0].movedim(0, -1), torch.from_numpy(expected))


def test_unknown_method_or_crop_is_refused():
    with pytest.raises(ValueError, match="upscale method"):
        resize(torch.zeros(1, 1, 2, 2), width=4, height=4, method="magic")
    with pytest.raises(ValueError, match="crop"):
        resize(torch.zeros(1, 1, 2, 2), width=4, height=4, method="bilinear", crop="edges")
