"""Trajectories: one entry per sampler step, reduced captures, and an inspecting sampler whose latent is
KSampler's, bit for bit."""

from __future__ import annotations

import json

import pytest
import torch

from latentloom.diffusion.denoiser import make_denoiser
from latentloom.diffusion.guidance import Cond, cfg_denoiser
from latentloom.diffusion.inspect.capture import InspectionObserver
from latentloom.diffusion.inspect.trajectory import TrajectoryError, TrajectoryRecorder, trajectory_options
from latentloom.diffusion.sampling import ksample, sample_sigmas
from latentloom.diffusion.schedules import DiscreteSchedule
from latentloom.diffusion.unet_call import UNetCall

PROMPT = "a horse in a field"
SCHEDULE = DiscreteSchedule.scaled_linear()


def sample_recorded(unet, *, sampler: str, steps: int, tokens=(1, 2)):
    generator = torch.Generator().manual_seed(3)
    positive = Cond(torch.randn(1, 6, unet.config.context_dim, generator=generator))
    negative = Cond(torch.randn(1, 6, unet.config.context_dim, generator=generator))
    observer = InspectionObserver(trajectory_options(tokens=tokens, rows=2))
    recorder = TrajectoryRecorder(observer, rows=2)
    guided = cfg_denoiser(make_denoiser(UNetCall(unet, observer), SCHEDULE), [positive], [negative], cfg=5.0)
    with torch.inference_mode():
        ksample(recorder.watch(guided), torch.zeros(2, 4, 6, 8), schedule=SCHEDULE, seed=1, steps=steps,
                sampler=sampler, scheduler="karras", callback=recorder)  # fmt: skip
    recorder.finish()
    return recorder.steps


@pytest.mark.parametrize(("sampler", "passes"), [("euler", 1), ("dpmpp_2m", 1), ("heun", 2), ("dpm_2_ancestral", 2)])
def test_one_entry_per_step_at_the_steps_sigma(tiny_unet, sampler, passes) -> None:
    steps = sample_recorded(tiny_unet, sampler=sampler, steps=4)
    sigmas = sample_sigmas(SCHEDULE, sampler=sampler, scheduler="karras", steps=4)
    assert [s.step for s in steps] == list(range(len(sigmas) - 1))
    assert [s.sigma for s in steps] == pytest.approx([float(v) for v in sigmas[:-1]])
    # the last step ends at σ = 0, where the two-pass samplers take a single Euler step
    assert [s.passes for s in steps[:-1]] == [passes] * (len(steps) - 1) and steps[-1].passes == 1


def test_each_step_keeps_only_reduced_data_of_the_positive_rows(tiny_unet) -> None:
    steps = sample_recorded(tiny_unet, sampler="euler", steps=3, tokens=(2,))
    for step in steps:
        capture = step.capture
        assert all(b.magnitude is None and b.pca is None for b in capture.blocks.values())
        assert all(len(b.statistics.std) == 2 for b in capture.blocks.values())  # rows 0-1 of the batch of 4
        assert all(a.token_maps is None and a.probabilities is None for a in capture.attention)
        assert capture.level_maps((6, 8)).shape == (2, 1, 6, 8)
        assert step.denoised.shape == (2, 4, 6, 8)


def test_a_step_without_a_pass_is_an_error(tiny_unet) -> None:
    recorder = TrajectoryRecorder(InspectionObserver())
    with pytest.raises(TrajectoryError, match="step 0"):
        recorder(0, torch.zeros(1), torch.zeros(1), 1.0)


def test_conds_run_apart_are_one_step_whose_first_pass_is_the_positive_side(tiny_unet) -> None:
    """Contexts of 5 and 7 tokens cannot share a batch: each evaluation makes two passes, positive first."""
    generator = torch.Generator().manual_seed(4)
    positive = Cond(torch.randn(1, 5, tiny_unet.config.context_dim, generator=generator))
    negative = Cond(torch.randn(1, 7, tiny_unet.config.context_dim, generator=generator))
    observer = InspectionObserver(trajectory_options(tokens=None))
    recorder = TrajectoryRecorder(observer)
    guided = cfg_denoiser(make_denoiser(UNetCall(tiny_unet, observer), SCHEDULE), [positive], [negative], cfg=5.0)
    with torch.inference_mode():
        ksample(recorder.watch(guided), torch.zeros(1, 4, 6, 8), schedule=SCHEDULE, seed=1, steps=3,
                sampler="heun", scheduler="normal", callback=recorder)  # fmt: skip
    recorder.finish()
    assert [s.passes for s in recorder.steps] == [4, 4, 2]
    assert all(s.capture.attention[0].context_tokens == 5 for s in recorder.steps)


@pytest.fixture(scope="module")
def encoded(bench, loaded):
    _, clip, _ = loaded
    encode = bench.registry.get("CLIPTextEncode")
    return encode.execute(None, text=PROMPT, clip=clip)[0], encode.execute(None, text="", clip=clip)[0]


def sampler_inputs(loaded, encoded, **changes):
    positive, negative = encoded
    latent = {"samples": torch.zeros(1, 4, 6, 8)}
    return dict(model=loaded[0], seed=7, steps=5, cfg=6.0, sampler_name="euler_ancestral", scheduler="normal",
                positive=positive, negative=negative, latent_image=latent, denoise=1.0) | changes  # fmt: skip


@pytest.mark.parametrize("sampler", ["euler_ancestral", "heun", "dpmpp_2m_sde"])
def test_the_inspecting_sampler_gives_kSamplers_latent_bit_for_bit(bench, ctx, loaded, encoded, sampler) -> None:
    inputs = sampler_inputs(loaded, encoded, sampler_name=sampler)
    [expected] = bench.outputs("KSampler", ctx, **inputs)
    result = bench.run("InspectingKSampler", ctx, **inputs, blocks="all", tokens="horse", vae=loaded[2],
                       prompt_text=PROMPT)  # fmt: skip
    latent, plots = result.outputs
    assert torch.equal(latent["samples"], expected["samples"])
    assert plots.ndim == 4 and plots.shape[0] == 1


def test_the_trajectory_report_has_one_entry_per_step(bench, ctx, loaded, encoded) -> None:
    result = bench.run("InspectingKSampler", ctx, **sampler_inputs(loaded, encoded, steps=6), blocks="M00, OUT03",
                       tokens="horse, field", prompt_text=PROMPT)  # fmt: skip
    [report] = result.ui["inspection"]
    json.dumps(report, allow_nan=False)
    assert report["kind"] == "unet_trajectory"
    assert [entry["step"] for entry in report["steps"]] == list(range(6))
    assert [t["text"] for t in report["tokens"]] == ["horse", "field"]
    first = report["steps"][0]
    assert set(first["tokens"]) == {"2:horse", "5:field"}
    assert set(first["attention_entropy"]) == {"6x8", "3x4"}
    assert 0 <= first["tokens"]["2:horse"]["concentration"] <= 1
    sigmas = [entry["sigma"] for entry in report["steps"]]
    assert sigmas == sorted(sigmas, reverse=True)
    progress = [event for event in ctx.events if event.type == "progress"]
    assert [event.data["value"] for event in progress] == [1, 2, 3, 4, 5, 6]
    [saved] = result.ui["images"]
    assert (bench.folders.temp_dir / saved["filename"]).is_file()
