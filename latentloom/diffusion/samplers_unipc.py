"""UniPC: the unified predictor–corrector multistep sampler (Zhao et al. 2023, "UniPC: A Unified
Predictor-Corrector Framework for Fast Sampling of Diffusion Models").

Same signature and conventions as samplers.py. This is ComfyUI's variant: data prediction, order
min(3, steps - 1) with lower orders while history builds up and at the end, the corrector (UniC) on every step
but the last, and B(h) = h ("bh1", ComfyUI's "uni_pc") or e^h - 1 ("bh2", "uni_pc_bh2"). The method is
written in λ = -log σ on the variance-exploding latent, which is the same update as the variance-preserving
form of the paper. λ(0) is infinite, so a final σ of 0 is replaced by 0.001 as ComfyUI does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from latentloom.diffusion.samplers import (
    Denoiser,
    ExtraArgs,
    NoiseSampler,
    SamplerError,
    Sigmas,
    StepCallback,
    denoise,
    report,
    sigma_floats,
)

FINAL_SIGMA = 0.001


@torch.no_grad()
def sample_uni_pc(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
    variant: str = "bh1",
    order: int = 3,
) -> Tensor:
    """UniPC-p with UniC (Zhao et al. 2023, Algorithms 1–3), multistep, data prediction."""
    if variant not in ("bh1", "bh2"):
        raise SamplerError(f"UniPC variant must be 'bh1' or 'bh2', got {variant!r}")
    s = sigma_floats(sigmas)
    steps = len(s) - 1
    if steps < 1:
        return x
    s[-1] = s[-1] or FINAL_SIGMA
    order = max(1, min(order, steps - 1))
    denoised = denoise(denoiser, x, s[0], extra_args)
    report(callback, 0, x, denoised, s[0])
    history = [(-math.log(s[0]), denoised)]  # (λ, denoised) of the last `order` points, oldest first
    for step in range(1, steps + 1):
        step_order = min(order, step, steps + 1 - step)
        evaluate = None
        if step < steps:  # the corrector needs the model at the new point, which the next step reuses
            evaluate = _evaluator(denoiser, s[step], extra_args)
        x, denoised = _uni_pc_update(x, history, s[step - 1], s[step], step_order, variant, evaluate)
        if denoised is not None:
            report(callback, step, x, denoised, s[step])
            history = [*history, (-math.log(s[step]), denoised)][-order:]
    return x


@torch.no_grad()
def sample_uni_pc_bh2(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Sigmas,
    *,
    extra_args: ExtraArgs = None,
    callback: StepCallback | None = None,
    noise: NoiseSampler | None = None,
    order: int = 3,
) -> Tensor:
    """UniPC with B(h) = e^h - 1 (Zhao et al. 2023, "bh2"); see ``sample_uni_pc``."""
    return sample_uni_pc(
        denoiser, x, sigmas, extra_args=extra_args, callback=callback, variant="bh2", order=order
    )


def _evaluator(denoiser, sigma: float, extra_args) -> Callable[[Tensor], Tensor]:
    return lambda x: denoise(denoiser, x, sigma, extra_args)


def _uni_pc_update(x, history, sigma_prev, sigma, order, variant, evaluate):
    """One UniP step of ``order`` from σ_prev to σ, then UniC when ``evaluate`` is given.

    Returns the new x and the denoised estimate at the predicted point (None without the corrector)."""
    lambda_prev, denoised_prev = history[-1]
    h = -math.log(sigma) - lambda_prev
    rks = [(history[-(k + 1)][0] - lambda_prev) / h for k in range(1, order)] + [1.0]
    differences = [(history[-(k + 1)][1] - denoised_prev) / rks[k - 1] for k in range(1, order)]
    h_phi_1 = math.expm1(-h)
    b_h = -h if variant == "bh1" else math.expm1(-h)
    r_matrix, b_vector = _order_conditions(rks, h, b_h)
    x_base = (sigma / sigma_prev) * x - h_phi_1 * denoised_prev
    x_pred = x_base
    if differences:
        rhos_p = [0.5] if order == 2 else np.linalg.solve(r_matrix[:-1, :-1], b_vector[:-1]).tolist()
        x_pred = x_base - b_h * _weighted_sum(rhos_p, differences)
    if evaluate is None:
        return x_pred, None
    denoised_new = evaluate(x_pred)
    rhos_c = [0.5] if order == 1 else np.linalg.solve(r_matrix, b_vector).tolist()
    correction = rhos_c[-1] * (denoised_new - denoised_prev)
    if differences:
        correction = correction + _weighted_sum(rhos_c[:-1], differences)
    return x_base - b_h * correction, denoised_new


def _order_conditions(rks: list[float], h: float, b_h: float) -> tuple[np.ndarray, np.ndarray]:
    """UniPC's linear system R·ρ = b: R[i][k] = r_k^i and b_i = i!·φ_(i+1)(-h)·(-h)/B(h), i = 0 … p-1,
    with the φ functions built by their recurrence from h·φ_1 = e^(-h) - 1."""
    hh = -h
    h_phi_k = math.expm1(hh) / hh - 1
    factorial = 1
    b_vector = []
    for i in range(1, len(rks) + 1):
        b_vector.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    r_matrix = np.array([[rk ** (i - 1) for rk in rks] for i in range(1, len(rks) + 1)])
    return r_matrix, np.array(b_vector)


def _weighted_sum(weights, tensors: list[Tensor]) -> Tensor:
    total = tensors[0] * float(weights[0])
    for weight, tensor in zip(weights[1:], tensors[1:], strict=True):
        total = total + tensor * float(weight)
    return total
