"""The KSampler orchestration: σ planning like ComfyUI, starting noise, img2img, inpainting, advanced splits."""

from __future__ import annotations

import math

import pytest
import torch
from sampling_toys import CountingDenoiser, gaussian_denoiser

from latentloom.diffusion.noise import initial_noise
from latentloom.diffusion.sampling import (
    InpaintDenoiser,
    ksample,
    prepare_noise_mask,
    run_sampler,
    sample_sigmas,
)
from latentloom.diffusion.schedulers import scheduler_sigmas
from latentloom.diffusion.schedules import DiscreteSchedule

SD = DiscreteSchedule.scaled_linear()


def plan(**kwargs):
    return sample_sigmas(SD, **{"sampler": "euler", "scheduler": "karras", "steps": 10, **kwargs})


def test_full_denoise_uses_the_scheduler_list():
    torch.testing.assert_close(plan(), scheduler_sigmas("karras", SD, 10))


@pytest.mark.parametrize(("steps", "denoise", "total"), [(10, 0.5, 20), (7, 0.3, 23), (20, 0.75, 26)])
def test_partial_denoise_keeps_the_last_steps_of_a_longer_schedule(steps, denoise, total):
    # ComfyUI: int(steps / denoise) steps are planned and the last steps + 1 σ kept.
    got = plan(steps=steps, denoise=denoise)
    torch.testing.assert_close(got, scheduler_sigmas("karras", SD, total)[-(steps + 1) :])
    assert len(got) == steps + 1


def test_zero_denoise_plans_nothing_and_near_one_is_full():
    assert len(plan(denoise=0.0)) == 0
    torch.testing.assert_close(plan(denoise=0.99995), plan())


def test_samplers_that_discard_the_penultimate_sigma_schedule_one_more_step():
    full = scheduler_sigmas("normal", SD, 11)
    expected = torch.cat([full[:-2], full[-1:]])
    torch.testing.assert_close(sample_sigmas(SD, sampler="dpm_2", scheduler="normal", steps=10), expected)
    assert len(sample_sigmas(SD, sampler="uni_pc", scheduler="normal", steps=10)) == 11


def test_start_and_last_step_slice_like_ksampler_advanced():
    full = plan()
    torch.testing.assert_close(plan(last_step=6), full[:7])
    cut = plan(last_step=6, force_full_denoise=True)
    torch.testing.assert_close(cut[:-1], full[:6])
    assert float(cut[-1]) == 0.0
    assert float(full[6]) != 0.0  # slicing copied; the scheduler's list is untouched
    torch.testing.assert_close(plan(start_step=3), full[3:])
    torch.testing.assert_close(plan(start_step=2, last_step=8), full[2:9])
    assert len(plan(start_step=10)) == 0
    torch.testing.assert_close(plan(last_step=50), full)


def test_txt2img_noise_is_scaled_to_the_vp_prior_at_sigma_max():
    counter = CountingDenoiser()
    latent = torch.zeros(1, 4, 8, 8)
    noise = initial_noise(1, latent.shape)
    sigmas = plan()
    run_sampler(counter, latent, sigmas, sampler="euler", seed=1, noise=noise, sigma_max=SD.sigma_max)
    first = counter.calls[0]
    assert float(first["sigma"][0]) == pytest.approx(SD.sigma_max, rel=1e-5)


def test_img2img_starts_from_the_latent_noised_to_the_first_sigma():
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    noise = initial_noise(3, latent.shape)
    sigmas = plan(denoise=0.6)
    seen = []
    run_sampler(
        gaussian_denoiser, latent, sigmas, sampler="euler", seed=3, noise=noise, sigma_max=SD.sigma_max,
        callback=lambda i, x, d, s: seen.append(x),
    )  # fmt: skip
    torch.testing.assert_close(seen[0], latent + noise * float(sigmas[0]))
    at_max = []
    run_sampler(
        gaussian_denoiser, latent, plan(), sampler="euler", seed=3, noise=noise, sigma_max=SD.sigma_max,
        callback=lambda i, x, d, s: at_max.append(x),
    )  # fmt: skip
    torch.testing.assert_close(at_max[0], latent + noise * math.sqrt(1 + float(plan()[0]) ** 2))


def test_ksample_is_reproducible_and_uses_the_seeded_initial_noise():
    latent = torch.zeros(1, 4, 8, 8)
    kwargs = {"schedule": SD, "steps": 6, "sampler": "euler", "scheduler": "karras"}
    a = ksample(gaussian_denoiser, latent, seed=42, **kwargs)
    assert torch.equal(a, ksample(gaussian_denoiser, latent, seed=42, **kwargs))
    assert not torch.equal(a, ksample(gaussian_denoiser, latent, seed=43, **kwargs))
    sigmas = plan(steps=6)
    manual = run_sampler(
        gaussian_denoiser, latent, sigmas, sampler="euler", seed=42, noise=initial_noise(42, latent.shape),
        sigma_max=SD.sigma_max,
    )  # fmt: skip
    torch.testing.assert_close(a, manual)


def test_advanced_split_with_leftover_noise_equals_one_run():
    latent = torch.zeros(1, 4, 8, 8)
    kwargs = {"schedule": SD, "seed": 7, "steps": 12, "sampler": "euler", "scheduler": "normal"}
    whole = ksample(gaussian_denoiser, latent, **kwargs)
    first = ksample(gaussian_denoiser, latent, last_step=5, return_with_leftover_noise=True, **kwargs)
    second = ksample(gaussian_denoiser, first, start_step=5, add_noise=False, **kwargs)
    torch.testing.assert_close(second, whole)
    finished = ksample(gaussian_denoiser, latent, last_step=5, **kwargs)
    assert float((finished - first).abs().max()) > 0.1  # without leftover noise the run denoises fully


def test_nothing_to_do_returns_the_latent():
    latent = torch.randn(1, 4, 8, 8)
    out = ksample(
        gaussian_denoiser, latent, schedule=SD, seed=0, steps=10, sampler="euler", scheduler="karras", start_step=10
    )
    assert out is latent


def test_inpainting_keeps_the_unmasked_latent():
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    mask = torch.zeros(64, 64)
    mask[:, 32:] = 1.0  # regenerate the right half (image resolution; resized to the latent)
    out = ksample(
        gaussian_denoiser, latent, schedule=SD, seed=1, steps=8, sampler="dpmpp_2m", scheduler="karras",
        noise_mask=mask,
    )  # fmt: skip
    torch.testing.assert_close(out[..., :4], latent[..., :4])
    assert float((out[..., 4:] - latent[..., 4:]).abs().mean()) > 0.1


def test_inpaint_denoiser_noises_the_kept_region_to_the_current_sigma():
    latent, noise = torch.ones(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    seen = {}

    def inner(x, sigma, **extra):
        seen["x"] = x
        return torch.full_like(x, 9.0)

    out = InpaintDenoiser(inner, latent, noise, mask)(torch.zeros(1, 1, 2, 2), torch.tensor([2.0]))
    torch.testing.assert_close(seen["x"], torch.tensor([[[[0.0, 2.0], [0.0, 2.0]]]]))
    torch.testing.assert_close(out, torch.tensor([[[[9.0, 1.0], [9.0, 1.0]]]]))


def test_ddim_inpaints_with_fresh_noise_from_seed_plus_one():
    latent = torch.zeros(1, 1, 4, 4)
    mask = torch.zeros(4, 4)
    mask[:, 2:] = 1.0
    sigmas = torch.tensor([2.0, 0.0])
    noise = initial_noise(10, latent.shape)
    fresh = initial_noise(11, latent.shape)
    x_seen = []
    run_sampler(
        lambda x, s, **e: x_seen.append(x) or x, latent, sigmas, sampler="ddim", seed=10, noise=noise,
        sigma_max=14.6, noise_mask=mask,
    )  # fmt: skip
    torch.testing.assert_close(x_seen[0][..., :2], fresh[..., :2] * 2.0)
    x_seen.clear()
    run_sampler(
        lambda x, s, **e: x_seen.append(x) or x, latent, sigmas, sampler="euler", seed=10, noise=noise,
        sigma_max=14.6, noise_mask=mask,
    )  # fmt: skip
    torch.testing.assert_close(x_seen[0][..., :2], noise[..., :2] * 2.0)


def test_noise_mask_is_resized_and_repeated_to_the_latent():
    mask = torch.zeros(1, 16, 16)
    mask[:, :, 8:] = 1.0
    prepared = prepare_noise_mask(mask, (3, 4, 4, 4))
    assert prepared.shape == (3, 4, 4, 4)
    torch.testing.assert_close(prepared[:, :, :, :2], torch.zeros(3, 4, 4, 2))
    torch.testing.assert_close(prepared[:, :, :, 2:], torch.ones(3, 4, 4, 2))
    assert prepare_noise_mask(torch.ones(5, 1, 8, 8), (2, 4, 8, 8)).shape == (2, 4, 8, 8)


def test_callback_sees_every_planned_step():
    steps = []
    ksample(
        gaussian_denoiser, torch.zeros(1, 4, 8, 8), schedule=SD, seed=0, steps=9, sampler="heun",
        scheduler="simple", denoise=0.5, callback=lambda i, x, d, s: steps.append(i),
    )  # fmt: skip
    assert steps == list(range(9))
