"""MODEL / CLIP / VAE handles: changes are new handles sharing weights; VAE helpers convert IMAGE <-> latents."""

from __future__ import annotations

import pytest
import torch
from support.checkpoint_factory import TINY_TEXT_LAYERS, write_tiny_sd15_checkpoint

from latentloom.engine.sizes import estimate_size, measure_parts
from latentloom.runtime.clip_text import ClipSkipOutOfRange
from latentloom.runtime.clip_tokenizer import ClipTokenizer
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.handles import ClipHandle, ModelHandle, VaeHandle
from latentloom.runtime.loader import load_checkpoint


@pytest.fixture(scope="module")
def handles(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelHandle, ClipHandle, VaeHandle]:
    path = write_tiny_sd15_checkpoint(tmp_path_factory.mktemp("handles") / "tiny.safetensors")
    return load_checkpoint(path, devices=DeviceManager(device="cpu"), tokenizer=ClipTokenizer.bundled())


def weight_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def test_clone_with_patch_records_data_and_leaves_the_base_untouched(handles) -> None:  # type: ignore[no-untyped-def]
    model, _, _ = handles
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    patched = model.clone_with_patch(("lora", "style.safetensors", 0.8))
    twice = patched.clone_with_patch(("lora", "detail.safetensors", 0.5))
    assert model.patches == ()
    assert patched.patches == (("lora", "style.safetensors", 0.8),)
    assert twice.patches == (("lora", "style.safetensors", 0.8), ("lora", "detail.safetensors", 0.5))
    assert twice.unet is model.unet and twice.schedule is model.schedule
    assert all(torch.equal(v, before[k]) for k, v in model.unet.state_dict().items())


def test_with_clip_skip_shares_the_encoder(handles) -> None:  # type: ignore[no-untyped-def]
    _, clip, _ = handles
    skipped = clip.with_clip_skip(2)
    assert skipped.encoder is clip.encoder
    assert (clip.clip_skip, skipped.clip_skip) == (1, 2)
    cond_last, _ = clip.encode("a red cube")
    cond_skip, _ = skipped.encode("a red cube")
    expected, _ = clip.encoder.encode("a red cube", clip_skip=2)
    assert torch.equal(cond_skip, expected.cpu())
    assert not torch.allclose(cond_last, cond_skip)
    with pytest.raises(ClipSkipOutOfRange):
        clip.with_clip_skip(TINY_TEXT_LAYERS + 1)


def test_clip_encode_returns_float32_cpu_conditioning(handles) -> None:  # type: ignore[no-untyped-def]
    _, clip, _ = handles
    cond, pooled = clip.encode("a photo of a cat")
    assert cond.shape == (1, 77, 64) and pooled.shape == (1, 64)
    assert cond.dtype == pooled.dtype == torch.float32 and cond.device.type == "cpu"


def test_handles_measure_as_their_weights_bytes(handles) -> None:  # type: ignore[no-untyped-def]
    model, clip, vae = handles
    assert estimate_size(model) == weight_bytes(model.unet)
    assert estimate_size(clip) == weight_bytes(clip.encoder.model)
    assert estimate_size(vae) == weight_bytes(vae.vae)


def test_clones_name_the_same_weights_as_cache_parts(handles) -> None:  # type: ignore[no-untyped-def]
    model, clip, _ = handles
    patch = ("lora", "style.safetensors", 0.8)
    assert measure_parts(model.clone_with_patch(patch)) == {**measure_parts(model), **measure_parts(patch)}
    assert measure_parts(clip.with_clip_skip(2)) == measure_parts(clip)
    assert measure_parts(model)[id(model.unet)] == weight_bytes(model.unet)


def test_vae_decode_follows_the_image_convention(handles) -> None:  # type: ignore[no-untyped-def]
    _, _, vae = handles
    latents = torch.randn(2, 4, 4, 6, generator=torch.Generator().manual_seed(0))
    images = vae.decode(latents)
    with torch.no_grad():
        reference = vae.vae.decode(latents / 0.18215)
    assert images.shape == (2, 32, 48, 3)
    assert torch.allclose(images, ((reference + 1) / 2).clamp(0, 1).movedim(1, -1), atol=1e-6)


def test_vae_encode_follows_the_image_convention(handles) -> None:  # type: ignore[no-untyped-def]
    _, _, vae = handles
    pixels = torch.rand(1, 32, 40, 4, generator=torch.Generator().manual_seed(1))  # RGBA: alpha is dropped
    latents = vae.encode(pixels)
    with torch.no_grad():
        reference = vae.vae.encode(pixels[..., :3].movedim(-1, 1) * 2 - 1).mean * 0.18215
    assert latents.shape == (1, 4, 4, 5)
    assert torch.allclose(latents, reference, atol=1e-6)


def test_vae_encode_centre_crops_to_multiples_of_eight(handles) -> None:  # type: ignore[no-untyped-def]
    _, _, vae = handles
    pixels = torch.rand(1, 37, 21, 3, generator=torch.Generator().manual_seed(2))
    cropped = vae.crop_to_multiple(pixels)
    assert cropped.shape == (1, 32, 16, 3)
    assert torch.equal(cropped, pixels[:, 2:34, 2:18])
    assert torch.equal(vae.encode(pixels), vae.encode(cropped))
    with pytest.raises(ValueError, match="smaller than one latent pixel"):
        vae.crop_to_multiple(torch.rand(1, 7, 20, 3))


def test_vae_decode_falls_back_to_tiles_when_memory_runs_out(handles, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    _, _, vae = handles
    latents = torch.randn(1, 4, 12, 12, generator=torch.Generator().manual_seed(3))
    expected = vae.decode(latents, tiled=True, tile=8, overlap=2)

    def out_of_memory(z: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(vae.vae, "decode", out_of_memory)
    tiled_handle = VaeHandle(vae.vae, vae.devices, fallback_tile=8)
    assert torch.equal(tiled_handle.decode(latents, overlap=2), expected)


def test_handles_compare_by_identity(handles) -> None:  # type: ignore[no-untyped-def]
    model, _, _ = handles
    assert model == model
    assert model != model.clone_with_patch("x")
