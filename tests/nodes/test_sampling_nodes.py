"""KSampler and KSamplerAdvanced against latentloom.diffusion.sampling.ksample called directly."""

from __future__ import annotations

import pytest
import torch

from latentloom.api import ExecutionInterrupted, NodeInputError
from latentloom.diffusion.denoiser import EpsDenoiser
from latentloom.diffusion.guidance import Cond, cfg_denoiser
from latentloom.diffusion.sampling import ksample

SETTINGS = {"steps": 3, "cfg": 6.5, "sampler_name": "euler", "scheduler": "karras"}


@pytest.fixture(scope="module")
def prompts(bench):
    """(model, positive, negative) for "a red cube" / "blurry"."""
    model, clip, _ = bench.loaded
    (positive,) = bench.run("CLIPTextEncode", text="a red cube", clip=clip)
    (negative,) = bench.run("CLIPTextEncode", text="blurry", clip=clip)
    return model, positive, negative


def random_latent(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def direct(model, positive_conds, negative_conds, latent, *, cfg, **options):
    """The same run without the node: eps denoiser, CFG and ksample."""
    guided = cfg_denoiser(EpsDenoiser(model.unet, model.schedule), positive_conds, negative_conds, cfg=cfg,
                          schedule=model.schedule)  # fmt: skip
    with torch.inference_mode():
        return ksample(guided, latent, schedule=model.schedule, **options)


def ksampler(bench, ctx, prompts, latent, **overrides):
    model, positive, negative = prompts
    inputs = {"seed": 42, **SETTINGS, "denoise": 1.0, **overrides}
    (out,) = bench.run("KSampler", ctx, model=model, positive=positive, negative=negative, latent_image=latent, **inputs)
    return out


def test_ksampler_equals_ksample_with_the_same_seed_and_reports_each_step(bench, ctx, prompts):
    model, positive, negative = prompts
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    out = ksampler(bench, ctx, prompts, latent)
    expected = direct(model, [Cond(positive[0][0])], [Cond(negative[0][0])], torch.zeros(1, 4, 8, 8), cfg=6.5,
                      seed=42, steps=3, sampler="euler", scheduler="karras")  # fmt: skip
    assert torch.equal(out["samples"], expected)
    assert out["samples"].device.type == "cpu" and out["samples"].dtype == torch.float32
    progress = [(e.data["value"], e.data["max"]) for e in ctx.events if e.type == "progress"]
    assert progress == [(1, 3), (2, 3), (3, 3)]


def test_the_seed_reproduces_and_a_new_seed_changes_the_result(bench, ctx, prompts):
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    first = ksampler(bench, ctx, prompts, latent, seed=7)["samples"]
    assert torch.equal(first, ksampler(bench, ctx, prompts, latent, seed=7)["samples"])
    assert not torch.allclose(first, ksampler(bench, ctx, prompts, latent, seed=8)["samples"])


def test_an_interrupt_stops_sampling_within_a_step(bench, ctx, prompts):
    calls = []

    def stop_after_first_step(event):
        calls.append(event.type)
        ctx.interrupt.set()

    ctx._emit = stop_after_first_step
    with pytest.raises(ExecutionInterrupted):
        ksampler(bench, ctx, prompts, {"samples": torch.zeros(1, 4, 8, 8)}, steps=10)
    assert calls == ["progress"]


def test_split_advanced_run_equals_one_run(bench, ctx, prompts):
    model, positive, negative = prompts
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    whole = ksampler(bench, ctx, prompts, latent, steps=4, sampler_name="euler", scheduler="normal")
    common = {"noise_seed": 42, "steps": 4, "cfg": 6.5, "sampler_name": "euler", "scheduler": "normal",
              "model": model, "positive": positive, "negative": negative}  # fmt: skip
    (half,) = bench.run("KSamplerAdvanced", ctx, add_noise="enable", latent_image=latent, start_at_step=0,
                        end_at_step=2, return_with_leftover_noise="enable", **common)  # fmt: skip
    (rest,) = bench.run("KSamplerAdvanced", ctx, add_noise="disable", latent_image=half, start_at_step=2,
                        end_at_step=10000, return_with_leftover_noise="disable", **common)  # fmt: skip
    torch.testing.assert_close(rest["samples"], whole["samples"], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(half["samples"], whole["samples"])
    progress = [e.data["value"] for e in ctx.events if e.type == "progress"]
    assert progress == [1, 2, 3, 4, 1, 2, 1, 2]


def test_denoise_below_one_starts_from_the_input_latent(bench, ctx, prompts):
    model, positive, negative = prompts
    start = random_latent(1, 4, 8, 8, seed=3)
    out = ksampler(bench, ctx, prompts, {"samples": start}, steps=4, denoise=0.5)
    expected = direct(model, [Cond(positive[0][0])], [Cond(negative[0][0])], start, cfg=6.5, seed=42, steps=4,
                      sampler="euler", scheduler="karras", denoise=0.5)  # fmt: skip
    assert torch.equal(out["samples"], expected)
    full = ksampler(bench, ctx, prompts, {"samples": start}, steps=4, denoise=1.0)
    assert (out["samples"] - start).norm() < (full["samples"] - start).norm()
    untouched = ksampler(bench, ctx, prompts, {"samples": start}, denoise=0.0)
    assert torch.equal(untouched["samples"], start)


def test_area_conditioning_equals_an_area_cond(bench, ctx, prompts):
    model, positive, negative = prompts
    (corner,) = bench.run("ConditioningSetArea", conditioning=negative, width=64, height=64, x=64, y=0, strength=0.8)
    (combined,) = bench.run("ConditioningCombine", conditioning_1=positive, conditioning_2=corner)
    latent = torch.zeros(1, 4, 16, 16)
    out = ksampler(bench, ctx, (model, combined, negative), {"samples": latent})
    conds = [Cond(positive[0][0]), Cond(negative[0][0], area=(8, 8, 0, 8), strength=0.8)]
    expected = direct(model, conds, [Cond(negative[0][0])], latent, cfg=6.5, seed=42, steps=3, sampler="euler",
                      scheduler="karras")  # fmt: skip
    assert torch.equal(out["samples"], expected)
    assert not torch.equal(out["samples"], ksampler(bench, ctx, prompts, {"samples": latent})["samples"])


def test_a_noise_mask_keeps_the_unmasked_latent(bench, ctx, prompts):
    start = random_latent(1, 4, 8, 8, seed=4)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, :32] = 1.0  # regenerate the left half only
    out = ksampler(bench, ctx, prompts, {"samples": start, "noise_mask": mask})["samples"]
    # The sampler's last step lands on the kept latent up to float rounding (as in ComfyUI).
    torch.testing.assert_close(out[..., 4:], start[..., 4:], rtol=0, atol=1e-5)
    assert not torch.allclose(out[..., :4], start[..., :4])


def test_batch_index_gives_a_batch_item_its_own_noise(bench, ctx, prompts):
    pair = ksampler(bench, ctx, prompts, {"samples": torch.zeros(2, 4, 8, 8)})["samples"]
    second = ksampler(bench, ctx, prompts, {"samples": torch.zeros(1, 4, 8, 8), "batch_index": [1]})["samples"]
    torch.testing.assert_close(second[0], pair[1], rtol=1e-4, atol=1e-4)


def test_bad_inputs_name_the_input(bench, ctx, prompts):
    model, positive, negative = prompts
    with pytest.raises(NodeInputError, match="input 'latent_image': the latent has 3 channels .* takes 4"):
        ksampler(bench, ctx, prompts, {"samples": torch.zeros(1, 3, 8, 8)})
    with pytest.raises(NodeInputError, match="input 'model'"):
        ksampler(bench, ctx, ("not a model", positive, negative), {"samples": torch.zeros(1, 4, 8, 8)})
    with pytest.raises(NodeInputError, match="input 'negative'"):
        ksampler(bench, ctx, (model, positive, []), {"samples": torch.zeros(1, 4, 8, 8)})
