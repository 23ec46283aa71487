"""latent_to_rgb against the formula written out with numpy, pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentloom.diffusion.latent_preview import (
    SD1_LATENT_RGB_FACTORS,
    latent_to_rgb,
    preview_size,
)

# ComfyUI's comfy/latent_formats.py SD15 latent_rgb_factors, typed in again as the independent reference.
PUBLISHED_SD15_FACTORS = np.array(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]
)


def reference_rgb(latent: np.ndarray) -> np.ndarray:
    """ComfyUI's latent2rgb: per pixel sum_c latent[c]·factor[c, rgb], (x+1)/2 clamped, ×255 truncated."""
    height, width = latent.shape[1:]
    out = np.zeros((height, width, 3), dtype=np.uint8)
    for y in range(height):
        for x in range(width):
            for channel in range(3):
                value = sum(latent[c, y, x] * PUBLISHED_SD15_FACTORS[c, channel] for c in range(4))
                out[y, x, channel] = int(min(max((value + 1.0) / 2.0, 0.0), 1.0) * 255.0)
    return out


def test_the_factors_are_the_published_sd15_ones():
    np.testing.assert_array_equal(np.array(SD1_LATENT_RGB_FACTORS), PUBLISHED_SD15_FACTORS)


def test_the_first_batch_item_maps_to_rgb_by_the_formula():
    latent = torch.randn(2, 4, 6, 5, generator=torch.Generator().manual_seed(3)) * 2.0
    image = latent_to_rgb(latent)
    assert image.dtype == torch.uint8 and image.device.type == "cpu" and image.shape == (6, 5, 3)
    expected = reference_rgb(latent[0].double().numpy())
    # float32 vs float64 sums may land on either side of an integer boundary: at most one level apart.
    assert np.abs(image.numpy().astype(int) - expected.astype(int)).max() <= 1
    assert (image.numpy() == expected).mean() > 0.95


def test_values_beyond_the_range_saturate_at_black_and_white():
    # Channel 3 alone: R = -0.2120·v, so v = -10 gives R far above 1 (white) and v = +10 far below -1 (black).
    latent = torch.zeros(1, 4, 1, 2)
    latent[0, 3, 0, 0] = -10.0
    latent[0, 3, 0, 1] = 10.0
    image = latent_to_rgb(latent)
    assert image[0, 0].tolist() == [255, 255, 255]
    assert image[0, 1].tolist() == [0, 0, 0]


def test_a_zero_latent_is_mid_grey():
    assert latent_to_rgb(torch.zeros(1, 4, 2, 2)).unique().tolist() == [127]


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [(64, 96, (64, 96)), (512, 512, (512, 512)), (1024, 512, (512, 256)), (300, 1200, (128, 512))],
)
def test_the_longer_side_is_capped_and_the_aspect_kept(height, width, expected):
    assert preview_size(height, width, max_side=512) == expected


def test_a_large_latent_is_area_averaged_before_the_projection():
    # 4×4 blocks of a constant colour shrink to one pixel each: the result equals the small latent's preview.
    small = torch.randn(1, 4, 3, 2, generator=torch.Generator().manual_seed(7))
    large = small.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)  # [1, 4, 12, 8]
    image = latent_to_rgb(large, max_side=3)
    assert image.shape == (3, 2, 3)
    assert torch.equal(image, latent_to_rgb(small))


def test_a_latent_with_other_channel_counts_is_refused():
    with pytest.raises(ValueError, match="16 channels"):
        latent_to_rgb(torch.zeros(1, 16, 2, 2))
