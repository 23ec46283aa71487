"""Latent nodes: EmptyLatent, LatentUpscale, LatentUpscaleBy, LatentComposite, RepeatLatentBatch,
SetLatentNoiseMask. Sizes in widgets are pixels; latents are 1/8 of them."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentloom import api
from latentloom.api import (
    ComboInput,
    FloatInput,
    Input,
    IntInput,
    NodeInputError,
    NodeSchema,
    NodeType,
    Output,
)
from nodes.resize import CROP_METHODS, LATENT_METHODS, resize
from nodes.values import (
    LATENT_DOWNSCALE,
    MAX_RESOLUTION,
    check_multiple,
    latent_samples,
    mask_tensor,
    with_samples,
)

T = api.types
LATENT_CHANNELS = 4  # SD1's VAE latent
MIN_UPSCALED = 64  # LatentUpscale never goes below 64 pixels a side (ComfyUI's floor)


class EmptyLatent(NodeType):
    schema = NodeSchema(
        type="EmptyLatent",
        aliases=("EmptyLatentImage",),
        display_name="Empty Latent Image",
        category="latent",
        description="A batch of all-zero latents to start text-to-image sampling from.",
        required=(
            IntInput("width", default=512, min=16, max=MAX_RESOLUTION, step=8, tooltip="Image width in pixels."),
            IntInput("height", default=512, min=16, max=MAX_RESOLUTION, step=8, tooltip="Image height in pixels."),
            IntInput("batch_size", default=1, min=1, max=4096, tooltip="The number of latent images in the batch."),
        ),
        outputs=(Output(T.LATENT, tooltip="The empty latent image batch."),),
    )

    def validate(self, **literals: Any) -> list[str]:
        return [
            f"{name} {literals[name]} is not a multiple of {LATENT_DOWNSCALE}"
            for name in ("width", "height")
            if isinstance(literals.get(name), int) and literals[name] % LATENT_DOWNSCALE
        ]

    def execute(self, ctx: api.ExecutionContext, *, width: int, height: int, batch_size: int) -> tuple:
        check_multiple(width, "width")
        check_multiple(height, "height")
        shape = (batch_size, LATENT_CHANNELS, height // LATENT_DOWNSCALE, width // LATENT_DOWNSCALE)
        return ({"samples": torch.zeros(shape)},)


def _pixel_size(name: str, *, default: int = 512, step: int = 8) -> IntInput:
    return IntInput(name, default=default, min=0, max=MAX_RESOLUTION, step=step)


def upscale_target(shape: tuple[int, ...], *, width: int, height: int) -> tuple[int, int] | None:
    """LatentUpscale's target (width, height) in pixels: a side given as 0 keeps the aspect ratio; at least 64
    a side; None when both are 0 (nothing to do)."""
    latent_h, latent_w = shape[-2], shape[-1]
    if width == 0 and height == 0:
        return None
    if width == 0:
        height = max(MIN_UPSCALED, height)
        width = max(MIN_UPSCALED, round(latent_w * height / latent_h))
    elif height == 0:
        width = max(MIN_UPSCALED, width)
        height = max(MIN_UPSCALED, round(latent_h * width / latent_w))
    return max(MIN_UPSCALED, width), max(MIN_UPSCALED, height)


class LatentUpscale(NodeType):
    schema = NodeSchema(
        type="LatentUpscale",
        display_name="Upscale Latent",
        category="latent",
        required=(
            Input("samples", T.LATENT),
            ComboInput("upscale_method", choices=LATENT_METHODS),
            _pixel_size("width"),
            _pixel_size("height"),
            ComboInput("crop", choices=CROP_METHODS),
        ),
        outputs=(Output(T.LATENT),),
    )

    def execute(
        self, ctx: api.ExecutionContext, *, samples: Any, upscale_method: str, width: int, height: int, crop: str
    ) -> tuple:
        tensor = latent_samples(samples, "samples")
        target = upscale_target(tuple(tensor.shape), width=width, height=height)
        if target is None:
            return (samples,)
        w, h = (side // LATENT_DOWNSCALE for side in target)
        return (with_samples(samples, resize(tensor, width=w, height=h, method=upscale_method, crop=crop)),)


class LatentUpscaleBy(NodeType):
    schema = NodeSchema(
        type="LatentUpscaleBy",
        display_name="Upscale Latent By",
        category="latent",
        required=(
            Input("samples", T.LATENT),
            ComboInput("upscale_method", choices=LATENT_METHODS),
            FloatInput("scale_by", default=1.5, min=0.01, max=8.0, step=0.01),
        ),
        outputs=(Output(T.LATENT),),
    )

    def execute(self, ctx: api.ExecutionContext, *, samples: Any, upscale_method: str, scale_by: float) -> tuple:
        tensor = latent_samples(samples, "samples")
        width, height = round(tensor.shape[-1] * scale_by), round(tensor.shape[-2] * scale_by)
        if width < 1 or height < 1:
            raise NodeInputError("scale_by", f"{scale_by} shrinks a {tensor.shape[-1]}x{tensor.shape[-2]} latent to nothing")
        return (with_samples(samples, resize(tensor, width=width, height=height, method=upscale_method)),)


def composite(destination: Tensor, source: Tensor, *, x: int, y: int, feather: int) -> Tensor:
    """``source`` pasted into a copy of ``destination`` at latent pixel (x, y), cut to fit; with ``feather``
    > 0 its edges that lie inside the destination fade in linearly over that many latent pixels."""
    out = destination.clone()
    height, width = destination.shape[-2], destination.shape[-1]
    piece = source[..., : max(0, height - y), : max(0, width - x)]
    h, w = piece.shape[-2], piece.shape[-1]
    if h == 0 or w == 0:
        return out
    region = out[..., y : y + h, x : x + w]
    weight = torch.ones((h, w), dtype=out.dtype)
    for t in range(min(feather, h)):
        ramp = (t + 1) / feather
        if y != 0:
            weight[t, :] *= ramp
        if y + h < height:
            weight[h - 1 - t, :] *= ramp
    for t in range(min(feather, w)):
        ramp = (t + 1) / feather
        if x != 0:
            weight[:, t] *= ramp
        if x + w < width:
            weight[:, w - 1 - t] *= ramp
    out[..., y : y + h, x : x + w] = piece * weight + region * (1 - weight)
    return out


class LatentComposite(NodeType):
    schema = NodeSchema(
        type="LatentComposite",
        display_name="Latent Composite",
        category="latent",
        required=(
            Input("samples_to", T.LATENT),
            Input("samples_from", T.LATENT),
            _pixel_size("x", default=0),
            _pixel_size("y", default=0),
            _pixel_size("feather", default=0),
        ),
        outputs=(Output(T.LATENT),),
    )

    def execute(
        self, ctx: api.ExecutionContext, *, samples_to: Any, samples_from: Any, x: int, y: int, feather: int
    ) -> tuple:
        destination = latent_samples(samples_to, "samples_to")
        source = latent_samples(samples_from, "samples_from")
        if source.shape[1] != destination.shape[1]:
            raise NodeInputError("samples_from", f"has {source.shape[1]} channels; samples_to has {destination.shape[1]}")
        if source.shape[0] not in (1, destination.shape[0]):
            raise NodeInputError("samples_from", f"a batch of {source.shape[0]} cannot be pasted into a batch of {destination.shape[0]}")
        d = LATENT_DOWNSCALE
        pasted = composite(destination, source.expand(destination.shape[0], -1, -1, -1), x=x // d, y=y // d, feather=feather // d)
        return (with_samples(samples_to, pasted),)


class RepeatLatentBatch(NodeType):
    schema = NodeSchema(
        type="RepeatLatentBatch",
        display_name="Repeat Latent Batch",
        category="latent/batch",
        required=(Input("samples", T.LATENT), IntInput("amount", default=1, min=1, max=64)),
        outputs=(Output(T.LATENT),),
    )

    def execute(self, ctx: api.ExecutionContext, *, samples: Any, amount: int) -> tuple:
        tensor = latent_samples(samples, "samples")
        changes: dict[str, Any] = {}
        mask = samples.get("noise_mask")
        if isinstance(mask, Tensor) and mask.shape[0] > 1:
            if mask.shape[0] < tensor.shape[0]:
                mask = mask.repeat(-(-tensor.shape[0] // mask.shape[0]), 1, 1, 1)[: tensor.shape[0]]
            changes["noise_mask"] = mask.repeat(amount, 1, 1, 1)
        if "batch_index" in samples:
            indices = list(samples["batch_index"])
            offset = max(indices) - min(indices) + 1
            changes["batch_index"] = indices + [i + k * offset for k in range(1, amount) for i in indices]
        return (with_samples(samples, tensor.repeat(amount, 1, 1, 1), **changes),)


class SetLatentNoiseMask(NodeType):
    schema = NodeSchema(
        type="SetLatentNoiseMask",
        display_name="Set Latent Noise Mask",
        category="latent/inpaint",
        description="Sampling changes the latent only where the mask is 1 (the rest is kept).",
        required=(Input("samples", T.LATENT), Input("mask", T.MASK)),
        outputs=(Output(T.LATENT),),
    )

    def execute(self, ctx: api.ExecutionContext, *, samples: Any, mask: Any) -> tuple:
        tensor = latent_samples(samples, "samples")
        masks = mask_tensor(mask, "mask")
        return (with_samples(samples, tensor, noise_mask=masks.unsqueeze(1)),)
