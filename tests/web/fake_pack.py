"""Small image nodes for the browser tests, registered through the composition root's extra-pack hook.

They cover every widget kind the canvas draws (INT with control-after-generate, FLOAT, multi-line and
single-line STRING, COMBO, BOOLEAN), a custom socket type, progress, failure, text and image output. The
save node writes real PNG files that carry the workflow and prompt, as a saving node should.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from latentloom.api import (
    BooleanInput,
    ComboInput,
    FloatInput,
    HiddenInput,
    Input,
    IntInput,
    NodeInputError,
    NodeResult,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
    hookimpl,
)

IMAGE = "TEST_IMAGE"
CATEGORY = "testing/image"


class SolidColor(NodeType):
    schema = NodeSchema(
        type="TestSolidColor",
        display_name="Solid Color",
        category=CATEGORY,
        description="A flat colour image with a stripe placed by the seed.",
        required=(
            IntInput("red", default=200, min=0, max=255),
            IntInput("green", default=120, min=0, max=255),
            IntInput("blue", default=60, min=0, max=255),
            IntInput("width", default=64, min=16, max=512, step=8),
            IntInput("height", default=64, min=16, max=512, step=8),
            IntInput("seed", default=0, min=0, max=2**32 - 1, control_after_generate=True),
            ComboInput("pattern", choices=("stripe", "plain"), default="stripe"),
        ),
        optional=(StringInput("note", multiline=True, default=""),),
        outputs=(Output(IMAGE, "image"),),
    )

    def execute(self, ctx, red, green, blue, width, height, seed, pattern, note=""):
        image = Image.new("RGB", (width, height), (red, green, blue))
        if pattern == "stripe":
            x = seed % width
            for y in range(height):
                image.putpixel((x, y), (255 - red, 255 - green, 255 - blue))
        return (image,)


class Invert(NodeType):
    schema = NodeSchema(
        type="TestInvert",
        display_name="Invert Colors",
        category=CATEGORY,
        required=(
            Input("image", IMAGE),
            BooleanInput("enabled", default=True, label_on="on", label_off="off"),
        ),
        outputs=(Output(IMAGE, "image"),),
    )

    def execute(self, ctx, image, enabled):
        if not enabled:
            return (image,)
        return (image.point(lambda value: 255 - value),)


class SlowSteps(NodeType):
    """Passes its image on after ``steps`` pauses, reporting progress at each (a sampler stand-in)."""

    schema = NodeSchema(
        type="TestSlowSteps",
        display_name="Slow Steps",
        category=CATEGORY,
        required=(
            Input("image", IMAGE),
            IntInput("steps", default=4, min=1, max=1000),
            FloatInput("step_seconds", default=0.05, min=0.0, max=5.0, step=0.01),
            ComboInput("sampler_name", choices=("euler", "euler_ancestral", "dpmpp_2m")),
        ),
        outputs=(Output(IMAGE, "image"),),
    )

    def execute(self, ctx, image, steps, step_seconds, sampler_name):
        for step in range(steps):
            time.sleep(step_seconds)
            ctx.progress(step + 1, steps)
        return (image,)


class SaveImage(NodeType):
    schema = NodeSchema(
        type="TestSaveImage",
        display_name="Save Test Image",
        category=CATEGORY,
        output_node=True,
        required=(Input("images", IMAGE), StringInput("filename_prefix", default="test")),
        hidden=(HiddenInput("prompt", "PROMPT"), HiddenInput("extra_pnginfo", "EXTRA_PNGINFO")),
    )

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir

    def execute(self, ctx, images, filename_prefix, prompt=None, extra_pnginfo=None):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        index = len(list(self.output_dir.glob(f"{filename_prefix}_*.png")))
        name = f"{filename_prefix}_{index:05d}.png"
        info = PngImagePlugin.PngInfo()
        if prompt is not None:
            info.add_text("prompt", json.dumps(prompt))
        for key, value in (extra_pnginfo or {}).items():
            info.add_text(key, json.dumps(value))
        images.save(self.output_dir / name, pnginfo=info)
        return NodeResult(ui={"images": [{"filename": name, "subfolder": "", "type": "output"}]})


class ShowText(NodeType):
    schema = NodeSchema(
        type="TestShowText",
        display_name="Show Text",
        category="testing/text",
        output_node=True,
        required=(StringInput("text", default="hello"),),
    )

    def execute(self, ctx, text):
        return NodeResult(ui={"text": [f"{text} ({len(text)} characters)"]})


class Failing(NodeType):
    schema = NodeSchema(
        type="TestFailing",
        display_name="Always Fails",
        category=CATEGORY,
        output_node=True,
        required=(Input("images", IMAGE), IntInput("code", default=7)),
    )

    def execute(self, ctx, images, code):
        raise NodeInputError("images", f"refused on purpose with code {code}")


class WebTestPack:
    """A node pack object (pluggy accepts any object with hookimpl methods)."""

    def __init__(self, output_dir: Path) -> None:
        self.__name__ = "web_test_pack"
        self.output_dir = output_dir

    def node_types(self) -> list[Any]:
        return [SolidColor(), Invert(), SlowSteps(), SaveImage(self.output_dir), ShowText(), Failing()]

    @hookimpl
    def register_nodes(self, registry, services):
        for node_type in self.node_types():
            registry.register(node_type, source="web_test_pack")
