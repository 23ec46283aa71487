"""The values MODEL, CLIP and VAE sockets carry: loaded weights plus the choices made about them, as data.

Handles are immutable. Nodes that change a model (LoRA, merges, clip skip, an inspector) return a new
handle that shares the weights and records the change: the loaded base model is never mutated, so a
cached checkpoint stays valid for every other graph that uses it. Whoever runs the model applies the
recorded patches; weight patches (LoRA, merges) are applied by ``load``/``encode`` to a view of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from latentloom.diffusion.schedules import DiscreteSchedule
from latentloom.diffusion.unet import UNet
from latentloom.diffusion.vae import VAE
from latentloom.runtime.clip_text import ClipSkipOutOfRange, ClipTextEncoder
from latentloom.runtime.detect import ModelFamily, PredictionType
from latentloom.runtime.devices import DeviceManager, module_bytes
from latentloom.runtime.lora.weights import PatchedViewSlot

if TYPE_CHECKING:
    from latentloom.runtime.clip_tokenizer import ClipTokenizer
    from latentloom.runtime.embeddings import EmbeddingLibrary
    from latentloom.runtime.prompt_syntax import TokenizedPrompt


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """The diffusion model: UNet, its noise schedule, what it predicts, and the patches to apply.

    ``patches`` are plain frozen values (e.g. a LoRA file reference with its strength) in the order they
    were added; ``clone_with_patch`` returns a new handle sharing the UNet.
    """

    unet: UNet
    schedule: DiscreteSchedule
    prediction_type: PredictionType
    devices: DeviceManager
    family: ModelFamily = ModelFamily.SD1
    source: str = ""  # the file it came from, for messages
    patches: tuple[object, ...] = ()
    # The last patched view of this UNet, shared by every clone (see PatchedViewSlot).
    views: PatchedViewSlot = field(default_factory=PatchedViewSlot, kw_only=True, repr=False)

    def clone_with_patch(self, patch: object) -> ModelHandle:
        return replace(self, patches=(*self.patches, patch))

    def load(self) -> UNet:
        """The UNet on the compute device, with this handle's weight patches (LoRA, merges) applied to a
        view that shares every unpatched tensor with the cached base, which stays unchanged.

        Where weights compute in RAM (no separate accelerator) the patched view is kept for the next load
        with the same patches; on an accelerator it is recomputed (fast there), so patched tensors never
        sit in VRAM outside the device manager's accounting."""
        self.devices.load(self.unet)
        return self.views.view(self.unet, self.patches, keep=not self.devices.offloads)

    def __cache_parts__(self) -> tuple[tuple[object, int], ...]:
        """The memory this handle keeps alive, by owner: the UNet's weights and the kept patched view, both
        shared with every clone, so a cache that holds several clones counts them once."""
        return (self.unet, module_bytes(self.unet)), (self.views, self.views.kept_bytes)

    def __cache_contents__(self) -> tuple[object, ...]:
        """Its patches hold memory too: a LoRA's tensors, a merge's other model."""
        return self.patches


@dataclass(frozen=True, eq=False)
class ClipHandle:
    """The text encoder and tokenizer, and the layer its output is read from (``clip_skip``, 1 = last)."""

    encoder: ClipTextEncoder
    devices: DeviceManager
    clip_skip: int = 1
    source: str = ""
    patches: tuple[object, ...] = ()  # weight patches (LoRA, merges) on the encoder's own parameter keys
    views: PatchedViewSlot = field(default_factory=PatchedViewSlot, kw_only=True, repr=False)

    def clone_with_patch(self, patch: object) -> ClipHandle:
        return replace(self, patches=(*self.patches, patch))

    @property
    def tokenizer(self) -> ClipTokenizer:
        return self.encoder.tokenizer

    def with_clip_skip(self, clip_skip: int) -> ClipHandle:
        """A handle that reads the ``clip_skip``-th layer from the end, sharing these weights."""
        if not 1 <= clip_skip <= self.encoder.num_layers:
            raise ClipSkipOutOfRange(f"clip_skip must be between 1 and {self.encoder.num_layers}, got {clip_skip}")
        return replace(self, clip_skip=clip_skip)

    def tokenize(self, prompt: str, *, embeddings: EmbeddingLibrary | None = None) -> TokenizedPrompt:
        return self.encoder.tokenize(prompt, embeddings=embeddings)

    def encode(self, prompt: str, *, embeddings: EmbeddingLibrary | None = None) -> tuple[Tensor, Tensor]:
        """(cond [1, 77·chunks, width], pooled [1, width]) as float32 on the CPU, where conditioning is kept."""
        return self.encode_tokens(self.tokenize(prompt, embeddings=embeddings))

    def encode_tokens(self, tokens: TokenizedPrompt) -> tuple[Tensor, Tensor]:
        self.devices.load(self.encoder.model)
        encoder = self.encoder
        model = self.views.view(encoder.model, self.patches, keep=not self.devices.offloads)
        if model is not encoder.model:
            encoder = ClipTextEncoder(model, encoder.tokenizer)
        cond, pooled = encoder.encode_tokens(tokens, clip_skip=self.clip_skip)
        return cond.cpu(), pooled.cpu()

    def __cache_parts__(self) -> tuple[tuple[object, int], ...]:
        """As ModelHandle's: the encoder's weights and the kept patched view, shared with every clone."""
        return (self.encoder.model, module_bytes(self.encoder.model)), (self.views, self.views.kept_bytes)

    def __cache_contents__(self) -> tuple[object, ...]:
        return self.patches


@dataclass(frozen=True, eq=False)
class VaeHandle:
    """The autoencoder, with helpers between IMAGE values and the diffusion model's latents.

    IMAGE is (batch, height, width, channels) floats in [0, 1] (ComfyUI's layout); latents are
    (batch, 4, height/8, width/8) already multiplied by the scale factor (0.18215 for SD1).
    """

    vae: VAE
    devices: DeviceManager
    source: str = ""
    # Decode in tiles when a whole decode runs out of accelerator memory (tile size in latent pixels).
    fallback_tile: int = field(default=64, kw_only=True)

    @property
    def scale_factor(self) -> float:
        return self.vae.config.scale_factor

    @property
    def downscale(self) -> int:
        return self.vae.config.downscale

    def encode(self, pixels: Tensor) -> Tensor:
        """IMAGE -> scaled latents (float32, CPU), the distribution's mean as ComfyUI takes it.

        Sides that are not multiples of 8 are centre-cropped to the nearest multiple below.
        """
        vae = self._loaded()
        images = self.crop_to_multiple(pixels)[..., :3].movedim(-1, 1)
        images = images.to(self.devices.device, torch.float32) * 2.0 - 1.0
        with torch.inference_mode():
            latents = vae.scale_latents(vae.encode(images).mode())
        return latents.float().cpu()

    def decode(self, latents: Tensor, *, tiled: bool = False, tile: int | None = None, overlap: int = 16) -> Tensor:
        """Scaled latents -> IMAGE (float32, CPU). Falls back to tiles when a whole decode runs out of memory."""
        vae = self._loaded()
        z = vae.unscale_latents(latents.to(self.devices.device, torch.float32))
        tile = tile or self.fallback_tile
        with torch.inference_mode():
            if tiled:
                images = vae.decode_tiled(z, tile=tile, overlap=overlap)
            else:
                try:
                    images = vae.decode(z)
                except torch.OutOfMemoryError:
                    self.devices.empty_cache()
                    images = vae.decode_tiled(z, tile=tile, overlap=overlap)
        return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0).movedim(1, -1).cpu()

    def crop_to_multiple(self, pixels: Tensor) -> Tensor:
        """IMAGE centre-cropped so height and width are multiples of the VAE's downscale (8)."""
        factor = self.downscale
        height, width = pixels.shape[1], pixels.shape[2]
        new_h, new_w = (height // factor) * factor, (width // factor) * factor
        if new_h == 0 or new_w == 0:
            raise ValueError(f"image of {width}x{height} pixels is smaller than one latent pixel ({factor}x{factor})")
        top, left = (height % factor) // 2, (width % factor) // 2
        return pixels[:, top : top + new_h, left : left + new_w, :]

    def _loaded(self) -> VAE:
        self.devices.load(self.vae)
        return self.vae

    def __cache_parts__(self) -> tuple[tuple[object, int], ...]:
        return ((self.vae, module_bytes(self.vae)),)
