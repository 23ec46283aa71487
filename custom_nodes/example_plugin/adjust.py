"""Brightness, contrast and saturation of an IMAGE batch, with the same meaning as PIL's ImageEnhance.

Each factor blends the image with a degenerate version of itself: black (brightness), the mean grey of
the image (contrast), its own greyscale (saturation). 1.0 leaves the image unchanged.
"""

from __future__ import annotations

import torch

from latentloom.api import FloatInput, Input, NodeSchema, NodeType, Output
from latentloom.api import types as T

# ITU-R 601-2 luma, the weights PIL uses to convert RGB to greyscale.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def luma(images: torch.Tensor) -> torch.Tensor:
    """[B, H, W, 3] -> [B, H, W, 1] greyscale."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device)
    return (images[..., :3] * weights).sum(dim=-1, keepdim=True)


def _blend(degenerate: torch.Tensor, images: torch.Tensor, factor: float) -> torch.Tensor:
    return (degenerate + (images - degenerate) * factor).clamp(0.0, 1.0)


def adjust_brightness(images: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(torch.zeros_like(images), images, factor)


def adjust_contrast(images: torch.Tensor, factor: float) -> torch.Tensor:
    mean = luma(images).mean(dim=(1, 2, 3), keepdim=True)  # one grey level per image: [B, 1, 1, 1]
    return _blend(mean.expand_as(images), images, factor)


def adjust_saturation(images: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(luma(images).expand_as(images), images, factor)


def _factor(name: str, tooltip: str) -> FloatInput:
    return FloatInput(name, default=1.0, min=0.0, max=4.0, step=0.01, tooltip=tooltip)


class ImageAdjust(NodeType):
    schema = NodeSchema(
        type="ImageAdjust",
        display_name="Image Adjust",
        category="example_plugin/image",
        description="Brightness, contrast and saturation (1.0 = unchanged), applied in that order.",
        required=(
            Input("image", T.IMAGE),
            _factor("brightness", "0 is black, 2 is twice as bright"),
            _factor("contrast", "0 is flat mean grey, above 1 spreads tones apart"),
            _factor("saturation", "0 is greyscale, above 1 is more colourful"),
        ),
        outputs=(Output(T.IMAGE),),
    )

    def execute(self, ctx, image, brightness, contrast, saturation):
        adjusted = adjust_brightness(image, brightness)
        adjusted = adjust_contrast(adjusted, contrast)
        return (adjust_saturation(adjusted, saturation),)
