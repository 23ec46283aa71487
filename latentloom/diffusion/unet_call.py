"""The network a denoiser wraps: a UNet called as ``model(x, timestep, context=..., concat=...)``, watched by
an optional observer (diffusion.observe; model patches name it, see diffusion.inspect.patch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from latentloom.diffusion.observe import UNetObserver
from latentloom.diffusion.unet import UNet


@dataclass(frozen=True, eq=False)
class UNetCall:
    """The network a denoiser wraps, ``model(x, timestep, context=...)``, as a UNet watched by ``observer``."""

    unet: UNet
    observer: UNetObserver | None = None

    def __call__(
        self, x: Tensor, timestep: Tensor, *, context: Tensor, concat: Tensor | None = None, **extra: Any
    ) -> Tensor:
        # The pooled text embedding (SDXL's second input) is not an input of the SD1/SD2 UNet.
        unknown = sorted(set(extra) - {"pooled"})
        if unknown:
            raise TypeError(f"UNet inputs {unknown} are not inputs of an SD1/SD2 UNet (it takes x, timestep, context)")
        if concat is not None:  # an inpainting model's mask and image latent (diffusion.inpaint), unscaled
            x = torch.cat([x, concat.to(x)], dim=1)
        return self.unet(x, timestep, context, observer=self.observer)
