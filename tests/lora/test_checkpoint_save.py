"""CheckpointSave: a standard single-file checkpoint that reloads to the same tensors, never overwriting;
a merged checkpoint runs through the text-to-image graph."""

from __future__ import annotations

import weakref
from dataclasses import replace

import pytest
import torch
from lora_bench import CHECKPOINT_A, CHECKPOINT_B
from support.diffusers_reference import diffusers_unet, diffusers_vae
from support.tiny_sd import TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX

from latentloom.runtime.checkpoint import open_checkpoint, read_state_dict
from latentloom.runtime.detect import SCHEDULE_BUFFERS
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.loader import load_checkpoint
from latentloom.runtime.lora.checkpoint_export import checkpoint_entries
from latentloom.runtime.lora.saving import SaveError, TensorEntry, write_safetensors
from latentloom.runtime.lora.weights import patched_view

SETTINGS = {"seed": 5, "steps": 2, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}


def merged_handles(bench):
    (a, clip_a, vae), (b, clip_b, _) = bench.load(CHECKPOINT_A), bench.load(CHECKPOINT_B)
    (model,) = bench.run("ModelMergeSimple", model1=a, model2=b, ratio=0.4)
    (clip,) = bench.run("CLIPMergeSimple", clip1=clip_a, clip2=clip_b, ratio=0.6)
    return model, clip, vae


def saved_path(result):
    (entry,) = result.ui["checkpoints"]
    return entry


def test_saved_checkpoint_has_the_loaded_layout_and_reloads_to_identical_tensors(bench):
    model, clip, vae = merged_handles(bench)
    entry = saved_path(bench.run_result("CheckpointSave", model=model, clip=clip, vae=vae, filename_prefix="checkpoints/merged"))
    path = bench.folders.output_dir / "checkpoints" / entry["filename"]
    assert entry["filename"].startswith("merged_") and path.is_file()
    with open_checkpoint(path) as saved, open_checkpoint(bench.folders.path("checkpoints", CHECKPOINT_A)) as original:
        assert set(saved.tensors) == set(original.tensors) - SCHEDULE_BUFFERS
        assert saved.metadata["modelspec.architecture"] == "stable-diffusion-v1"
        assert "MergePatch('ModelMergeSimple'" in saved.metadata["latentloom.recipe"]
    reloaded_model, reloaded_clip, reloaded_vae = load_checkpoint(path, devices=DeviceManager(device="cpu", precision="fp32"))
    for ours, theirs in ((model.load(), reloaded_model.unet), (patched_view(clip.encoder.model, clip.patches),
                         reloaded_clip.encoder.model), (vae.vae, reloaded_vae.vae)):  # fmt: skip
        mine, loaded = ours.state_dict(), theirs.state_dict()
        assert mine.keys() == loaded.keys()
        assert all(torch.equal(mine[k], loaded[k]) for k in mine)


def test_saving_never_overwrites_a_file(bench, tmp_path):
    model, clip, vae = bench.load()
    first = saved_path(bench.run_result("CheckpointSave", model=model, clip=clip, vae=vae, filename_prefix="again"))
    second = saved_path(bench.run_result("CheckpointSave", model=model, clip=clip, vae=vae, filename_prefix="again"))
    assert (first["filename"], second["filename"]) == ("again_00001_.safetensors", "again_00002_.safetensors")
    taken = tmp_path / "taken.safetensors"
    taken.write_bytes(b"keep me")
    entry = TensorEntry("x", (2,), torch.float32, lambda: torch.ones(2))
    with pytest.raises(SaveError, match="already exists"):
        write_safetensors(taken, [entry], metadata={})
    assert taken.read_bytes() == b"keep me" and list(tmp_path.iterdir()) == [taken]  # no temporary left behind


def test_a_merged_checkpoint_runs_through_the_text_to_image_graph(bench, ctx):
    model, clip, vae = merged_handles(bench)
    entry = saved_path(bench.run_result("CheckpointSave", model=model, clip=clip, vae=vae, filename_prefix="t2i"))
    (bench.base / "models" / "checkpoints" / entry["filename"]).hardlink_to(bench.folders.output_dir / entry["filename"])
    loaded_model, loaded_clip, loaded_vae = bench.run("CheckpointLoader", ckpt_name=entry["filename"])
    (positive,) = bench.run("CLIPTextEncode", text="a lighthouse at dusk", clip=loaded_clip)
    (negative,) = bench.run("CLIPTextEncode", text="", clip=loaded_clip)
    (latent,) = bench.run("EmptyLatent", width=64, height=64, batch_size=1)
    (samples,) = bench.run("KSampler", ctx, model=loaded_model, positive=positive, negative=negative,
                           latent_image=latent, **SETTINGS)  # fmt: skip
    (image,) = bench.run("VAEDecode", samples=samples, vae=loaded_vae)
    assert image.shape == (1, 64, 64, 3) and torch.isfinite(image).all()
    # The same prompt through the unsaved merge (CLIP and UNet patched lazily) gives the same latent.
    (merged_positive,) = bench.run("CLIPTextEncode", text="a lighthouse at dusk", clip=clip)
    assert torch.equal(merged_positive[0][0], positive[0][0])
    (base_samples,) = bench.run("KSampler", ctx, model=bench.load()[0], positive=positive, negative=negative,
                                latent_image=latent, **SETTINGS)  # fmt: skip
    assert not torch.allclose(base_samples["samples"], samples["samples"])


def test_saving_a_merge_computes_one_merged_tensor_at_a_time(bench, tmp_path):
    model, clip, vae = merged_handles(bench)
    alive: list[weakref.ref] = []
    most_alive = 0

    def watched(compute):
        def run():  # refcounting frees a dropped tensor at once, so no gc pass is needed
            nonlocal most_alive
            most_alive = max(most_alive, sum(ref() is not None for ref in alive))
            tensor = compute()
            alive.append(weakref.ref(tensor))
            return tensor

        return run

    patched = {key for key, _ in model.unet.named_parameters()}
    entries = [replace(e, compute=watched(e.compute)) if e.key.removeprefix("model.diffusion_model.") in patched else e
               for e in checkpoint_entries(model, clip, vae)]  # fmt: skip
    write_safetensors(tmp_path / "streamed.safetensors", entries, metadata={})
    assert len(alive) == len(patched) and most_alive == 0  # each merged tensor is gone before the next is made


def test_the_saved_checkpoint_loads_strictly_in_diffusers(bench):
    # Other tools read the file by its LDM key names: diffusers' own single-file converters take the saved UNet
    # and VAE strictly (no missing or unexpected key), and the converted models compute what ours do.
    model, clip, vae = merged_handles(bench)
    entry = saved_path(bench.run_result("CheckpointSave", model=model, clip=clip, vae=vae, filename_prefix="others"))
    state = read_state_dict(bench.folders.output_dir / entry["filename"])
    unet_state = {k.removeprefix(UNET_PREFIX): v for k, v in state.items() if k.startswith(UNET_PREFIX)}
    vae_state = {k.removeprefix(VAE_PREFIX): v for k, v in state.items() if k.startswith(VAE_PREFIX)}
    text_state = {k.removeprefix(TEXT_PREFIX): v for k, v in state.items() if k.startswith(TEXT_PREFIX)}
    assert len(unet_state) + len(vae_state) + len(text_state) == len(state)

    their_unet = diffusers_unet(model.unet.config, unet_state)
    latent, context = torch.randn(1, 4, 8, 8), torch.randn(1, 77, model.unet.config.context_dim)
    with torch.no_grad():
        expected = model.load()(latent, torch.tensor([500.0]), context)
        theirs = their_unet(latent, torch.tensor([500.0]), encoder_hidden_states=context).sample
    torch.testing.assert_close(theirs, expected, rtol=1e-4, atol=1e-4)
    their_vae = diffusers_vae(vae.vae.config, vae_state)  # a strict load inside
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(their_vae.encode(image).latent_dist.mean, vae.vae.encode(image).mean,
                                   rtol=1e-4, atol=1e-4)  # fmt: skip
    # The text encoder keeps the names of a real file (checked above against the loaded file's keys).
    assert all(key.startswith("text_model.") for key in text_state)
