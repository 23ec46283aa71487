"""MODEL + CLIP + VAE → the tensors of a single-file SD1 checkpoint, in the layout the loader reads.

Every patched tensor (LoRA, merges) is computed only when the writer asks for it, so saving a merge of
two full-size checkpoints holds the two inputs and one merged tensor at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from latentloom.runtime.clip_text import CHECKPOINT_PREFIX
from latentloom.runtime.detect import (
    POSITION_IDS,
    TEXT_ENCODER_PREFIX,
    UNET_PREFIX,
    V_PRED_MARKER,
    VAE_PREFIX,
    PredictionType,
)
from latentloom.runtime.handles import ClipHandle, ModelHandle, VaeHandle
from latentloom.runtime.lora.saving import TensorEntry, save_new
from latentloom.runtime.lora.weights import effective_weight, patched_keys


def module_entries(
    module: nn.Module, patches: Sequence[object], *, rename: Callable[[str], str] = lambda key: key
) -> list[TensorEntry]:
    """One entry per state-dict tensor, patched lazily where a weight patch names it."""
    keys = patched_keys(patches)
    entries = []
    for key, tensor in module.state_dict().items():
        compute = _patched(tensor, key, patches) if key in keys else _as_is(tensor)
        entries.append(TensorEntry(rename(key), tuple(tensor.shape), tensor.dtype, compute))
    return entries


def _patched(tensor: Tensor, key: str, patches: Sequence[object]) -> Callable[[], Tensor]:
    return lambda: effective_weight(tensor, key, patches)


def _as_is(tensor: Tensor) -> Callable[[], Tensor]:
    return lambda: tensor


def checkpoint_entries(model: ModelHandle, clip: ClipHandle, vae: VaeHandle) -> list[TensorEntry]:
    entries = module_entries(model.unet, model.patches, rename=lambda key: UNET_PREFIX + key)
    entries += module_entries(clip.encoder.model, clip.patches, rename=_text_checkpoint_key)
    positions = clip.encoder.chunk_length
    position_ids = torch.arange(positions, dtype=torch.int64).unsqueeze(0)
    entries.append(TensorEntry(POSITION_IDS, (1, positions), torch.int64, _as_is(position_ids)))
    entries += module_entries(vae.vae, (), rename=lambda key: VAE_PREFIX + key)
    if model.prediction_type == PredictionType.V:
        entries.append(TensorEntry(V_PRED_MARKER, (0,), torch.float32, _as_is(torch.zeros(0))))
    return entries


def _text_checkpoint_key(key: str) -> str:
    return TEXT_ENCODER_PREFIX + CHECKPOINT_PREFIX + key.removeprefix(CHECKPOINT_PREFIX)


def checkpoint_metadata(model: ModelHandle, clip: ClipHandle, extra: Mapping[str, str]) -> dict[str, str]:
    """Metadata of a saved checkpoint: the model spec fields tools read, and how it was made."""
    recipe = [repr(p) for p in (*model.patches, *clip.patches)]
    return {
        "format": "pt",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-v1",
        "modelspec.prediction_type": "v" if model.prediction_type == PredictionType.V else "epsilon",
        "latentloom.source": model.source,
        "latentloom.recipe": "; ".join(recipe),
        **extra,
    }


def save_checkpoint(
    folder: Path, prefix: str, *, model: ModelHandle, clip: ClipHandle, vae: VaeHandle,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a new checkpoint file under ``folder`` named from ``prefix``; returns its path."""
    entries = checkpoint_entries(model, clip, vae)
    return save_new(folder, prefix, entries, metadata=checkpoint_metadata(model, clip, metadata or {}))
