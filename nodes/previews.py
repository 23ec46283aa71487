"""Sampler previews: the denoised latent of a step as a lazily encoded JPEG (latentloom.api.PreviewImage).

Nothing is computed until the server asks: ``encode`` projects the latent to RGB (latent2rgb) and
writes the JPEG only when a connected client wants previews.
"""

from __future__ import annotations

import io

from PIL import Image
from torch import Tensor

from latentloom.api import PreviewImage, PreviewSettings
from latentloom.diffusion.latent_preview import latent_to_rgb

JPEG_QUALITY = 90


def latent_preview(denoised: Tensor, settings: PreviewSettings) -> PreviewImage | None:
    """The preview of a sampler step's denoised prediction (x0), or None when previews are off."""
    if not settings.enabled or denoised.ndim != 4 or denoised.shape[1] != 4:
        return None  # latent2rgb knows the 4 SD1.x channels only
    return PreviewImage(encode=lambda: jpeg_bytes(denoised))


def jpeg_bytes(latent: Tensor) -> bytes:
    rgb = latent_to_rgb(latent).numpy()  # [H, W, 3] uint8, first batch item
    buffer = io.BytesIO()
    # 4:4:4 (no chroma subsampling): latent-sized previews are small, and halving their colour blurs it.
    Image.fromarray(rgb, mode="RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()
