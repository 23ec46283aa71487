"""VAE nodes: VAEDecode (with an automatic tiled retry when memory runs out), VAEDecodeTiled, VAEEncode,
VAEEncodeForInpaint. The VaeHandle moves the VAE to the compute device and converts IMAGE <-> latents."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom import api
from latentloom.api import Input, IntInput, NodeInputError, NodeSchema, NodeType, Output
from latentloom.runtime.handles import VaeHandle
from nodes.values import image_tensor, latent_samples, mask_tensor

T = api.types


def vae_handle(vae: Any) -> VaeHandle:
    if not isinstance(vae, VaeHandle):
        raise NodeInputError("vae", f"expects a VAE, got {type(vae).__name__}")
    return vae


def vae_latent(vae: VaeHandle, samples: Any) -> Tensor:
    """The LATENT's samples, checked against the VAE's latent channels."""
    tensor = latent_samples(samples, "samples")
    channels = vae.vae.config.latent_channels
    if tensor.shape[1] != channels:
        raise NodeInputError("samples", f"the latent has {tensor.shape[1]} channels; this VAE decodes {channels}")
    return tensor


class VAEDecode(NodeType):
    schema = NodeSchema(
        type="VAEDecode",
        display_name="VAE Decode",
        category="latent",
        description="Decodes latents into images; retries in tiles when the whole image does not fit in memory.",
        required=(
            Input("samples", T.LATENT, tooltip="The latent to be decoded."),
            Input("vae", T.VAE, tooltip="The VAE model used for decoding the latent."),
        ),
        outputs=(Output(T.IMAGE, tooltip="The decoded image."),),
    )

    def execute(self, ctx: api.ExecutionContext, *, samples: Any, vae: Any) -> tuple:
        handle = vae_handle(vae)
        # VaeHandle.decode catches torch.OutOfMemoryError, empties the cache and decodes in tiles.
        return (handle.decode(vae_latent(handle, samples)),)


def tiling(tile_size: int, overlap: int, *, downscale: int) -> tuple[int, int]:
    """(tile, overlap) in latent pixels from the widget's pixels; the overlap is at most a quarter tile."""
    if tile_size < overlap * 4:
        overlap = tile_size // 4
    return tile_size // downscale, overlap // downscale


class VAEDecodeTiled(NodeType):
    schema = NodeSchema(
        type="VAEDecodeTiled",
        display_name="VAE Decode (Tiled)",
        category="_for_testing",
        description="Decodes latents tile by tile (bounded memory), blending the overlaps.",
        required=(
            Input("samples", T.LATENT),
            Input("vae", T.VAE),
            IntInput("tile_size", default=512, min=64, max=4096, step=32),
            IntInput("overlap", default=64, min=0, max=4096, step=32),
        ),
        outputs=(Output(T.IMAGE),),
    )

    def execute(self, ctx: api.ExecutionContext, *, samples: Any, vae: Any, tile_size: int, overlap: int) -> tuple:
        handle = vae_handle(vae)
        tile, blend = tiling(tile_size, overlap, downscale=handle.downscale)
        return (handle.decode(vae_latent(handle, samples), tiled=True, tile=tile, overlap=blend),)


class VAEEncode(NodeType):
    schema = NodeSchema(
        type="VAEEncode",
        display_name="VAE Encode",
        category="latent",
        required=(Input("pixels", T.IMAGE), Input("vae", T.VAE)),
        outputs=(Output(T.LATENT),),
    )

    def execute(self, ctx: api.ExecutionContext, *, pixels: Any, vae: Any) -> tuple:
        handle = vae_handle(vae)
        return ({"samples": _encode(handle, image_tensor(pixels, "pixels"))},)


def _encode(handle: VaeHandle, pixels: Tensor) -> Tensor:
    try:
        return handle.encode(pixels)
    except ValueError as error:  # an image smaller than one latent pixel
        raise NodeInputError("pixels", str(error)) from error


def grow_mask(mask: Tensor, by: int) -> Tensor:
    """A [batch, 1, H, W] 0/1 mask dilated with a ``by`` × ``by`` box (ComfyUI's grow_mask_by)."""
    if by == 0:
        return mask
    kernel = torch.ones((1, 1, by, by))
    grown = F.conv2d(mask.round(), kernel, padding=math.ceil((by - 1) / 2))
    # An even kernel with this padding makes the result one pixel larger: keep the mask's own size.
    return grown[..., : mask.shape[-2], : mask.shape[-1]].clamp(0, 1)


class VAEEncodeForInpaint(NodeType):
    schema = NodeSchema(
        type="VAEEncodeForInpaint",
        display_name="VAE Encode (for Inpainting)",
        category="latent/inpaint",
        description="Encodes the image with the masked area greyed out, and sets the grown mask as noise mask.",
        required=(
            Input("pixels", T.IMAGE),
            Input("vae", T.VAE),
            Input("mask", T.MASK),
            IntInput("grow_mask_by", default=6, min=0, max=64, step=1),
        ),
        outputs=(Output(T.LATENT),),
    )

    def execute(self, ctx: api.ExecutionContext, *, pixels: Any, vae: Any, mask: Any, grow_mask_by: int) -> tuple:
        handle = vae_handle(vae)
        image = image_tensor(pixels, "pixels")
        height, width = image.shape[1], image.shape[2]
        masks = F.interpolate(mask_tensor(mask, "mask").unsqueeze(1), size=(height, width), mode="bilinear")
        cropped = handle.crop_to_multiple(image)
        top, left = (height % handle.downscale) // 2, (width % handle.downscale) // 2
        masks = masks[:, :, top : top + cropped.shape[1], left : left + cropped.shape[2]]
        keep = (1.0 - masks.round()).squeeze(1).unsqueeze(-1)  # [batch, H, W, 1]
        greyed = (cropped[..., :3] - 0.5) * keep + 0.5
        latent = _encode(handle, greyed)
        return ({"samples": latent, "noise_mask": grow_mask(masks, grow_mask_by).round()},)
