"""The preview KSampler offers with each step: a lazily encoded JPEG of the step's denoised latent."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from latentloom.api import PreviewImage, PreviewSettings
from latentloom.diffusion.latent_preview import latent_to_rgb
from nodes.sampling import KSampler

SETTINGS = {"seed": 3, "steps": 3, "cfg": 6.5, "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0}


def run(node, ctx, prompts, latent):
    model, clip, _ = prompts
    return node.execute(ctx, model=model, positive=clip[0], negative=clip[1], latent_image=latent, **SETTINGS)[0]


def encoded_prompts(bench):
    model, clip, vae = bench.loaded
    (positive,) = bench.run("CLIPTextEncode", text="a red cube", clip=clip)
    (negative,) = bench.run("CLIPTextEncode", text="blurry", clip=clip)
    return model, (positive, negative), vae


def decoded(preview: PreviewImage) -> np.ndarray:
    with Image.open(io.BytesIO(preview.encode())) as image:
        assert image.format == "JPEG"
        return np.asarray(image.convert("RGB"))


def test_each_step_offers_a_jpeg_of_the_denoised_latent_and_the_last_one_shows_the_result(bench, ctx):
    latent = {"samples": torch.zeros(1, 4, 8, 12)}
    out = run(bench.node("KSampler"), ctx, encoded_prompts(bench), latent)
    previews = [e.preview for e in ctx.events if e.type == "progress"]
    assert len(previews) == 3 and all(isinstance(p, PreviewImage) for p in previews)
    assert all(p.image_type == "image/jpeg" for p in previews)
    images = [decoded(p) for p in previews]
    assert all(image.shape == (8, 12, 3) for image in images)
    # Euler's last step lands on its denoised prediction, so the last preview is the result's latent2rgb
    # (up to JPEG's loss).
    expected = latent_to_rgb(out["samples"]).numpy().astype(int)
    assert np.abs(images[-1].astype(int) - expected).mean() < 6
    assert np.abs(images[0].astype(int) - expected).mean() > np.abs(images[-1].astype(int) - expected).mean()


def test_with_previews_off_no_preview_is_offered(bench, ctx):
    node = KSampler(PreviewSettings("none"))
    run(node, ctx, encoded_prompts(bench), {"samples": torch.zeros(1, 4, 8, 8)})
    progress = [e for e in ctx.events if e.type == "progress"]
    assert len(progress) == 3 and all(e.preview is None for e in progress)


def test_the_registered_samplers_take_the_services_preview_settings(bench):
    assert bench.node("KSampler").previews == PreviewSettings()
    assert bench.node("KSamplerAdvanced").previews.enabled
