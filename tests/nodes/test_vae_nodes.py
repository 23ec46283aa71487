"""VAEDecode (and its tiled retry when memory runs out), VAEDecodeTiled, VAEEncode, VAEEncodeForInpaint."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from latentloom.api import NodeInputError
from nodes.vae_nodes import grow_mask, tiling


def random_latent(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def reference_decode(vae_handle, latents: torch.Tensor, **tiled) -> torch.Tensor:
    """Decoded by the VAE module itself: unscale, decode, [-1, 1] -> [0, 1], channels last."""
    vae = vae_handle.vae
    with torch.inference_mode():
        z = latents / vae.config.scale_factor
        images = vae.decode_tiled(z, **tiled) if tiled else vae.decode(z)
    return ((images + 1) / 2).clamp(0, 1).movedim(1, -1)


def test_vae_decode_is_the_vae_on_unscaled_latents(bench):
    _, _, vae = bench.loaded
    latents = random_latent(2, 4, 4, 6)
    (image,) = bench.run("VAEDecode", samples={"samples": latents}, vae=vae)
    assert image.shape == (2, 32, 48, 3) and image.device.type == "cpu"
    torch.testing.assert_close(image, reference_decode(vae, latents))


def test_vae_decode_retries_in_tiles_when_memory_runs_out(bench, monkeypatch):
    _, _, vae = bench.loaded
    small_tiles = dataclasses.replace(vae, fallback_tile=17)  # 17 > the retry's 16-pixel overlap
    latents = random_latent(1, 4, 18, 18, seed=1)
    real_decode = type(vae.vae).decode
    attempts = []

    def decode_with_little_memory(module, z):
        attempts.append(tuple(z.shape[-2:]))
        if z.shape[-1] > 17:
            raise torch.OutOfMemoryError("simulated: CUDA out of memory")
        return real_decode(module, z)

    monkeypatch.setattr(type(vae.vae), "decode", decode_with_little_memory)
    emptied = []
    monkeypatch.setattr(vae.devices, "empty_cache", lambda: emptied.append(True))
    (image,) = bench.run("VAEDecode", samples={"samples": latents}, vae=small_tiles)
    monkeypatch.undo()
    assert attempts == [(18, 18)] and emptied == [True]  # one whole try, then tiles (which call _decode)
    assert image.shape == (1, 144, 144, 3)
    torch.testing.assert_close(image, reference_decode(vae, latents, tile=17, overlap=16))


def test_vae_decode_tiled_uses_pixel_sizes_and_caps_the_overlap(bench):
    _, _, vae = bench.loaded
    assert tiling(512, 64, downscale=8) == (64, 8)
    assert tiling(128, 64, downscale=8) == (16, 4)  # overlap at most a quarter of the tile
    latents = random_latent(1, 4, 12, 10, seed=2)
    (image,) = bench.run("VAEDecodeTiled", samples={"samples": latents}, vae=vae, tile_size=64, overlap=64)
    torch.testing.assert_close(image, reference_decode(vae, latents, tile=8, overlap=2))


def test_vae_decode_refuses_a_latent_with_other_channels(bench):
    _, _, vae = bench.loaded
    with pytest.raises(NodeInputError, match="input 'samples': the latent has 16 channels"):
        bench.run("VAEDecode", samples={"samples": torch.zeros(1, 16, 4, 4)}, vae=vae)
    with pytest.raises(NodeInputError, match="input 'vae'"):
        bench.run("VAEDecode", samples={"samples": torch.zeros(1, 4, 4, 4)}, vae=None)


def test_vae_encode_gives_scaled_mean_latents_of_the_cropped_image(bench):
    _, _, vae = bench.loaded
    image = torch.rand(1, 36, 43, 3)
    (latent,) = bench.run("VAEEncode", pixels=image, vae=vae)
    cropped = image[:, 2:34, 1:41, :]  # centre crop to multiples of 8
    with torch.inference_mode():
        moments = vae.vae.encode(cropped.movedim(-1, 1) * 2 - 1)
    expected = moments.mode() * vae.vae.config.scale_factor
    assert latent["samples"].shape == (1, 4, 4, 5)
    torch.testing.assert_close(latent["samples"], expected)


def test_grow_mask_is_a_box_dilation():
    mask = torch.zeros(1, 1, 12, 12)
    mask[..., 5, 6] = 1.0
    for by in (1, 3, 4, 6):
        grown = grow_mask(mask, by)
        pad = (by - 1) // 2, by // 2  # the box reaches further on the side the even kernel is longer
        expected = F.max_pool2d(F.pad(mask, (pad[1], pad[0], pad[1], pad[0])), by, stride=1)
        assert torch.equal(grown, expected), by
    assert grow_mask(mask, 0) is mask


def test_vae_encode_for_inpaint_greys_the_masked_pixels_and_sets_the_grown_mask(bench):
    _, _, vae = bench.loaded
    image = torch.rand(1, 32, 40, 3)
    mask = torch.zeros(1, 16, 20)
    mask[:, 4:8, 4:10] = 1.0  # a rectangle at half resolution: pixels 8..16 x 8..20
    (latent,) = bench.run("VAEEncodeForInpaint", pixels=image, vae=vae, mask=mask, grow_mask_by=4)
    full = F.interpolate(mask.unsqueeze(1), size=(32, 40), mode="bilinear")
    greyed = image * (1 - full.round()).movedim(1, -1) + 0.5 * full.round().movedim(1, -1)
    (expected,) = bench.run("VAEEncode", pixels=greyed, vae=vae)
    torch.testing.assert_close(latent["samples"], expected["samples"])
    assert torch.equal(latent["noise_mask"], grow_mask(full.round(), 4))
    assert latent["noise_mask"].shape == (1, 1, 32, 40)
