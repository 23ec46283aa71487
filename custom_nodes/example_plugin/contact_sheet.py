"""A contact sheet: every image of a batch on one grid. Written to ComfyUI's node-class conventions."""

from __future__ import annotations

import math

import torch


def contact_sheet(images: torch.Tensor, *, columns: int, gap: int, background: float) -> torch.Tensor:
    """[B, H, W, C] -> [1, rows*H + (rows-1)*gap, cols*W + (cols-1)*gap, C], row by row from the top left."""
    count, height, width, channels = images.shape
    cols = min(columns, count)
    rows = math.ceil(count / cols)
    sheet = torch.full(
        (1, rows * height + (rows - 1) * gap, cols * width + (cols - 1) * gap, channels),
        background,
        dtype=images.dtype,
    )
    for index in range(count):
        top = (index // cols) * (height + gap)
        left = (index % cols) * (width + gap)
        sheet[0, top : top + height, left : left + width] = images[index]
    return sheet


class ContactSheet:
    DESCRIPTION = "Lays out every image of a batch on one grid, left to right and top to bottom."
    CATEGORY = "example_plugin/image"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("sheet",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE",),
                "columns": ("INT", {"default": 4, "min": 1, "max": 64, "tooltip": "images per row"}),
                "gap": ("INT", {"default": 4, "min": 0, "max": 256, "tooltip": "pixels between images"}),
                "background": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01}),
            }
        }

    def build(self, images, columns, gap, background):
        return (contact_sheet(images, columns=columns, gap=gap, background=background),)
