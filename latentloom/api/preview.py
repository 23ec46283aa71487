"""Live previews: what a node hands to ``ctx.progress(..., preview=...)``, and whether previews are wanted.

The server encodes a preview only when a connected client asked for previews, so a node offers an
*unencoded* image: ``encode`` runs at most once, in the thread that called ``ctx.progress`` and before
that call returns (the node may reuse its buffers afterwards). No client watching: nothing is encoded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

JPEG = "image/jpeg"
PNG = "image/png"
IMAGE_TYPES = (JPEG, PNG)

# ComfyUI's --preview-method names. "auto" picks the best previewer available (here: latent2rgb).
PREVIEW_METHODS = ("auto", "latent2rgb", "none")


@dataclass(frozen=True)
class PreviewImage:
    """An image a node offers with a progress report; ``encode()`` returns the bytes of ``image_type``."""

    encode: Callable[[], bytes]
    image_type: str = JPEG

    def __post_init__(self) -> None:
        if self.image_type not in IMAGE_TYPES:
            raise ValueError(f"preview image_type must be one of {IMAGE_TYPES}, got {self.image_type!r}")


@dataclass(frozen=True)
class PreviewSettings:
    """The server's preview method, a service nodes take from ``Services`` (absent: latent2rgb)."""

    method: str = "latent2rgb"

    def __post_init__(self) -> None:
        if self.method not in PREVIEW_METHODS:
            raise ValueError(f"preview method must be one of {PREVIEW_METHODS}, got {self.method!r}")

    @property
    def enabled(self) -> bool:
        return self.method != "none"
