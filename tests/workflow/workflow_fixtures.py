"""TEST FIXTURES ONLY: node schemas standing in for the SD nodes, which are written elsewhere.

They mirror ComfyUI's nodes (input names, input order, widget defaults, display names) so the corpus
of ComfyUI workflows in corpus/ can be imported: our names, with ComfyUI's names as first aliases
(CheckpointLoaderSimple -> CheckpointLoader, EmptyLatentImage -> EmptyLatent). Nothing here runs a
model; the workflow library only reads schemas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from latentloom.api import (
    ComboInput,
    FloatInput,
    Input,
    IntInput,
    NodeSchema,
    Output,
    StringInput,
)
from latentloom.api import types as T

CORPUS = Path(__file__).resolve().parent / "corpus"

SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m", "dpmpp_sde", "uni_pc_bh2")
SCHEDULERS = ("normal", "karras", "exponential", "simple", "sgm_uniform")
UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "bislerp")
MAX_RESOLUTION = 16384


def fixture_schemas() -> list[NodeSchema]:
    checkpoints = ("v1-5-pruned-emaonly.safetensors", "dreamshaper_8.safetensors")
    return [
        NodeSchema(
            type="CheckpointLoader",
            display_name="Load Checkpoint",
            aliases=("CheckpointLoaderSimple",),
            required=(ComboInput("ckpt_name", choices=checkpoints),),
            outputs=(Output(T.MODEL), Output(T.CLIP), Output(T.VAE)),
        ),
        NodeSchema(
            type="CLIPTextEncode",
            display_name="CLIP Text Encode (Prompt)",
            required=(StringInput("text", multiline=True), Input("clip", T.CLIP)),
            outputs=(Output(T.CONDITIONING),),
        ),
        NodeSchema(
            type="EmptyLatent",
            display_name="Empty Latent Image",
            aliases=("EmptyLatentImage",),
            required=(
                IntInput("width", default=512, min=16, max=MAX_RESOLUTION, step=8),
                IntInput("height", default=512, min=16, max=MAX_RESOLUTION, step=8),
                IntInput("batch_size", default=1, min=1, max=4096),
            ),
            outputs=(Output(T.LATENT),),
        ),
        NodeSchema(
            type="KSampler",
            display_name="KSampler",
            required=(
                Input("model", T.MODEL),
                IntInput("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                IntInput("steps", default=20, min=1, max=10000),
                FloatInput("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01),
                ComboInput("sampler_name", choices=SAMPLERS),
                ComboInput("scheduler", choices=SCHEDULERS),
                Input("positive", T.CONDITIONING),
                Input("negative", T.CONDITIONING),
                Input("latent_image", T.LATENT),
                FloatInput("denoise", default=1.0, min=0.0, max=1.0, step=0.01),
            ),
            outputs=(Output(T.LATENT),),
        ),
        NodeSchema(
            type="VAEDecode",
            display_name="VAE Decode",
            required=(Input("samples", T.LATENT), Input("vae", T.VAE)),
            outputs=(Output(T.IMAGE),),
        ),
        NodeSchema(
            type="VAEEncode",
            display_name="VAE Encode",
            required=(Input("pixels", T.IMAGE), Input("vae", T.VAE)),
            outputs=(Output(T.LATENT),),
        ),
        NodeSchema(
            type="SaveImage",
            display_name="Save Image",
            required=(Input("images", T.IMAGE), StringInput("filename_prefix", default="ComfyUI")),
            output_node=True,
        ),
        NodeSchema(
            type="LoadImage",
            display_name="Load Image",
            required=(ComboInput("image", choices=("example.png",), allow_unlisted=True),),
            outputs=(Output(T.IMAGE), Output(T.MASK)),
        ),
        NodeSchema(
            type="LoraLoader",
            display_name="Load LoRA",
            required=(
                Input("model", T.MODEL),
                Input("clip", T.CLIP),
                ComboInput("lora_name", choices=("add_detail.safetensors",), allow_unlisted=True),
                FloatInput("strength_model", default=1.0, min=-100.0, max=100.0),
                FloatInput("strength_clip", default=1.0, min=-100.0, max=100.0),
            ),
            outputs=(Output(T.MODEL), Output(T.CLIP)),
        ),
        NodeSchema(
            type="LatentUpscale",
            display_name="Upscale Latent",
            required=(
                Input("samples", T.LATENT),
                ComboInput("upscale_method", choices=UPSCALE_METHODS),
                IntInput("width", default=512, min=0, max=MAX_RESOLUTION, step=8),
                IntInput("height", default=512, min=0, max=MAX_RESOLUTION, step=8),
                ComboInput("crop", choices=("disabled", "center")),
            ),
            outputs=(Output(T.LATENT),),
        ),
        NodeSchema(
            type="VAEEncodeForInpaint",
            display_name="VAE Encode (for Inpainting)",
            required=(
                Input("pixels", T.IMAGE),
                Input("vae", T.VAE),
                Input("mask", T.MASK),
                IntInput("grow_mask_by", default=6, min=0, max=64),
            ),
            outputs=(Output(T.LATENT),),
        ),
        NodeSchema(
            type="SetLatentNoiseMask",
            display_name="Set Latent Noise Mask",
            required=(Input("samples", T.LATENT), Input("mask", T.MASK)),
            outputs=(Output(T.LATENT),),
        ),
    ]


def read_corpus(name: str) -> Any:
    """A corpus file, parsed: e.g. read_corpus("comfyui/txt2img.json")."""
    return json.loads((CORPUS / name).read_text(encoding="utf-8"))
