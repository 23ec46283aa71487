"""The extra input of inpainting models (SD1.5-inpainting: a UNet with 9 input channels).

Such a UNet sees the noisy latent (4 channels) concatenated with the mask (1 channel: 1 = regenerate) and the
latent of the image being inpainted (4 channels), the LDM "hybrid" conditioning (c_concat). The concatenated
part is not scaled by c_in. Which latent, and what stands in without a mask, follows ComfyUI so its inpainting
workflows give the same result: the input latent itself (VAEEncodeForInpaint has already greyed the masked
pixels) with the noise mask resized bilinearly and rounded; without a mask, a mask of ones and the latent of
an all-zero-pixel image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LATENT_CHANNELS = 4
INPAINT_CHANNELS = 1 + LATENT_CHANNELS  # the mask, then the masked image's latent
# SD1's VAE latent (scaled) of an image whose pixels are all 0 in [-1, 1], per channel: what a blank "masked
# image" looks like when no mask is given.
BLANK_IMAGE_LATENT = (0.8223, -0.6876, 0.6364, 0.1380)


def is_inpainting_model(in_channels: int) -> bool:
    return in_channels == LATENT_CHANNELS + INPAINT_CHANNELS


def inpaint_concat(latent: Tensor, noise_mask: Tensor | None) -> Tensor:
    """The [batch, 5, h, w] tensor an inpainting UNet takes after the noisy latent's 4 channels.

    ``latent`` [batch, 4, h, w] is the sampler's input latent; ``noise_mask`` is [h', w'], [b, h', w'] or
    [b, 1, h', w'] at any resolution (1 = regenerate), or None.
    """
    batch, _, height, width = latent.shape
    if noise_mask is None:
        mask = torch.ones(batch, 1, height, width, dtype=latent.dtype, device=latent.device)
        blank = torch.tensor(BLANK_IMAGE_LATENT, dtype=latent.dtype, device=latent.device)
        return torch.cat([mask, blank.reshape(1, -1, 1, 1).expand(batch, -1, height, width)], dim=1)
    mask = noise_mask.reshape(-1, 1, noise_mask.shape[-2], noise_mask.shape[-1]).to(latent)
    if mask.shape[-2:] != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    mask = _to_batch(mask.round(), batch)
    return torch.cat([mask, latent], dim=1)


def _to_batch(tensor: Tensor, batch: int) -> Tensor:
    """Repeat (or cut) along the batch to exactly ``batch`` entries."""
    if tensor.shape[0] < batch:
        tensor = tensor.repeat(math.ceil(batch / tensor.shape[0]), 1, 1, 1)
    return tensor[:batch]
