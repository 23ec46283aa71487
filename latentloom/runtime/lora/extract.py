"""A LoRA extracted from a model difference (ComfyUI's LoraSave with ``model_diff`` / ``text_encoder_diff``).

The difference is a handle whose weight patches make it ``(A − B)·k`` (ModelMergeSubtract, or
CLIPMergeSimple-style patches on the text encoder): every parameter a weight patch names is a difference.
Each one becomes, in kohya names:

- ``standard``: a weight of 2+ dimensions → ``lora_up``/``lora_down`` from a truncated SVD (the best rank-r
  approximation, split as up = U·√S, down = √S·Vᵀ; conv kernels stay in ``down``), alpha = r;
  1-dimensional weights (norms) → ``.diff`` when ``bias_diff`` is on;
- ``full_diff``: every weight → ``.diff`` (exact);
- biases → ``.diff_b`` when ``bias_diff`` is on.

Unlike ComfyUI no quantile clamp is applied to the factors: the result is the plain truncated SVD. Parameters no
patch names are not differences and are left out. SVD factors are small and made up front; full differences
are computed tensor by tensor while the file is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from latentloom.api.errors import LatentLoomError
from latentloom.runtime.handles import ClipHandle, ModelHandle
from latentloom.runtime.lora.keys import TEXT_CHECKPOINT_PREFIX, diffusers_block_prefixes, diffusers_path
from latentloom.runtime.lora.saving import TensorEntry
from latentloom.runtime.lora.weights import effective_weight, patched_keys

LoraType = Literal["standard", "full_diff"]
LORA_TYPES: tuple[LoraType, ...] = ("standard", "full_diff")
SAVED_DTYPE = torch.float16


class ExtractError(LatentLoomError):
    """A model difference a LoRA cannot be extracted from; says which input and why."""

    def __init__(self, input_name: str, message: str) -> None:
        super().__init__(message)
        self.input_name = input_name


def truncated_factors(matrix: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """(up [out, k], down [k, in]) with up·down the best rank-k approximation of ``matrix``, k ≤ rank."""
    u, s, vh = torch.linalg.svd(matrix.float(), full_matrices=False)
    k = min(rank, s.shape[0])
    root = s[:k].sqrt()
    return u[:, :k] * root, root[:, None] * vh[:k]


def extract_entries(
    *, model: ModelHandle | None, clip: ClipHandle | None, rank: int, lora_type: LoraType, bias_diff: bool
) -> list[TensorEntry]:
    """The tensors of a kohya-format LoRA file standing for the differences ``model`` and ``clip`` carry."""
    entries: list[TensorEntry] = []
    options = {"rank": rank, "lora_type": lora_type, "bias_diff": bias_diff}
    if model is not None:
        namer = _unet_namer(diffusers_block_prefixes(model.unet.config))
        entries += _module_entries(model.unet, model.patches, namer, what="model_diff", **options)
    if clip is not None:
        entries += _module_entries(clip.encoder.model, clip.patches, _text_name, what="text_encoder_diff", **options)
    return entries


def _unet_namer(prefixes: dict[str, str]) -> Callable[[str], str]:
    """kohya sd-scripts' name for a UNet layer path (diffusers layout, underscored)."""
    return lambda path: "lora_unet_" + (diffusers_path(path, prefixes) or path).replace(".", "_")


def _text_name(path: str) -> str:
    return "lora_te_" + (TEXT_CHECKPOINT_PREFIX + path.removeprefix(TEXT_CHECKPOINT_PREFIX)).replace(".", "_")


def _module_entries(
    module: nn.Module, patches: Sequence[object], name_of: Callable[[str], str], *, what: str,
    rank: int, lora_type: LoraType, bias_diff: bool,
) -> list[TensorEntry]:  # fmt: skip
    keys = patched_keys(patches)
    if not keys:
        raise ExtractError(what, "carries no weight differences: connect a ModelMergeSubtract output")
    params = dict(module.named_parameters())
    entries: list[TensorEntry] = []
    for key in sorted(keys):
        path, _, kind = key.rpartition(".")
        if kind == "bias" and bias_diff:
            entries.append(_lazy(f"{name_of(path)}.diff_b", params[key], key, patches))
        elif kind == "weight" and (lora_type == "full_diff" or params[key].dim() < 2):
            if lora_type == "full_diff" or bias_diff:
                entries.append(_lazy(f"{name_of(path)}.diff", params[key], key, patches))
        elif kind == "weight":
            entries += _low_rank(name_of(path), effective_weight(params[key], key, patches), rank)
    return entries


def _lazy(name: str, base: Tensor, key: str, patches: Sequence[object]) -> TensorEntry:
    return TensorEntry(name, tuple(base.shape), SAVED_DTYPE, lambda: effective_weight(base, key, patches))


def _low_rank(name: str, difference: Tensor, rank: int) -> list[TensorEntry]:
    up, down = truncated_factors(difference.flatten(1), rank)
    k = up.shape[1]
    if difference.dim() == 4:  # conv: the kernel stays in down, up is a 1×1 conv
        up, down = up.reshape(*up.shape, 1, 1), down.reshape(k, *difference.shape[1:])
    return [_constant(f"{name}.lora_up.weight", up), _constant(f"{name}.lora_down.weight", down),
            _constant(f"{name}.alpha", torch.tensor(float(k)))]  # fmt: skip


def _constant(name: str, tensor: Tensor) -> TensorEntry:
    value = tensor.detach().to(device="cpu", dtype=SAVED_DTYPE).contiguous()
    return TensorEntry(name, tuple(value.shape), SAVED_DTYPE, lambda: value)
