"""The standard text-to-image graph as an API prompt, under our node names or ComfyUI's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

TINY_CHECKPOINT = "tiny-sd15.safetensors"
ALL_NODES = ["4", "5", "6", "7", "3", "8", "9"]
SAMPLING_AND_AFTER = ["3", "8", "9"]  # KSampler, VAEDecode, SaveImage


def txt2img_prompt(
    *, ckpt_name: str = TINY_CHECKPOINT, seed: int = 5, comfy_names: bool = False, prefix: str = "e2e", size: int = 64
) -> dict[str, Any]:
    """CheckpointLoader → 2× CLIPTextEncode → EmptyLatent → KSampler → VAEDecode → SaveImage, with the
    node ids ComfyUI's default workflow uses."""
    loader, empty = ("CheckpointLoaderSimple", "EmptyLatentImage") if comfy_names else ("CheckpointLoader", "EmptyLatent")
    return {
        "4": {"class_type": loader, "inputs": {"ckpt_name": ckpt_name}},
        "5": {"class_type": empty, "inputs": {"width": size, "height": size, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red cube on a table", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed, "steps": 3, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
                "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0],
            },
        },  # fmt: skip
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    }


def canvas_workflow() -> dict[str, Any]:
    """A stand-in for the editor's graph, sent as extra_pnginfo["workflow"] (what SaveImage embeds)."""
    return {"last_node_id": 9, "last_link_id": 9, "nodes": [{"id": 9, "type": "SaveImage"}], "links": [], "version": 0.4}


def base_dir_with_checkpoint(base: Path, checkpoint: Path) -> Path:
    """``base`` with models/checkpoints holding a copy of ``checkpoint`` under TINY_CHECKPOINT."""
    folder = base / "models" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, folder / TINY_CHECKPOINT)
    return base
