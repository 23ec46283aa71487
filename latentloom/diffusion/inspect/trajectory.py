"""Captures across a sampling run: one entry per sampler step.

Samplers call the model one or more times per step and the step callback (``callback(i, x, denoised,
sigma)``) right after the step's first model evaluation, the one at the step's own σ; second evaluations
(heun, dpm_2, the SDE samplers' midpoints) come after the callback. So the recorder watches the denoiser to
see where each evaluation starts among the observer's passes: at callback i the latest evaluation is step i's
own, its first UNet pass is the model at σ_i with the positive conds first (guidance batches the positive
side first), and the passes before it were the previous step's extras (counted there, then dropped). Each
kept pass is already reduced (statistics, per-resolution token maps of the chosen tokens), so a long run
stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import Tensor

from latentloom.diffusion.inspect.capture import CaptureOptions, InspectionObserver, PassCapture
from latentloom.diffusion.samplers import Denoiser


class TrajectoryError(RuntimeError):
    """The sampler and the observer disagree (a step with no recorded UNet pass)."""


def trajectory_options(*, tokens: Sequence[int] | None, rows: int | None = None) -> CaptureOptions:
    """Per step: statistics of every block and layer, and per-resolution maps of ``tokens`` only."""
    return CaptureOptions(
        feature_maps=False,
        tokens=None if tokens is None else tuple(tokens),
        layer_maps=False,
        rows=rows,
    )


@dataclass(frozen=True)
class StepCapture:
    step: int  # the sampler's step index, 0-based
    sigma: float  # the σ the step started from
    capture: PassCapture  # the model's pass at that σ
    passes: int  # UNet passes the step made (2 for heun-like samplers, more when conds run separately)
    denoised: Tensor  # (rows, channels, h, w) the step's estimate of the clean latent, CPU float32


class TrajectoryRecorder:
    """Wrap the sampler's denoiser with ``watch`` and pass the recorder as (part of) the step callback; call
    ``finish`` after the run; read ``steps``."""

    def __init__(self, observer: InspectionObserver, *, rows: int | None = None) -> None:
        self.observer = observer
        self.rows = rows
        self.steps: list[StepCapture] = []
        self._evaluations: list[int] = []  # where each model evaluation since the last step began in passes

    def watch(self, denoiser: Denoiser) -> Denoiser:
        """The same denoiser, noting where each of its evaluations starts among the observer's passes."""

        def watched(x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
            self._evaluations.append(len(self.observer.passes))
            return denoiser(x, sigma, **extra)

        return watched

    def __call__(self, step: int, x: Tensor, denoised: Tensor, sigma: float) -> None:
        passes = self.observer.passes
        start = self._evaluations[-1] if self._evaluations else len(passes)
        if start >= len(passes):
            raise TrajectoryError(f"step {step}: the model reported no UNet pass to the observer (is it watched?)")
        self._count_extra(start)
        estimate = denoised if self.rows is None else denoised[: self.rows]
        self.steps.append(
            StepCapture(
                step=int(step),
                sigma=float(sigma),
                capture=passes[start],
                passes=len(passes) - start,
                denoised=estimate.detach().float().cpu(),
            )
        )
        passes.clear()  # only the step's own first pass is kept
        self._evaluations.clear()

    def finish(self) -> None:
        """Count the passes made after the last step's callback (its second evaluations) and drop them."""
        self._count_extra(len(self.observer.passes))
        self.observer.passes.clear()
        self._evaluations.clear()

    def _count_extra(self, passes: int) -> None:
        if self.steps and passes:
            self.steps[-1] = replace(self.steps[-1], passes=self.steps[-1].passes + passes)
