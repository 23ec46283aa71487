"""The samplers by ComfyUI's KSampler names, with what the KSampler needs to know to run each one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from torch import Tensor

from latentloom.diffusion import samplers as first_order
from latentloom.diffusion import samplers_dpmpp as dpmpp
from latentloom.diffusion.samplers import SamplerError
from latentloom.diffusion.samplers_unipc import sample_uni_pc, sample_uni_pc_bh2

NoiseKind = Literal["none", "gaussian", "brownian"]


@dataclass(frozen=True)
class SamplerSpec:
    function: Callable[..., Tensor]
    # Which noise sampler it draws from: none, independent Gaussians, or a Brownian tree (SDE samplers).
    noise: NoiseKind = "none"
    # ComfyUI schedules one step more and drops the next-to-last σ for these (they end better that way).
    discard_penultimate_sigma: bool = False
    # Inpainting keeps the unmasked area noised with fresh seeded noise instead of the initial noise.
    fresh_inpaint_noise: bool = False


SAMPLERS: Mapping[str, SamplerSpec] = MappingProxyType({
    "euler": SamplerSpec(first_order.sample_euler),
    "euler_ancestral": SamplerSpec(first_order.sample_euler_ancestral, noise="gaussian"),
    "heun": SamplerSpec(first_order.sample_heun),
    "dpm_2": SamplerSpec(first_order.sample_dpm_2, discard_penultimate_sigma=True),
    "dpm_2_ancestral": SamplerSpec(
        first_order.sample_dpm_2_ancestral, noise="gaussian", discard_penultimate_sigma=True
    ),
    "lms": SamplerSpec(first_order.sample_lms),
    "dpmpp_2s_ancestral": SamplerSpec(dpmpp.sample_dpmpp_2s_ancestral, noise="gaussian"),
    "dpmpp_sde": SamplerSpec(dpmpp.sample_dpmpp_sde, noise="brownian"),
    "dpmpp_2m": SamplerSpec(dpmpp.sample_dpmpp_2m),
    "dpmpp_2m_sde": SamplerSpec(dpmpp.sample_dpmpp_2m_sde, noise="brownian"),
    "dpmpp_2m_sde_heun": SamplerSpec(dpmpp.sample_dpmpp_2m_sde_heun, noise="brownian"),
    "dpmpp_3m_sde": SamplerSpec(dpmpp.sample_dpmpp_3m_sde, noise="brownian"),
    "ddpm": SamplerSpec(first_order.sample_ddpm, noise="gaussian"),
    "lcm": SamplerSpec(first_order.sample_lcm, noise="gaussian"),
    "ddim": SamplerSpec(first_order.sample_ddim, fresh_inpaint_noise=True),
    "uni_pc": SamplerSpec(sample_uni_pc, discard_penultimate_sigma=True),
    "uni_pc_bh2": SamplerSpec(sample_uni_pc_bh2, discard_penultimate_sigma=True),
})

# ComfyUI's order (its KSAMPLER_NAMES, then ddim and the UniPC pair); the first is the default.
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)

# ComfyUI names for the same samplers with the Brownian tree on the GPU. Ours is always built on the CPU
# (device-independent), so these give the numbers of the CPU-tree names, not of ComfyUI's GPU tree.
SAMPLER_ALIASES: Mapping[str, str] = MappingProxyType({
    "dpmpp_sde_gpu": "dpmpp_sde",
    "dpmpp_2m_sde_gpu": "dpmpp_2m_sde",
    "dpmpp_2m_sde_heun_gpu": "dpmpp_2m_sde_heun",
    "dpmpp_3m_sde_gpu": "dpmpp_3m_sde",
})


def sampler_spec(name: str) -> SamplerSpec:
    """The sampler called ``name`` (or one of ComfyUI's *_gpu aliases)."""
    spec = SAMPLERS.get(SAMPLER_ALIASES.get(name, name))
    if spec is None:
        raise SamplerError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLER_NAMES)}")
    return spec
