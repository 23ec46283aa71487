"""Assembling the UNet, text encoder and VAE of a single-file checkpoint.

1. Read the header and detect the family and architecture (nothing loaded yet).
2. Plan: split the keys by prefix (model.diffusion_model., cond_stage_model.transformer.,
   first_stage_model.), set aside exactly the known extras (DDPM schedule buffers, position_ids,
   model_ema.*, the v_pred marker) and check every name and shape against modules built on the meta
   device, so a wrong file fails before any weight is read and the error names each key.
3. Load each module on the meta device with ``load_state_dict(assign=True)``, reading and converting one
   tensor at a time to the compute dtype: RAM holds the weights once, in the dtype they compute in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from latentloom.api.errors import LatentLoomError
from latentloom.diffusion.schedules import DiscreteSchedule
from latentloom.diffusion.unet import UNet
from latentloom.diffusion.vae import VAE
from latentloom.runtime.checkpoint import CheckpointReader, TensorInfo, open_checkpoint
from latentloom.runtime.clip_text import ClipTextEncoder, TextEncoderWeightsError, config_from_state_dict
from latentloom.runtime.clip_tokenizer import ClipTokenizer
from latentloom.runtime.detect import (
    EMA_PREFIX,
    LEGACY_POSITION_IDS,
    POSITION_IDS,
    SCHEDULE_BUFFERS,
    TEXT_ENCODER_PREFIX,
    UNET_PREFIX,
    V_PRED_MARKER,
    VAE_PREFIX,
    CheckpointDetection,
    detect_checkpoint,
    detect_vae_file,
    tensor_shapes,
)
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.handles import ClipHandle, ModelHandle, VaeHandle

KNOWN_EXTRAS = frozenset(SCHEDULE_BUFFERS | {POSITION_IDS, LEGACY_POSITION_IDS, V_PRED_MARKER})
# Training leftovers some standalone VAE files carry (the LPIPS/discriminator loss, EMA copies).
VAE_FILE_EXTRA_PREFIXES = ("loss.", EMA_PREFIX)
SHOWN_KEYS = 20  # keys named per category in an error; the count says how many more


class CheckpointKeyError(LatentLoomError):
    """A checkpoint whose tensors do not match the model its shapes describe; names each key."""

    def __init__(
        self,
        source: str,
        *,
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        mismatched: Sequence[str] = (),
        detail: str = "",
    ) -> None:
        labelled = (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", mismatched))
        parts = [f"{label}: {_name_keys(keys)}" for label, keys in labelled if keys]
        parts += [detail] if detail else []
        super().__init__(f"{source}: the checkpoint does not fit its model; " + "; ".join(parts))
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)


def _name_keys(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


@dataclass(frozen=True)
class CheckpointPlan:
    """Which file key goes to which module key, and which keys are set aside."""

    detection: CheckpointDetection
    unet_keys: Mapping[str, str]
    text_keys: Mapping[str, str]
    vae_keys: Mapping[str, str]
    ignored: tuple[str, ...]


def plan_checkpoint(
    tensors: Mapping[str, Any], *, metadata: Mapping[str, str] | None = None, source: str = ""
) -> CheckpointPlan:
    """Detect, split and check a checkpoint from its tensor names and shapes alone."""
    detection = detect_checkpoint(tensors, metadata=metadata, source=source)
    text = detection.text_encoder
    unet_keys, text_keys, vae_keys, ignored, unexpected = {}, {}, {}, [], []
    for key in tensors:
        if key in KNOWN_EXTRAS or key.startswith(EMA_PREFIX):
            ignored.append(key)
        elif key.startswith(UNET_PREFIX):
            unet_keys[key] = key.removeprefix(UNET_PREFIX)
        elif key.startswith(text.source_prefix):
            text_keys[key] = text.target_prefix + key.removeprefix(text.source_prefix)
        elif key.startswith(VAE_PREFIX):
            vae_keys[key] = key.removeprefix(VAE_PREFIX)
        else:
            unexpected.append(key)
    shapes = tensor_shapes(tensors)
    problems = _Problems(unexpected=sorted(unexpected))
    problems.compare(unet_keys, shapes, _meta_shapes(lambda: UNet(detection.unet_config)), prefix=UNET_PREFIX)
    problems.compare(vae_keys, shapes, _meta_shapes(lambda: VAE(detection.vae_config)), prefix=VAE_PREFIX)
    _check_text_architecture(text_keys, shapes, source=source)
    problems.raise_if_any(source)
    return CheckpointPlan(detection, unet_keys, text_keys, vae_keys, tuple(sorted(ignored)))


@dataclass
class _Problems:
    """Missing, unexpected and mis-shaped keys gathered over all parts, raised together."""

    unexpected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def compare(
        self,
        keys: Mapping[str, str],
        shapes: Mapping[str, tuple[int, ...]],
        expected: Mapping[str, tuple[int, ...]],
        *,
        prefix: str,
    ) -> None:
        present = {module_key: file_key for file_key, module_key in keys.items()}
        self.missing += sorted(prefix + k for k in expected if k not in present)
        self.unexpected += sorted(present[k] for k in present if k not in expected)
        self.mismatched += sorted(
            f"{present[k]} {shapes[present[k]]} (expected {expected[k]})"
            for k in present
            if k in expected and shapes[present[k]] != expected[k]
        )

    def raise_if_any(self, source: str) -> None:
        if self.missing or self.unexpected or self.mismatched:
            raise CheckpointKeyError(
                source, missing=self.missing, unexpected=self.unexpected, mismatched=self.mismatched
            )


def _meta_shapes(build: Callable[[], nn.Module]) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        module = build()
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def _check_text_architecture(
    text_keys: Mapping[str, str], shapes: Mapping[str, tuple[int, ...]], *, source: str
) -> None:
    """The text encoder's architecture must be readable from its shapes (the key check is the encoder's)."""
    as_meta = {module_key: torch.empty(shapes[file_key], device="meta") for file_key, module_key in text_keys.items()}
    try:
        config_from_state_dict(as_meta, bos_id=0, eos_id=0)  # token ids do not show in shapes; any will do
    except (TextEncoderWeightsError, ValueError) as error:
        raise CheckpointKeyError(source, detail=f"text encoder ({TEXT_ENCODER_PREFIX}*): {error}") from error


# --- loading -----------------------------------------------------------------------------------------


def load_checkpoint(
    path: str | os.PathLike[str], *, devices: DeviceManager, tokenizer: ClipTokenizer | None = None
) -> tuple[ModelHandle, ClipHandle, VaeHandle]:
    """MODEL, CLIP and VAE of a single-file SD1.x checkpoint, weights on the CPU in the compute dtype."""
    path = Path(path)
    source = str(path)
    with _open_for_dtype(path, devices.dtype) as reader:
        plan = plan_checkpoint(reader.tensors, metadata=reader.metadata, source=source)
        encoder = _load_text_encoder(reader, plan.text_keys, dtype=devices.dtype, tokenizer=tokenizer, source=source)
        unet = _load_module(lambda: UNet(plan.detection.unet_config), reader, plan.unet_keys, dtype=devices.dtype)
        vae = _load_module(lambda: VAE(plan.detection.vae_config), reader, plan.vae_keys, dtype=devices.dtype)
    detection = plan.detection
    model = ModelHandle(
        unet=unet,
        schedule=DiscreteSchedule.scaled_linear(),
        prediction_type=detection.prediction_type,
        devices=devices,
        family=detection.family,
        source=source,
    )
    return model, ClipHandle(encoder=encoder, devices=devices, source=source), VaeHandle(vae, devices, source)


def load_vae(path: str | os.PathLike[str], *, devices: DeviceManager) -> VaeHandle:
    """A standalone VAE file (keys with or without ``first_stage_model.``; a whole checkpoint gives its VAE)."""
    path = Path(path)
    source = str(path)
    with _open_for_dtype(path, devices.dtype) as reader:
        found = detect_vae_file(reader.tensors, source=source)
        keys: dict[str, str] = {}
        for key in reader.tensors:
            if found.prefix and not key.startswith(found.prefix):
                continue  # a whole checkpoint: its other parts are not asked for
            if key.startswith(VAE_FILE_EXTRA_PREFIXES):
                continue
            keys[key] = key.removeprefix(found.prefix)
        shapes = tensor_shapes(reader.tensors)
        problems = _Problems()
        problems.compare(keys, shapes, _meta_shapes(lambda: VAE(found.config)), prefix=found.prefix)
        problems.raise_if_any(source)
        vae = _load_module(lambda: VAE(found.config), reader, keys, dtype=devices.dtype)
    return VaeHandle(vae, devices, source)


def _open_for_dtype(path: Path, dtype: torch.dtype) -> CheckpointReader:
    """Memory-map when tensors are used as stored; read tensor by tensor when each is converted anyway
    (then the file's pages are never mapped, and RAM holds only the converted copy)."""
    reader = open_checkpoint(path)
    if reader.format == "safetensors" and _needs_conversion(reader.tensors, dtype):
        reader.close()
        reader = open_checkpoint(path, read_mode="pread")
    return reader


def _needs_conversion(tensors: Mapping[str, TensorInfo], dtype: torch.dtype) -> bool:
    """Whether any weight that will be loaded is stored in another dtype (extras are never read)."""
    return any(
        info.dtype.is_floating_point and info.dtype != dtype
        for key, info in tensors.items()
        if key not in KNOWN_EXTRAS and not key.startswith(EMA_PREFIX)
    )


def _load_module(
    build: Callable[[], nn.Module], reader: CheckpointReader, keys: Mapping[str, str], *, dtype: torch.dtype
) -> Any:
    """Build on the meta device, then adopt the file's tensors (converted one by one) as parameters."""
    with torch.device("meta"):
        module = build()
    state = {module_key: reader.get(file_key, dtype=dtype) for file_key, module_key in keys.items()}
    module.load_state_dict(state, strict=True, assign=True)
    left_on_meta = [name for name, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if left_on_meta:
        raise CheckpointKeyError(str(reader.path), missing=left_on_meta)
    return module.eval().requires_grad_(False)


def _load_text_encoder(
    reader: CheckpointReader,
    keys: Mapping[str, str],
    *,
    dtype: torch.dtype,
    tokenizer: ClipTokenizer | None,
    source: str,
) -> ClipTextEncoder:
    state = {module_key: reader.get(file_key, dtype=dtype) for file_key, module_key in keys.items()}
    try:
        return ClipTextEncoder.from_state_dict(state, dtype=dtype, device="cpu", tokenizer=tokenizer)
    except TextEncoderWeightsError as error:
        raise CheckpointKeyError(
            source,
            missing=[TEXT_ENCODER_PREFIX + k for k in error.missing],
            unexpected=[TEXT_ENCODER_PREFIX + k for k in error.unexpected],
            mismatched=[TEXT_ENCODER_PREFIX + k for k in error.mismatched],
            detail="" if error.missing or error.unexpected or error.mismatched else str(error),
        ) from error
