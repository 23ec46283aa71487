"""What kind of model a weight file holds, read from its tensor names and shapes alone.

``detect_checkpoint`` recognises a single-file SD1.x checkpoint (including inpainting variants) and
returns its UNet and VAE configuration; any other family (SD2.x, SDXL, SD3, Flux, SVD, …) and files of
other kinds (a LoRA, a lone VAE, diffusers-format weights) get an error that says what was found. Only
shapes are needed, so detection runs on a file's header before any weight is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from latentloom.api.errors import LatentLoomError
from latentloom.diffusion.unet_config import UNetConfig, UNetLayoutError
from latentloom.diffusion.vae import VAEConfig, VAELayoutError

UNET_PREFIX = "model.diffusion_model."
TEXT_ENCODER_PREFIX = "cond_stage_model.transformer."
VAE_PREFIX = "first_stage_model."
EMA_PREFIX = "model_ema."
# The DDPM buffers LDM's LatentDiffusion registers; LatentLoom computes its schedule from the formula.
SCHEDULE_BUFFERS = frozenset(
    {
        "betas",
        "alphas_cumprod",
        "alphas_cumprod_prev",
        "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod",
        "posterior_variance",
        "posterior_log_variance_clipped",
        "posterior_mean_coef1",
        "posterior_mean_coef2",
    }
)
POSITION_IDS = TEXT_ENCODER_PREFIX + "text_model.embeddings.position_ids"
LEGACY_POSITION_IDS = TEXT_ENCODER_PREFIX + "embeddings.position_ids"
# Marker tensors some trainers add to say how the model predicts (ComfyUI reads the same names).
V_PRED_MARKER = "v_pred"
ZTSNR_MARKER = "ztsnr"
SUPPORTED = "LatentLoom supports SD1.x checkpoints"


class ModelFamily(StrEnum):
    SD1 = "SD1.x"
    SD2 = "SD2.x"
    SD2_UNCLIP = "SD2.x unCLIP"
    SDXL = "SDXL"
    SDXL_REFINER = "SDXL refiner"
    SD3 = "SD3"
    FLUX = "Flux"
    SVD = "Stable Video Diffusion"
    SD_CASCADE = "Stable Cascade"
    PIXART = "PixArt"
    AURAFLOW = "AuraFlow"
    HUNYUAN_DIT = "Hunyuan-DiT"


class PredictionType(StrEnum):
    EPS = "eps"
    V = "v"


class OptionalKeys(StrEnum):
    """Groups of keys a standard file may or may not carry; none of them is needed to load."""

    SCHEDULE_BUFFERS = "schedule_buffers"
    POSITION_IDS = "position_ids"
    MODEL_EMA = "model_ema"
    V_PRED_MARKER = "v_pred_marker"


class DetectionError(LatentLoomError):
    """A weight file whose contents LatentLoom cannot use as asked; says what was found."""


class UnsupportedModelError(DetectionError):
    """A model of a family LatentLoom does not run (yet)."""

    def __init__(self, family: ModelFamily | str, evidence: str, *, source: str = "") -> None:
        where = f"{source}: " if source else ""
        article = "an" if re.match(r"[AEIOU]|S[A-Z0-9]", str(family)) else "a"  # "an SDXL", "a Flux"
        super().__init__(f"{where}this looks like {article} {family} checkpoint ({evidence}); {SUPPORTED}")
        self.family = family
        self.evidence = evidence


class WrongFileKindError(DetectionError):
    """A file of another kind (a LoRA, a lone VAE, diffusers weights) where a checkpoint was expected."""


@dataclass(frozen=True)
class TextEncoderSource:
    """Where the text encoder's weights sit in the file and how they map onto transformers' CLIPTextModel.

    A key ``source_prefix + rest`` becomes ``target_prefix + rest``: older files saved CLIPTextModel
    without its ``text_model.`` level (``cond_stage_model.transformer.encoder…``), so ``target_prefix``
    puts it back; standard files need no change.
    """

    source_prefix: str
    target_prefix: str
    architecture: str = "CLIPTextModel (ViT-L/14)"


@dataclass(frozen=True)
class CheckpointDetection:
    family: ModelFamily
    unet_config: UNetConfig
    vae_config: VAEConfig
    text_encoder: TextEncoderSource
    prediction_type: PredictionType
    optional_keys: frozenset[OptionalKeys]

    @property
    def inpainting(self) -> bool:
        """A UNet that takes the latent, the mask and the masked image's latent (9 input channels)."""
        return self.unet_config.in_channels == 9


def tensor_shapes(tensors: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a state dict, of a header (values with ``.shape``) or of key -> shape sequences."""
    return {key: tuple(value.shape) if hasattr(value, "shape") else tuple(value) for key, value in tensors.items()}


def detect_checkpoint(
    tensors: Mapping[str, Any], *, metadata: Mapping[str, str] | None = None, source: str = ""
) -> CheckpointDetection:
    """Identify a single-file checkpoint; raise a DetectionError that says what it is if not SD1.x."""
    shapes = tensor_shapes(tensors)
    refuse_other_families(shapes, source=source)
    refuse_other_file_kinds(shapes, source=source)
    unet_config = _unet_config(_under(shapes, UNET_PREFIX), source=source)
    if unet_config.linear_proj:
        evidence = "its UNet's transformers project with Linear layers (2-D proj_in weights), as SD2's do"
        raise UnsupportedModelError(ModelFamily.SD2, evidence, source=source)
    text_encoder = _text_encoder_source(shapes, source=source)
    text_width = _text_width(shapes, text_encoder, source=source)
    if unet_config.context_dim != text_width:
        where = f"{source}: " if source else ""
        raise DetectionError(
            f"{where}the UNet cross-attends to {unet_config.context_dim}-wide text but the text encoder "
            f"is {text_width} wide; the parts do not belong together"
        )
    prediction_type, markers = _prediction_type(shapes, metadata or {}, source=source)
    return CheckpointDetection(
        family=ModelFamily.SD1,
        unet_config=unet_config,
        vae_config=vae_config(_under(shapes, VAE_PREFIX), source=source),
        text_encoder=text_encoder,
        prediction_type=prediction_type,
        optional_keys=frozenset(_optional_groups(shapes) | markers),
    )


# --- families and file kinds we do not load --------------------------------------------------------


def _first(keys: Iterable[str], pattern: str) -> str | None:
    """The alphabetically first key matching ``pattern`` (a regex searched anywhere in the key)."""
    regex = re.compile(pattern)
    found = sorted(key for key in keys if regex.search(key))
    return found[0] if found else None


def _found(key: str) -> str:
    return f"found {key if len(key) <= 60 else key[:57] + '…'}"


# (family, key pattern), checked in order: a file that matches several is the first.
_FAMILY_SIGNATURES: tuple[tuple[ModelFamily, str], ...] = (
    (ModelFamily.FLUX, r"(^|\.)double_blocks\.\d+\."),
    (ModelFamily.SD3, r"(^|\.)joint_blocks\.\d+\."),
    (ModelFamily.SVD, r"\.time_stack\.|\.time_mixer\."),
    (ModelFamily.SD_CASCADE, r"(^|\.)down_blocks\.\d+\.\d+\.channelwise\."),
    (ModelFamily.AURAFLOW, r"(^|\.)double_layers\.\d+\."),
    (ModelFamily.HUNYUAN_DIT, r"(^|\.)mlp_t5\."),
    (ModelFamily.PIXART, r"(^|\.)t_block\.\d+\."),
    (ModelFamily.SDXL_REFINER, r"^conditioner\.embedders\.0\.model\."),
    (ModelFamily.SDXL, r"^conditioner\.embedders\."),
    (ModelFamily.SD2_UNCLIP, r"^embedder\.model\.visual\."),
    (ModelFamily.SDXL, r"^model\.diffusion_model\.label_emb\."),
    (ModelFamily.SD2, r"^cond_stage_model\.model\."),
)


def refuse_other_families(shapes: Mapping[str, tuple[int, ...]], *, source: str = "") -> None:
    """Raise UnsupportedModelError naming the family when the keys are those of a non-SD1 model."""
    for family, pattern in _FAMILY_SIGNATURES:
        key = _first(shapes, pattern)
        if key is not None:
            raise UnsupportedModelError(family, _found(key), source=source)
    unet = _under(shapes, UNET_PREFIX)
    if unet:
        context_dim = _context_dim(unet)
        if context_dim == 1024:
            raise UnsupportedModelError(ModelFamily.SD2, "its UNet cross-attends to 1024-wide OpenCLIP text", source=source)


_LORA = r"(^lora_(unet|te\d?)_)|\.lora_(down|up|A|B)\.|\.(alpha|dora_scale)$|^lycoris_|\.hada_w1_a$|\.lokr_w1$"
_DIFFUSERS_UNET = r"^(unet\.)?(down_blocks\.\d+\.resnets\.|mid_block\.attentions\.|time_embedding\.linear_1\.)"
_DIFFUSERS_VAE = r"^(vae\.)?(encoder|decoder)\.(down_blocks|up_blocks|mid_block)\."
_LDM_VAE = r"^(first_stage_model\.)?(encoder|decoder)\.(conv_in|down\.\d+|up\.\d+|mid\.)"


def refuse_other_file_kinds(shapes: Mapping[str, tuple[int, ...]], *, source: str = "") -> None:
    """Raise WrongFileKindError for weights that are not a whole SD checkpoint, saying what they are."""
    where = f"{source}: " if source else ""
    if (key := _first(shapes, _LORA)) is not None:
        raise WrongFileKindError(f"{where}this looks like a LoRA ({_found(key)}), not a checkpoint; put it in models/loras")
    if (key := _first(shapes, _DIFFUSERS_UNET)) is not None:
        raise WrongFileKindError(
            f"{where}this holds diffusers-format weights ({_found(key)}); LatentLoom loads single-file "
            "checkpoints in the original layout (model.diffusion_model.*, cond_stage_model.*, first_stage_model.*)"
        )
    has_unet = any(k.startswith(UNET_PREFIX) for k in shapes)
    if not has_unet and (key := _first(shapes, _LDM_VAE)) is not None:
        raise WrongFileKindError(f"{where}this looks like a standalone VAE ({_found(key)}); put it in models/vae")
    if not has_unet:
        raise WrongFileKindError(f"{where}not a Stable Diffusion checkpoint: {_describe_prefixes(shapes)}")
    missing = [p for p in (TEXT_ENCODER_PREFIX, VAE_PREFIX) if not any(k.startswith(p) for k in shapes)]
    if missing:
        parts = " and ".join(f"{p}* ({'text encoder' if p == TEXT_ENCODER_PREFIX else 'VAE'})" for p in missing)
        raise WrongFileKindError(f"{where}the checkpoint has a UNet but no {parts}; LatentLoom needs all three")


def _describe_prefixes(shapes: Mapping[str, tuple[int, ...]]) -> str:
    if not shapes:
        return "the file holds no tensors"
    prefixes = sorted({key.split(".")[0] for key in shapes})
    shown = ", ".join(f"{p}.*" for p in prefixes[:6]) + (", …" if len(prefixes) > 6 else "")
    return f"found {len(shapes)} tensors under {shown}, but no {UNET_PREFIX}* UNet"


# --- the parts of an SD1 checkpoint ----------------------------------------------------------------


def _under(shapes: Mapping[str, tuple[int, ...]], prefix: str) -> dict[str, tuple[int, ...]]:
    return {key[len(prefix) :]: shape for key, shape in shapes.items() if key.startswith(prefix)}


def _context_dim(unet_shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    key = _first(unet_shapes, r"\.attn2\.to_k\.weight$")
    return unet_shapes[key][1] if key is not None and len(unet_shapes[key]) == 2 else None


def _unet_config(unet_shapes: Mapping[str, tuple[int, ...]], *, source: str) -> UNetConfig:
    try:
        return UNetConfig.from_state_dict(unet_shapes)
    except (UNetLayoutError, ValueError) as error:
        where = f"{source}: " if source else ""
        raise DetectionError(f"{where}the UNet ({UNET_PREFIX}*) is not in the SD1.x layout: {error}") from error


def vae_config(vae_shapes: Mapping[str, tuple[int, ...]], *, source: str = "") -> VAEConfig:
    """The VAE architecture from its shapes (keys without ``first_stage_model.``)."""
    try:
        return VAEConfig.from_state_dict(vae_shapes)
    except (VAELayoutError, ValueError) as error:
        where = f"{source}: " if source else ""
        raise DetectionError(f"{where}the VAE is not in the SD layout: {error}") from error


def _text_encoder_source(shapes: Mapping[str, tuple[int, ...]], *, source: str) -> TextEncoderSource:
    standard = TEXT_ENCODER_PREFIX + "text_model."
    if any(k.startswith(standard) for k in shapes):
        return TextEncoderSource(source_prefix=TEXT_ENCODER_PREFIX, target_prefix="")
    if any(k.startswith(TEXT_ENCODER_PREFIX + "encoder.layers.") for k in shapes):
        return TextEncoderSource(source_prefix=TEXT_ENCODER_PREFIX, target_prefix="text_model.")
    where = f"{source}: " if source else ""
    raise DetectionError(
        f"{where}the text encoder under {TEXT_ENCODER_PREFIX}* is not a CLIPTextModel "
        f"(expected {standard}embeddings.* and {standard}encoder.layers.*)"
    )


def _text_width(shapes: Mapping[str, tuple[int, ...]], text: TextEncoderSource, *, source: str) -> int:
    embedding = text.source_prefix + ("" if text.target_prefix else "text_model.") + "embeddings.token_embedding.weight"
    shape = shapes.get(embedding)
    if shape is None or len(shape) != 2:
        where = f"{source}: " if source else ""
        raise DetectionError(f"{where}the text encoder has no 2-D {embedding}")
    return shape[1]


def _prediction_type(
    shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str], *, source: str
) -> tuple[PredictionType, set[OptionalKeys]]:
    """eps unless the file says v: a ``v_pred`` marker tensor or modelspec metadata."""
    if ZTSNR_MARKER in shapes:
        raise UnsupportedModelError(
            "zero-terminal-SNR", f"found the {ZTSNR_MARKER!r} marker: it needs a rescaled noise schedule", source=source
        )
    if any(key.startswith("edm_vpred.") for key in shapes):
        raise UnsupportedModelError("EDM v-prediction", "found edm_vpred.sigma_max: it needs an EDM schedule", source=source)
    declared = metadata.get("modelspec.prediction_type", "").strip().lower()
    if V_PRED_MARKER in shapes:
        return PredictionType.V, {OptionalKeys.V_PRED_MARKER}
    if declared in ("v", "v_prediction", "v-prediction"):
        return PredictionType.V, set()
    return PredictionType.EPS, set()


def _optional_groups(shapes: Mapping[str, tuple[int, ...]]) -> set[OptionalKeys]:
    groups = set()
    if SCHEDULE_BUFFERS & shapes.keys():
        groups.add(OptionalKeys.SCHEDULE_BUFFERS)
    if POSITION_IDS in shapes or LEGACY_POSITION_IDS in shapes:
        groups.add(OptionalKeys.POSITION_IDS)
    if any(key.startswith(EMA_PREFIX) for key in shapes):
        groups.add(OptionalKeys.MODEL_EMA)
    return groups


# --- standalone VAE files --------------------------------------------------------------------------


@dataclass(frozen=True)
class VaeFileDetection:
    config: VAEConfig
    prefix: str  # "first_stage_model." when the file keeps the checkpoint prefix, else ""


def detect_vae_file(tensors: Mapping[str, Any], *, source: str = "") -> VaeFileDetection:
    """A standalone VAE file in the original layout, with or without ``first_stage_model.``."""
    shapes = tensor_shapes(tensors)
    where = f"{source}: " if source else ""
    if (key := _first(shapes, _DIFFUSERS_VAE)) is not None:
        raise WrongFileKindError(
            f"{where}this is a diffusers-format VAE ({_found(key)}); LatentLoom loads VAE files in the original "
            "layout (encoder.down.N…, decoder.up.N…, quant_conv), as the .safetensors/.ckpt VAEs for SD1.x ship"
        )
    prefix = VAE_PREFIX if any(k.startswith(VAE_PREFIX) for k in shapes) else ""
    vae_shapes = _under(shapes, prefix) if prefix else shapes
    if not any(re.match(_LDM_VAE, k) for k in vae_shapes):
        raise WrongFileKindError(f"{where}not a VAE: {_describe_vae_miss(shapes)}")
    return VaeFileDetection(config=vae_config(vae_shapes, source=source), prefix=prefix)


def _describe_vae_miss(shapes: Mapping[str, tuple[int, ...]]) -> str:
    prefixes = sorted({key.split(".")[0] for key in shapes})
    shown = ", ".join(f"{p}.*" for p in prefixes[:6]) + (", …" if len(prefixes) > 6 else "")
    return f"found tensors under {shown or 'nothing'}, expected encoder.* and decoder.*"
