"""KSampler and KSamplerAdvanced: adapters from the node inputs to ``latentloom.diffusion.sampling.ksample``.

The UNet is moved to the compute device through the DeviceManager; conditioning becomes guidance.Conds;
every sampler step reports progress (where an interrupt stops the run) and every model call checks for
an interrupt first, so a stop lands within one step. Latents come back on the CPU in float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch
from torch import Tensor

from latentloom import api
from latentloom.api import (
    ComboInput,
    FloatInput,
    Input,
    IntInput,
    NodeInputError,
    NodeSchema,
    NodeType,
    Output,
    PreviewSettings,
)
from latentloom.diffusion.denoiser import make_denoiser
from latentloom.diffusion.guidance import Cond, cfg_denoiser
from latentloom.diffusion.inpaint import LATENT_CHANNELS, inpaint_concat, is_inpainting_model
from latentloom.diffusion.inspect.patch import patch_observer
from latentloom.diffusion.sampler_registry import SAMPLER_ALIASES, SAMPLER_NAMES
from latentloom.diffusion.samplers import Denoiser
from latentloom.diffusion.sampling import ksample, sample_sigmas
from latentloom.diffusion.schedulers import SCHEDULER_NAMES
from latentloom.diffusion.unet_call import UNetCall
from latentloom.runtime.handles import ModelHandle
from nodes.conds import to_conds
from nodes.previews import latent_preview
from nodes.values import cpu_float, latent_samples, with_samples

T = api.types
MAX_SEED = 0xFFFF_FFFF_FFFF_FFFF
MAX_STEPS = 10000


def sampler_choices() -> tuple[str, ...]:
    """Our sampler names with ComfyUI's *_gpu aliases right after the sampler they name."""
    aliases_of: dict[str, list[str]] = {}
    for alias, name in SAMPLER_ALIASES.items():
        aliases_of.setdefault(name, []).append(alias)
    return tuple(choice for name in SAMPLER_NAMES for choice in (name, *aliases_of.get(name, ())))


@dataclass(frozen=True)
class SamplingRequest:
    """One KSampler run, as the two nodes describe it."""

    seed: int
    steps: int
    cfg: float
    sampler_name: str
    scheduler: str
    denoise: float = 1.0
    start_step: int | None = None
    last_step: int | None = None
    add_noise: bool = True
    return_with_leftover_noise: bool = False


@dataclass(frozen=True)
class InterruptibleDenoiser:
    """Checks for an interrupt before every model call (samplers like heun call the model twice a step)."""

    denoiser: Denoiser
    ctx: api.ExecutionContext

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        self.ctx.check_interrupted()
        return self.denoiser(x, sigma, **extra)


class StepWatcher(Protocol):
    """Watches a sampling run: wraps the guided denoiser once, then is called after every step."""

    def watch(self, denoiser: Denoiser) -> Denoiser: ...

    def __call__(self, step: int, x: Tensor, denoised: Tensor, sigma: float) -> None: ...


def model_handle(model: Any) -> ModelHandle:
    if not isinstance(model, ModelHandle):
        raise NodeInputError("model", f"expects a MODEL, got {type(model).__name__}")
    return model


def _check_channels(model: ModelHandle, samples: Tensor) -> None:
    expected = model.unet.config.in_channels
    if is_inpainting_model(expected):
        expected = LATENT_CHANNELS  # the other 5 are the mask and image latent (diffusion.inpaint)
    if samples.shape[1] != expected:
        raise NodeInputError(
            "latent_image",
            f"the latent has {samples.shape[1]} channels but the model {model.source or ''} takes {expected}",
        )


def _with_inpaint_inputs(conds: list[Cond], concat: Tensor) -> list[Cond]:
    return [replace(cond, extra={**cond.extra, "concat": concat}) for cond in conds]


def run_ksampler(
    ctx: api.ExecutionContext,
    model: Any,
    *,
    positive: Any,
    negative: Any,
    latent: Any,
    request: SamplingRequest,
    previews: PreviewSettings = PreviewSettings(),
    watcher: StepWatcher | None = None,
) -> dict[str, Any]:
    """Sample ``latent`` (a LATENT dict) and return the new LATENT dict (other entries kept).

    Each step's progress report carries a preview of the step's denoised prediction (unless ``previews``
    is off); the server encodes it only for clients that asked for previews. ``watcher`` sees every
    evaluation of the guided denoiser and every step (the inspecting sampler's trajectory recorder)."""
    handle = model_handle(model)
    samples = latent_samples(latent, "latent_image")
    _check_channels(handle, samples)
    # On the compute device with the weight patches (LoRA, merges) applied, watched by any observer patch.
    network = UNetCall(handle.load(), observer=patch_observer(handle.patches))
    device = handle.devices.device
    conds = {side: to_conds(value, side, device=device) for side, value in (("positive", positive), ("negative", negative))}
    if is_inpainting_model(handle.unet.config.in_channels):
        concat = inpaint_concat(samples.to(device=device, dtype=torch.float32), _noise_mask(latent))
        conds = {side: _with_inpaint_inputs(side_conds, concat) for side, side_conds in conds.items()}
    denoiser = make_denoiser(network, handle.schedule, prediction=handle.prediction_type.value)
    guided = cfg_denoiser(InterruptibleDenoiser(denoiser, ctx), conds["positive"], conds["negative"],
                          cfg=request.cfg, schedule=handle.schedule)  # fmt: skip
    if watcher is not None:
        guided = watcher.watch(guided)
    total = _step_count(handle, request)

    def on_step(step: int, x: Tensor, denoised: Tensor, sigma: float) -> None:
        if watcher is not None:
            watcher(step, x, denoised, sigma)
        ctx.progress(step + 1, total, preview=latent_preview(denoised, previews))

    with torch.inference_mode():
        result = ksample(
            guided,
            samples.to(device=device, dtype=torch.float32),
            schedule=handle.schedule,
            seed=request.seed,
            steps=request.steps,
            sampler=request.sampler_name,
            scheduler=request.scheduler,
            denoise=request.denoise,
            start_step=request.start_step,
            last_step=request.last_step,
            add_noise=request.add_noise,
            return_with_leftover_noise=request.return_with_leftover_noise,
            noise_mask=_noise_mask(latent),
            batch_indices=_batch_indices(latent, samples.shape[0]),
            callback=on_step,
        )
    return with_samples(latent, cpu_float(result))


def _step_count(handle: ModelHandle, request: SamplingRequest) -> int:
    sigmas = sample_sigmas(
        handle.schedule, sampler=request.sampler_name, scheduler=request.scheduler, steps=request.steps,
        denoise=request.denoise, start_step=request.start_step, last_step=request.last_step,
        force_full_denoise=not request.return_with_leftover_noise,
    )  # fmt: skip
    return max(0, len(sigmas) - 1)


def _noise_mask(latent: Mapping[str, Any]) -> Tensor | None:
    mask = latent.get("noise_mask")
    if mask is not None and not isinstance(mask, Tensor):
        raise NodeInputError("latent_image", f"'noise_mask' must be a tensor, got {type(mask).__name__}")
    return mask


def _batch_indices(latent: Mapping[str, Any], batch: int) -> list[int] | None:
    indices = latent.get("batch_index")
    if indices is None:
        return None
    indices = [int(i) for i in indices]
    if len(indices) != batch or min(indices) < 0:
        raise NodeInputError("latent_image", f"'batch_index' {indices} does not fit a batch of {batch}")
    return indices


def _sampling_inputs(seed_name: str) -> tuple[Input, ...]:
    """model, the seed, steps, cfg, sampler_name and scheduler: the inputs both KSampler nodes start with."""
    return (
        Input("model", T.MODEL, tooltip="The model used for denoising the input latent."),
        IntInput(seed_name, default=0, min=0, max=MAX_SEED, control_after_generate=True,
                 tooltip="The random seed used for creating the noise."),  # fmt: skip
        IntInput("steps", default=20, min=1, max=MAX_STEPS, tooltip="The number of denoising steps."),
        FloatInput("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,
                   tooltip="Classifier-free guidance scale: how strongly the prompt steers the image."),  # fmt: skip
        ComboInput("sampler_name", choices=sampler_choices(), tooltip="The sampling algorithm."),
        ComboInput("scheduler", choices=SCHEDULER_NAMES, tooltip="How the noise levels are spaced over the steps."),
    )


def _guidance_inputs() -> tuple[Input, ...]:
    return (
        Input("positive", T.CONDITIONING, tooltip="What the image should contain."),
        Input("negative", T.CONDITIONING, tooltip="What the image should not contain."),
        Input("latent_image", T.LATENT, tooltip="The latent image to denoise."),
    )


def ksampler_inputs() -> tuple[Input, ...]:
    """KSampler's inputs in its order (the inspecting sampler takes the same ones first)."""
    return (
        *_sampling_inputs("seed"),
        *_guidance_inputs(),
        FloatInput("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                   tooltip="How much to denoise: below 1 keeps the structure of the input latent (img2img)."),  # fmt: skip
    )


class KSampler(NodeType):
    schema = NodeSchema(
        type="KSampler",
        display_name="KSampler",
        category="sampling",
        description="Denoises the latent with the model, guided by the positive and negative conditioning.",
        required=(
            *ksampler_inputs(),
        ),
        outputs=(Output(T.LATENT, tooltip="The denoised latent."),),
    )

    def __init__(self, previews: PreviewSettings = PreviewSettings()) -> None:
        self.previews = previews

    def execute(
        self, ctx: api.ExecutionContext, *, model: Any, seed: int, steps: int, cfg: float, sampler_name: str,
        scheduler: str, positive: Any, negative: Any, latent_image: Any, denoise: float,
    ) -> tuple:  # fmt: skip
        request = SamplingRequest(seed=seed, steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler,
                                  denoise=denoise)  # fmt: skip
        return (run_ksampler(ctx, model, positive=positive, negative=negative, latent=latent_image, request=request,
                             previews=self.previews),)  # fmt: skip


class KSamplerAdvanced(NodeType):
    schema = NodeSchema(
        type="KSamplerAdvanced",
        display_name="KSampler (Advanced)",
        category="sampling",
        description="KSampler over a range of the steps, with or without adding noise, for multi-stage sampling.",
        required=(
            Input("model", T.MODEL),
            ComboInput("add_noise", choices=("enable", "disable")),
            *_sampling_inputs("noise_seed")[1:],
            *_guidance_inputs(),
            IntInput("start_at_step", default=0, min=0, max=MAX_STEPS),
            IntInput("end_at_step", default=MAX_STEPS, min=0, max=MAX_STEPS),
            ComboInput("return_with_leftover_noise", choices=("disable", "enable")),
        ),
        outputs=(Output(T.LATENT),),
    )

    def __init__(self, previews: PreviewSettings = PreviewSettings()) -> None:
        self.previews = previews

    def execute(
        self, ctx: api.ExecutionContext, *, model: Any, add_noise: str, noise_seed: int, steps: int, cfg: float,
        sampler_name: str, scheduler: str, positive: Any, negative: Any, latent_image: Any, start_at_step: int,
        end_at_step: int, return_with_leftover_noise: str,
    ) -> tuple:  # fmt: skip
        request = SamplingRequest(
            seed=noise_seed, steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler,
            start_step=start_at_step, last_step=end_at_step, add_noise=add_noise == "enable",
            return_with_leftover_noise=return_with_leftover_noise == "enable",
        )  # fmt: skip
        return (run_ksampler(ctx, model, positive=positive, negative=negative, latent=latent_image, request=request,
                             previews=self.previews),)  # fmt: skip
