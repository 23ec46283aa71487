"""Schedulers: the list of σ a sampler walks, from high noise down to 0, under ComfyUI's names.

Every scheduler returns a float32 CPU tensor of (usually) n + 1 values whose last is 0. The ones defined by a
formula are pure functions of (n, sigma_min, sigma_max); the ones that pick entries of a discrete model's σ
table take that ``DiscreteSchedule`` explicitly. Numbers match ComfyUI 0.8.0 (see the reference JSON in
shared/), including its float32 arithmetic and its quirks (ddim_uniform may return one step more than asked).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch
from torch import Tensor

from latentloom.diffusion.schedules import DiscreteSchedule


def _append_zero(sigmas: Tensor) -> Tensor:
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def _check_steps(n: int) -> None:
    if n < 1:
        raise ValueError(f"a schedule needs at least 1 step, got {n}")


# --- pure functions of (n, sigma_min, sigma_max) ---------------------------------------------------------


def karras(n: int, sigma_min: float, sigma_max: float, *, rho: float = 7.0) -> Tensor:
    """Karras et al. (2022), "Elucidating the Design Space of Diffusion-Based Generative Models", eq. 5:
    σ_i = (σ_max^(1/ρ) + i/(n-1)·(σ_min^(1/ρ) - σ_max^(1/ρ)))^ρ."""
    _check_steps(n)
    ramp = torch.linspace(0, 1, n)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    return _append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def exponential(n: int, sigma_min: float, sigma_max: float) -> Tensor:
    """σ evenly spaced in log σ from σ_max to σ_min."""
    _check_steps(n)
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def kl_optimal(n: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Sabour et al. (2024), "Align Your Steps": σ evenly spaced in arctan σ (the KL-optimal schedule)."""
    _check_steps(n)
    if n == 1:
        return torch.tensor([sigma_max, 0.0])
    fractions = torch.arange(n, dtype=torch.float32) / (n - 1)
    return _append_zero((fractions * math.atan(sigma_min) + (1 - fractions) * math.atan(sigma_max)).tan())


def linear_quadratic(
    n: int, sigma_min: float, sigma_max: float, *, threshold_noise: float = 0.025, linear_steps: int | None = None
) -> Tensor:
    """Genmo's Mochi schedule: linear in the first half up to ``threshold_noise``, then quadratic to 1,
    as fractions of σ_max (σ_min is unused, as in ComfyUI)."""
    _check_steps(n)
    if n == 1:
        return torch.tensor([sigma_max, 0.0])
    linear_steps = n // 2 if linear_steps is None else linear_steps
    linear = [i * threshold_noise / linear_steps for i in range(linear_steps)]
    step_diff = linear_steps - threshold_noise * n
    quadratic_steps = n - linear_steps
    quadratic_coef = step_diff / (linear_steps * quadratic_steps**2)
    linear_coef = threshold_noise / linear_steps - 2 * step_diff / (quadratic_steps**2)
    const = quadratic_coef * linear_steps**2
    quadratic = [quadratic_coef * i**2 + linear_coef * i + const for i in range(linear_steps, n)]
    fractions = [1.0 - f for f in (*linear, *quadratic, 1.0)]
    return torch.tensor(fractions, dtype=torch.float32) * torch.tensor(sigma_max, dtype=torch.float32)


# --- schedules that walk the model's σ table ---------------------------------------------------------------


def normal(schedule: DiscreteSchedule, n: int) -> Tensor:
    """σ at n timesteps evenly spaced from t(σ_max) to t(σ_min), both ends included."""
    _check_steps(n)
    start = schedule.sigma_to_timestep(schedule.sigma_max)
    end = schedule.sigma_to_timestep(schedule.sigma_min)
    return _append_zero(schedule.timestep_to_sigma(torch.linspace(float(start), float(end), n)))


def sgm_uniform(schedule: DiscreteSchedule, n: int) -> Tensor:
    """Like ``normal`` but the last timestep is left out (SGM/SDXL-style "trailing" spacing)."""
    _check_steps(n)
    start = schedule.sigma_to_timestep(schedule.sigma_max)
    end = schedule.sigma_to_timestep(schedule.sigma_min)
    return _append_zero(schedule.timestep_to_sigma(torch.linspace(float(start), float(end), n + 1)[:-1]))


def simple(schedule: DiscreteSchedule, n: int) -> Tensor:
    """Every (N/n)-th entry of the table, walking down from σ_max."""
    _check_steps(n)
    stride = schedule.num_timesteps / n
    indices = [schedule.num_timesteps - 1 - int(i * stride) for i in range(n)]
    return _append_zero(schedule.sigmas[indices])


def ddim_uniform(schedule: DiscreteSchedule, n: int) -> Tensor:
    """DDIM's uniform timesteps 1, 1+k, 1+2k, … with k = N // n, descending. When N is not a multiple of n
    this yields more than n steps, exactly as ComfyUI does."""
    _check_steps(n)
    stride = max(schedule.num_timesteps // n, 1)
    indices = list(range(1, schedule.num_timesteps, stride))[::-1]
    return _append_zero(schedule.sigmas[indices])


def beta_quantiles(schedule: DiscreteSchedule, n: int, *, alpha: float = 0.6, beta: float = 0.6) -> Tensor:
    """Lee et al. (2024), "Beta Sampling is All You Need" (arXiv:2407.12173): timesteps at the quantiles of a
    Beta(α, β) distribution, rounded to the table; repeated timesteps are dropped."""
    _check_steps(n)
    last = schedule.num_timesteps - 1
    levels = 1 - np.linspace(0, 1, n, endpoint=False)
    timesteps = [int(np.rint(beta_ppf(float(q), alpha, beta) * last)) for q in levels]
    unique = [t for i, t in enumerate(timesteps) if i == 0 or t != timesteps[i - 1]]
    return _append_zero(schedule.sigmas[unique])


def beta_ppf(q: float, a: float, b: float) -> float:
    """Inverse CDF of the Beta(a, b) distribution, by bisection on the regularized incomplete beta function."""
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    if a == b and q == 0.5:
        # The median of a symmetric Beta is exactly 1/2; bisection lands an ulp off, and ComfyUI's
        # np.rint(0.5 * 999) rounds that tie to even (500), so the exact value matters.
        return 0.5
    low, high = 0.0, 1.0
    for _ in range(100):
        mid = (low + high) / 2
        if _regularized_incomplete_beta(mid, a, b) < q:
            low = mid
        else:
            high = mid
        if high - low < 1e-15:
            break
    return (low + high) / 2


def _regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) by its continued fraction (Numerical Recipes §6.4), using the symmetry for fast convergence."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(1.0 - x, b, a) / b


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """Lentz's evaluation of the continued fraction for I_x(a, b)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-16:
            break
    return result


# --- registry ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchedulerSpec:
    """A scheduler and how it is called: on the model's table, or on (n, sigma_min, sigma_max)."""

    function: Callable[..., Tensor]
    uses_table: bool


SCHEDULERS: Mapping[str, SchedulerSpec] = MappingProxyType({
    "simple": SchedulerSpec(simple, uses_table=True),
    "sgm_uniform": SchedulerSpec(sgm_uniform, uses_table=True),
    "karras": SchedulerSpec(karras, uses_table=False),
    "exponential": SchedulerSpec(exponential, uses_table=False),
    "ddim_uniform": SchedulerSpec(ddim_uniform, uses_table=True),
    "beta": SchedulerSpec(beta_quantiles, uses_table=True),
    "normal": SchedulerSpec(normal, uses_table=True),
    "linear_quadratic": SchedulerSpec(linear_quadratic, uses_table=False),
    "kl_optimal": SchedulerSpec(kl_optimal, uses_table=False),
})

# ComfyUI 0.8.0's order (its SCHEDULER_HANDLERS); the first is the KSampler's fallback.
SCHEDULER_NAMES: tuple[str, ...] = tuple(SCHEDULERS)


def scheduler_sigmas(name: str, schedule: DiscreteSchedule, steps: int) -> Tensor:
    """The σ list of scheduler ``name`` for a model with this σ table."""
    spec = SCHEDULERS.get(name)
    if spec is None:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {', '.join(SCHEDULER_NAMES)}")
    if spec.uses_table:
        return spec.function(schedule, steps)
    return spec.function(steps, schedule.sigma_min, schedule.sigma_max)
