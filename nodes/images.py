"""Image nodes: LoadImage, SaveImage, PreviewImage, ImageScale, ImagePadForOutpaint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from latentloom import api
from latentloom.api import (
    ComboInput,
    HiddenInput,
    Input,
    IntInput,
    NodeInputError,
    NodeResult,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
)
from latentloom.workflow.png import png_text_chunks
from nodes.image_files import (
    IMAGE_EXTENSIONS,
    expand_prefix,
    file_digest,
    image_to_pil,
    load_image,
    relative_parts,
    save_png,
    split_annotation,
    split_prefix,
)
from nodes.resize import CROP_METHODS, IMAGE_METHODS, resize
from nodes.services import NodeServices
from nodes.values import MAX_RESOLUTION, image_tensor

T = api.types


@dataclass(frozen=True, kw_only=True)
class ImageUploadInput(ComboInput):
    """A file choice the canvas shows with an upload button (ComfyUI's ``image_upload`` option)."""

    def to_object_info(self) -> list[Any]:
        choices, *rest = super().to_object_info()
        return [choices, {**(rest[0] if rest else {}), "image_upload": True}]


class LoadImage(NodeType):
    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.schema = NodeSchema(
            type="LoadImage",
            display_name="Load Image",
            category="image",
            description="Loads an image from input/ as IMAGE, and its alpha as MASK (1 - alpha).",
            required=(
                # Unlisted names pass the choice check: "name.png [output]" may pick another folder.
                ImageUploadInput("image", choices=self._choices, allow_unlisted=True),
            ),
            outputs=(Output(T.IMAGE), Output(T.MASK)),
        )

    def _choices(self) -> list[str]:
        return self.services.folders.list("input", extensions=IMAGE_EXTENSIONS)

    def image_path(self, image: str) -> Path:
        name, kind = split_annotation(image)
        folders = self.services.folders
        root = {"input": folders.input_dir, "output": folders.output_dir, "temp": folders.temp_dir}[kind or "input"]
        path = root.joinpath(*relative_parts(name, "image"))
        if not path.is_file():
            raise NodeInputError("image", f"invalid image file: {image!r} is not in {root}")
        return path

    def validate(self, **literals: Any) -> list[str]:
        image = literals.get("image")
        if not isinstance(image, str):
            return []
        try:
            self.image_path(image)
        except NodeInputError as error:
            return [error.reason]
        return []

    def fingerprint(self, **literals: Any) -> object:
        image = literals.get("image")
        return file_digest(self.image_path(image)) if isinstance(image, str) else None

    def execute(self, ctx: api.ExecutionContext, *, image: str) -> tuple:
        path = self.image_path(image)
        try:
            return load_image(path)
        except OSError as error:  # PIL's UnidentifiedImageError is an OSError
            raise NodeInputError("image", f"cannot read {path.name}: {error}") from error


def plain_json(value: Any) -> Any:
    """Mappings (read-only views included) and sequences as plain dicts and lists, for json.dumps."""
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    return value


@dataclass(frozen=True)
class ImageWriter:
    """Writes IMAGE batches as PNGs into one folder and describes them for the UI."""

    folder: Path
    kind: str  # the folder type in UI entries: "output" or "temp"
    compress_level: int

    def write(self, images: Tensor, prefix: str, *, prompt: Any, extra_pnginfo: Any) -> NodeResult:
        batch = image_tensor(images, "images")
        subfolder, stem = split_prefix(expand_prefix(prefix, width=batch.shape[2], height=batch.shape[1]))
        chunks = png_text_chunks(
            prompt=None if prompt is None else plain_json(prompt),
            extra_pnginfo=None if extra_pnginfo is None else plain_json(extra_pnginfo),
        )
        folder = self.folder.joinpath(*subfolder.split("/")) if subfolder else self.folder
        results = []
        for index, image in enumerate(batch):
            name = save_png(image_to_pil(image), folder, stem.replace("%batch_num%", str(index)),
                            pnginfo=chunks, compress_level=self.compress_level)  # fmt: skip
            results.append({"filename": name, "subfolder": subfolder, "type": self.kind})
        return NodeResult(ui={"images": results})


_WORKFLOW_HIDDEN = (HiddenInput("prompt", "PROMPT"), HiddenInput("extra_pnginfo", "EXTRA_PNGINFO"))


class SaveImage(NodeType):
    def __init__(self, services: NodeServices) -> None:
        self.writer = ImageWriter(services.folders.output_dir, "output", compress_level=4)
        self.schema = NodeSchema(
            type="SaveImage",
            display_name="Save Image",
            category="image",
            description="Saves the images as PNGs in output/, with the workflow and prompt embedded.",
            output_node=True,
            required=(
                Input("images", T.IMAGE, tooltip="The images to save."),
                StringInput("filename_prefix", default="ComfyUI",
                            tooltip="File name prefix; may hold a subfolder and %width%, %height%, %year% … placeholders."),  # fmt: skip
            ),
            hidden=_WORKFLOW_HIDDEN,
        )

    def execute(self, ctx: api.ExecutionContext, *, images: Any, filename_prefix: str, prompt: Any = None,
                extra_pnginfo: Any = None) -> NodeResult:  # fmt: skip
        return self.writer.write(images, filename_prefix, prompt=prompt, extra_pnginfo=extra_pnginfo)


class PreviewImage(NodeType):
    PREFIX = "ComfyUI_temp"

    def __init__(self, services: NodeServices) -> None:
        self.writer = ImageWriter(services.folders.temp_dir, "temp", compress_level=1)
        self.schema = NodeSchema(
            type="PreviewImage",
            display_name="Preview Image",
            category="image",
            description="Shows the images: saved as PNGs in temp/, which is emptied when the server starts.",
            output_node=True,
            required=(Input("images", T.IMAGE),),
            hidden=_WORKFLOW_HIDDEN,
        )

    def execute(self, ctx: api.ExecutionContext, *, images: Any, prompt: Any = None, extra_pnginfo: Any = None) -> NodeResult:
        return self.writer.write(images, self.PREFIX, prompt=prompt, extra_pnginfo=extra_pnginfo)


class ImageScale(NodeType):
    schema = NodeSchema(
        type="ImageScale",
        display_name="Upscale Image",
        category="image/upscaling",
        required=(
            Input("image", T.IMAGE),
            ComboInput("upscale_method", choices=IMAGE_METHODS),
            IntInput("width", default=512, min=0, max=MAX_RESOLUTION, step=1),
            IntInput("height", default=512, min=0, max=MAX_RESOLUTION, step=1),
            ComboInput("crop", choices=CROP_METHODS),
        ),
        outputs=(Output(T.IMAGE),),
    )

    def execute(
        self, ctx: api.ExecutionContext, *, image: Any, upscale_method: str, width: int, height: int, crop: str
    ) -> tuple:
        pixels = image_tensor(image, "image")
        if width == 0 and height == 0:
            return (pixels,)
        source_h, source_w = pixels.shape[1], pixels.shape[2]
        if width == 0:
            width = max(1, round(source_w * height / source_h))
        elif height == 0:
            height = max(1, round(source_h * width / source_w))
        scaled = resize(pixels.movedim(-1, 1), width=width, height=height, method=upscale_method, crop=crop)
        return (scaled.movedim(1, -1),)


def outpaint_mask(height: int, width: int, *, top: int, bottom: int, left: int, right: int, feathering: int) -> Tensor:
    """The [height, width] mask over the original image inside the padded one: 0, rising as ((f - d) / f)²
    within ``feathering`` pixels of each padded side (d = distance to that side)."""
    if not (feathering > 0 and feathering * 2 < height and feathering * 2 < width):
        return torch.zeros((height, width))
    rows = torch.arange(height, dtype=torch.float32).unsqueeze(1)
    cols = torch.arange(width, dtype=torch.float32).unsqueeze(0)
    far = torch.full((height, width), float(max(height, width)))
    distances = [
        rows.expand(height, width) if top else far,
        (height - rows).expand(height, width) if bottom else far,
        cols.expand(height, width) if left else far,
        (width - cols).expand(height, width) if right else far,
    ]
    nearest = torch.stack(distances).amin(dim=0)
    return torch.where(nearest < feathering, ((feathering - nearest) / feathering) ** 2, torch.zeros(()))


class ImagePadForOutpaint(NodeType):
    schema = NodeSchema(
        type="ImagePadForOutpaint",
        display_name="Pad Image for Outpainting",
        category="image",
        description="Adds grey borders and a mask that marks them (feathered into the image) for outpainting.",
        required=(
            Input("image", T.IMAGE),
            *(IntInput(side, default=0, min=0, max=MAX_RESOLUTION, step=8) for side in ("left", "top", "right", "bottom")),
            IntInput("feathering", default=40, min=0, max=MAX_RESOLUTION, step=1),
        ),
        outputs=(Output(T.IMAGE), Output(T.MASK)),
    )

    def execute(self, ctx: api.ExecutionContext, *, image: Any, left: int, top: int, right: int, bottom: int,
                feathering: int) -> tuple:  # fmt: skip
        pixels = image_tensor(image, "image")
        batch, height, width, channels = pixels.shape
        padded = torch.full((batch, height + top + bottom, width + left + right, channels), 0.5)
        padded[:, top : top + height, left : left + width, :] = pixels
        mask = torch.ones(padded.shape[1:3])
        mask[top : top + height, left : left + width] = outpaint_mask(
            height, width, top=top, bottom=bottom, left=left, right=right, feathering=feathering
        )
        return (padded, mask.unsqueeze(0))
