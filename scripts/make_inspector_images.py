"""Make the pictures of docs/inspector.md by running the inspector nodes themselves.

The model is a UNet in the full Stable Diffusion 1.5 layout (the real block structure, channel counts and
859,520,964 parameters) with seeded random weights, and a random-weight text encoder of SD1's width fed by
the real CLIP tokenizer, so the block table and the pictures' layout are those of SD1.5 while the values
mean nothing: a real checkpoint gives the same views with meaningful content. No model is downloaded.
The latent is drawn by hand (a disc over a band), so spatial structure can be followed through the U.

    .venv/bin/python scripts/make_inspector_images.py                 # writes docs/images/inspector-*.png
    .venv/bin/python scripts/make_inspector_images.py --out /tmp/x    # elsewhere

It takes a few minutes on a laptop CPU (one UNet pass of 859 M parameters per prompt side and step).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

import nodes
from latentloom.api import NodeRegistry, Services
from latentloom.diffusion.schedules import DiscreteSchedule
from latentloom.diffusion.unet import UNet
from latentloom.diffusion.unet_config import UNetConfig
from latentloom.engine.context import NodeContext
from latentloom.runtime.clip_text import ClipTextEncoder
from latentloom.runtime.demo_checkpoint import module_shapes, random_weights, sd15_text_encoder_shapes
from latentloom.runtime.detect import TEXT_ENCODER_PREFIX, PredictionType
from latentloom.runtime.devices import DeviceManager
from latentloom.runtime.folders import ModelFolders
from latentloom.runtime.handles import ClipHandle, ModelHandle

REPO = Path(__file__).resolve().parents[1]
PROMPT = "a horse in a field at sunset"
NEGATIVE = "blurry, low quality"
TOKENS = "horse, field, sunset"
SD1_TEXT_WIDTH = 768
TEXT_LAYERS = 2  # enough for a text encoder whose output varies with the tokens; the width is SD1's


def sd15_model(devices: DeviceManager) -> ModelHandle:
    config = UNetConfig()  # SD1.5's defaults
    with torch.device("meta"):
        unet = UNet(config)
    weights = random_weights(module_shapes(UNet, config, prefix=""), seed=0, dtype=torch.float32)
    unet.load_state_dict(weights, strict=True, assign=True)
    unet.eval().requires_grad_(False)
    return ModelHandle(unet=unet, schedule=DiscreteSchedule.scaled_linear(), prediction_type=PredictionType.EPS,
                       devices=devices, source="random SD1.5-layout UNet")  # fmt: skip


def text_encoder(devices: DeviceManager) -> ClipHandle:
    shapes = sd15_text_encoder_shapes(width=SD1_TEXT_WIDTH, layers=TEXT_LAYERS)
    weights = random_weights(shapes, seed=1, dtype=torch.float32)
    state = {key.removeprefix(TEXT_ENCODER_PREFIX): value for key, value in weights.items()}
    return ClipHandle(encoder=ClipTextEncoder.from_state_dict(state), devices=devices, source="random text encoder")


def drawn_latent(size: int) -> dict[str, Any]:
    """A disc (channels 0 and 2) above a band (channels 1 and 3), on faint noise: something to follow."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    disc = (((xs + 0.2) ** 2 + (ys + 0.15) ** 2) < 0.2).float()
    band = (ys > 0.45).float()
    noise = 0.2 * torch.randn(4, size, size, generator=torch.Generator().manual_seed(5))
    latent = noise + torch.stack([2 * disc, 1.5 * band, -1.5 * disc, band - disc])
    return {"samples": latent[None]}


def copy_views(ui: dict[str, Any], temp_dir: Path, out: Path, names: dict[str, str]) -> list[Path]:
    written = []
    for entry in ui["images"]:
        if entry["view"] in names:
            target = out / f"inspector-{names[entry['view']]}.png"
            shutil.copyfile(temp_dir / entry["subfolder"] / entry["filename"], target)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="folder for the pictures")
    parser.add_argument("--latent-size", type=int, default=32, help="latent side (pixels / 8)")
    parser.add_argument("--steps", type=int, default=10, help="steps of the inspecting sampler")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    devices = DeviceManager(device="cpu")
    with tempfile.TemporaryDirectory() as base:
        folders = ModelFolders(base)
        registry = NodeRegistry()
        nodes.register_nodes(registry=registry, services=Services(folders, devices))
        ctx = NodeContext(prompt_id="docs", node_id="1", emit=lambda event: None, interrupt=threading.Event())
        model, clip = sd15_model(devices), text_encoder(devices)
        encode = registry.get("CLIPTextEncode")
        positive = encode.execute(ctx, text=PROMPT, clip=clip)[0]
        negative = encode.execute(ctx, text=NEGATIVE, clip=clip)[0]
        latent = drawn_latent(args.latent_size)
        inspection = registry.get("UNetBlockInspector").execute(
            ctx, model=model, positive=positive, negative=negative, latent=latent, seed=0, scheduler="normal",
            steps=20, step=12, sigma=0.0, blocks="all", tokens=TOKENS, resolution="all", view="overview",
            prompt_text=PROMPT,
        )  # fmt: skip
        views = {"feature maps: magnitude": "magnitude", "feature maps: PCA": "pca", "token heat maps": "heatmaps",
                 "statistics": "statistics", "architecture": "architecture"}  # fmt: skip
        written = copy_views(inspection.ui, folders.temp_dir, args.out, views)
        trajectory = registry.get("InspectingKSampler").execute(
            ctx, model=model, seed=0, steps=args.steps, cfg=7.0, sampler_name="euler", scheduler="normal",
            positive=positive, negative=negative, latent_image={"samples": torch.zeros_like(latent["samples"])},
            denoise=1.0, blocks="all", tokens="horse", prompt_text=PROMPT,
        )  # fmt: skip
        written += copy_views(trajectory.ui, folders.temp_dir, args.out, {"trajectory": "trajectory"})
    report = inspection.ui["inspection"][0]
    excerpt = {key: report[key] for key in ("kind", "version", "latent_shape", "noise", "conditioning")}
    excerpt["blocks"] = report["blocks"][:2]
    excerpt["attention"] = {"layers": report["attention"]["layers"][:1], "tokens": report["attention"]["tokens"]}
    excerpt_path = args.out / "inspector-report-excerpt.json"
    excerpt_path.write_text(json.dumps(excerpt, indent=2) + "\n", encoding="utf-8")
    for path in (*written, excerpt_path):
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


if __name__ == "__main__":
    main()
