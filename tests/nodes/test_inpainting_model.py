"""SD1.5-inpainting checkpoints (a UNet with 9 input channels): they load and sample, with the mask and the
image latent concatenated to the noisy latent as ComfyUI and LDM feed them."""

from __future__ import annotations

import threading

import pytest
import torch
from nodes_harness import NodeBench
from support.checkpoint_factory import tiny_sd15_state_dict, write_state_dict

from latentloom.api import NodeInputError
from latentloom.diffusion.denoiser import EpsDenoiser
from latentloom.diffusion.guidance import Cond, cfg_denoiser
from latentloom.diffusion.inpaint import inpaint_concat
from latentloom.diffusion.sampling import ksample
from latentloom.diffusion.unet_call import UNetCall
from latentloom.engine.context import NodeContext

INPAINT_CHECKPOINT = "tiny-sd15-inpainting.safetensors"
STEM = "model.diffusion_model.input_blocks.0.0.weight"
SETTINGS = {"seed": 5, "steps": 3, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> NodeBench:
    """The tiny checkpoint with its input convolution widened to 4 + 5 channels, as SD1.5-inpainting's is."""
    base = tmp_path_factory.mktemp("inpainting_base")
    (base / "models" / "checkpoints").mkdir(parents=True)
    state = tiny_sd15_state_dict(seed=3)
    stem = state[STEM]
    extra = torch.randn(stem.shape[0], 5, *stem.shape[2:], generator=torch.Generator().manual_seed(9)) * 0.2
    state[STEM] = torch.cat([stem, extra], dim=1)
    write_state_dict(base / "models" / "checkpoints" / INPAINT_CHECKPOINT, state)
    return NodeBench.over(base)


@pytest.fixture(scope="module")
def prompts(bench: NodeBench):
    model, clip, vae = bench.run("CheckpointLoader", ckpt_name=INPAINT_CHECKPOINT)
    (positive,) = bench.run("CLIPTextEncode", text="a stone bridge", clip=clip)
    (negative,) = bench.run("CLIPTextEncode", text="", clip=clip)
    return model, vae, positive, negative


def context() -> NodeContext:
    return NodeContext(prompt_id="p", node_id="3", emit=lambda event: None, interrupt=threading.Event())


def direct(model, positive, negative, latent, *, concat, noise_mask=None) -> torch.Tensor:
    """The reference: the UNet fed cat([x / sqrt(σ²+1), mask, image latent]) under CFG, through ksample."""
    conds = [[Cond(c[0][0], extra={"concat": concat})] for c in (positive, negative)]
    guided = cfg_denoiser(EpsDenoiser(UNetCall(model.unet), model.schedule), *conds, cfg=SETTINGS["cfg"],
                          schedule=model.schedule)  # fmt: skip
    with torch.inference_mode():
        return ksample(guided, latent, schedule=model.schedule, seed=5, steps=3, sampler="euler", scheduler="normal",
                       noise_mask=noise_mask)  # fmt: skip


def test_the_loader_reads_nine_input_channels_from_the_file(prompts):
    model = prompts[0]
    assert model.unet.config.in_channels == 9


def test_vae_encode_for_inpaint_then_ksampler_feeds_the_mask_and_the_image_latent(bench, prompts):
    model, vae, positive, negative = prompts
    pixels = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:48, 16:48] = 1.0
    (latent,) = bench.run("VAEEncodeForInpaint", pixels=pixels, vae=vae, mask=mask, grow_mask_by=6)
    (out,) = bench.run("KSampler", context(), model=model, positive=positive, negative=negative, latent_image=latent,
                       **SETTINGS)  # fmt: skip
    samples = latent["samples"]
    concat = inpaint_concat(samples, latent["noise_mask"])
    assert concat.shape == (1, 5, 8, 8)
    assert torch.equal(concat[:, 1:], samples)  # the greyed image's latent, as VAEEncodeForInpaint made it
    assert set(concat[:, 0].unique().tolist()) == {0.0, 1.0}  # the mask at latent size, rounded
    expected = direct(model, positive, negative, samples, concat=concat, noise_mask=latent["noise_mask"])
    assert torch.equal(out["samples"], expected)


def test_without_a_mask_the_model_sees_a_full_mask_and_a_blank_image(bench, prompts):
    model, _, positive, negative = prompts
    empty = torch.zeros(2, 4, 8, 8)
    (out,) = bench.run("KSampler", context(), model=model, positive=positive, negative=negative,
                       latent_image={"samples": empty}, **SETTINGS)  # fmt: skip
    concat = inpaint_concat(empty, None)
    assert torch.equal(concat[:, 0], torch.ones(2, 8, 8))
    assert concat[0, 1:, 0, 0].tolist() == pytest.approx([0.8223, -0.6876, 0.6364, 0.1380])
    assert torch.equal(out["samples"], direct(model, positive, negative, empty, concat=concat))


def test_a_plain_latent_with_the_wrong_channel_count_is_still_refused(bench, prompts):
    model, _, positive, negative = prompts
    with pytest.raises(NodeInputError, match="the latent has 9 channels .* takes 4"):
        bench.run("KSampler", context(), model=model, positive=positive, negative=negative,
                  latent_image={"samples": torch.zeros(1, 9, 8, 8)}, **SETTINGS)  # fmt: skip

