"""The example plugin's math: adjustments agree with PIL's ImageEnhance, the contact sheet's layout."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance
from plugin_folder import EXAMPLE_PLUGIN

from server.plugins import MODULE_PREFIX, import_plugin_file

# PIL works in 8 bits and rounds each blend; we work in floats.
PIL_TOLERANCE = 1.5 / 255


@pytest.fixture(scope="module")
def plugin():
    import_plugin_file("example_plugin", EXAMPLE_PLUGIN / "__init__.py")
    package = f"{MODULE_PREFIX}.example_plugin"
    return sys.modules[f"{package}.adjust"], sys.modules[f"{package}.contact_sheet"]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 2-image batch of random 8-bit colours, [B, H, W, 3]."""
    return np.random.default_rng(7).integers(0, 256, size=(2, 6, 5, 3), dtype=np.uint8)


def _pil_reference(photo: np.ndarray, enhancer: type, factor: float) -> np.ndarray:
    return np.stack(
        [np.asarray(enhancer(Image.fromarray(image)).enhance(factor)) for image in photo]
    ).astype(np.float32) / 255


@pytest.mark.parametrize(
    ("name", "enhancer", "factor"),
    [
        ("brightness", ImageEnhance.Brightness, 1.4),
        ("brightness", ImageEnhance.Brightness, 0.3),
        ("contrast", ImageEnhance.Contrast, 1.8),
        ("contrast", ImageEnhance.Contrast, 0.4),
        ("saturation", ImageEnhance.Color, 2.0),
        ("saturation", ImageEnhance.Color, 0.0),
    ],
)
def test_each_adjustment_matches_pil_image_enhance(plugin, photo, name, enhancer, factor):
    adjust, _ = plugin
    images = torch.from_numpy(photo.astype(np.float32) / 255)
    factors = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0} | {name: factor}
    (ours,) = adjust.ImageAdjust().execute(None, image=images, **factors)
    assert ours.shape == images.shape and 0.0 <= ours.min() and ours.max() <= 1.0
    np.testing.assert_allclose(ours.numpy(), _pil_reference(photo, enhancer, factor), atol=PIL_TOLERANCE)


def test_neutral_factors_leave_the_image_unchanged(plugin, photo):
    adjust, _ = plugin
    images = torch.from_numpy(photo.astype(np.float32) / 255)
    (ours,) = adjust.ImageAdjust().execute(None, image=images, brightness=1.0, contrast=1.0, saturation=1.0)
    torch.testing.assert_close(ours, images)


def test_contact_sheet_places_images_row_by_row_with_gaps_of_background(plugin):
    _, sheet_module = plugin
    images = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 2, 3, 3) / 10
    (sheet,) = sheet_module.ContactSheet().build(images, columns=3, gap=1, background=0.9)
    assert sheet.shape == (1, 2 * 2 + 1, 3 * 3 + 2, 3)  # 2 rows of 3 columns
    for index in range(5):
        top, left = (index // 3) * 3, (index % 3) * 4
        assert torch.all(sheet[0, top : top + 2, left : left + 3] == index / 10)
    assert torch.all(sheet[0, 2, :] == 0.9) and torch.all(sheet[0, :, 3] == 0.9)  # the gaps
    assert torch.all(sheet[0, 3:, 8:] == 0.9)  # the empty sixth cell


def test_contact_sheet_with_more_columns_than_images_is_one_tight_row(plugin):
    _, sheet_module = plugin
    images = torch.rand(2, 4, 4, 3)
    (sheet,) = sheet_module.ContactSheet().build(images, columns=8, gap=0, background=0.0)
    torch.testing.assert_close(sheet[0], torch.cat([images[0], images[1]], dim=1))
