"""Image files on disk: reading an input image as IMAGE + MASK, and writing PNGs that never overwrite.

Saved names follow ComfyUI: ``{prefix}_{counter:05}_.png`` where the counter is one more than the highest
already in the folder. A file is written completely under a hidden temporary name and then linked to its
final name, which fails rather than replaces when the name is taken (another writer won the race), so
the next counter is tried: a saved image is never overwritten and never seen half-written.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo
from torch import Tensor

from latentloom.api import NodeInputError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_SINGLE_FRAME_FORMATS = frozenset({"MPO"})  # multi-picture JPEGs: the extra frames are not a batch
_ANNOTATION = re.compile(r"^(?P<name>.*) \[(?P<kind>input|output|temp)\]$")
_LINK_UNSUPPORTED = frozenset({errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


def split_annotation(name: str) -> tuple[str, str | None]:
    """ComfyUI's annotated names: ("a.png", "output") for "a.png [output]"; (name, None) otherwise."""
    match = _ANNOTATION.match(name)
    return (match["name"], match["kind"]) if match else (name, None)


def relative_parts(text: str, input_name: str) -> tuple[str, ...]:
    """The parts of a relative "/"-separated path; NodeInputError if it is absolute or climbs with '..'."""
    path = PurePosixPath(text.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or "\x00" in text or re.match(r"^[A-Za-z]:", text):
        raise NodeInputError(input_name, f"{text!r} must be a relative path inside its folder")
    return tuple(part for part in path.parts if part not in ("", "."))


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes: changes exactly when the image does (ComfyUI's IS_CHANGED)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- reading --------------------------------------------------------------------------------------------


def load_image(path: Path) -> tuple[Tensor, Tensor]:
    """(IMAGE [frames, H, W, 3], MASK [frames, H, W]) of an image file. The mask is 1 - alpha (ComfyUI's
    convention: 1 marks what to repaint), zeros without alpha. Frames of another size than the first are
    skipped."""
    images, masks = [], []
    with Image.open(path) as picture:
        frames = [picture] if picture.format in _SINGLE_FRAME_FORMATS else ImageSequence.Iterator(picture)
        for frame in frames:
            image, mask = _frame_tensors(ImageOps.exif_transpose(frame))
            if images and image.shape != images[0].shape:
                continue
            images.append(image)
            masks.append(mask)
    return torch.stack(images), torch.stack(masks)


def _frame_tensors(frame: Image.Image) -> tuple[Tensor, Tensor]:
    if frame.mode == "I":  # 16-bit greyscale PNGs: scale to 8-bit range first
        frame = frame.point(lambda value: value * (1 / 255))
    rgb = np.asarray(frame.convert("RGB"), dtype=np.float32) / 255.0
    alpha = _alpha(frame)
    if alpha is None:
        mask = torch.zeros(rgb.shape[:2])
    else:
        mask = 1.0 - torch.from_numpy(np.asarray(alpha, dtype=np.float32) / 255.0)
    return torch.from_numpy(rgb.copy()), mask


def _alpha(frame: Image.Image) -> Image.Image | None:
    if "A" in frame.getbands():
        return frame.getchannel("A")
    if frame.mode == "P" and "transparency" in frame.info:
        return frame.convert("RGBA").getchannel("A")
    return None


# --- writing --------------------------------------------------------------------------------------------


def expand_prefix(prefix: str, *, width: int, height: int, now: time.struct_time | None = None) -> str:
    """ComfyUI's filename placeholders: %width%, %height%, %year%, %month%, %day%, %hour%, %minute%, %second%."""
    now = now or time.localtime()
    values = {
        "width": str(width), "height": str(height), "year": str(now.tm_year), "month": f"{now.tm_mon:02}",
        "day": f"{now.tm_mday:02}", "hour": f"{now.tm_hour:02}", "minute": f"{now.tm_min:02}", "second": f"{now.tm_sec:02}",
    }  # fmt: skip
    for key, value in values.items():
        prefix = prefix.replace(f"%{key}%", value)
    return prefix


def split_prefix(prefix: str) -> tuple[str, str]:
    """(subfolder, file name stem) of a prefix like "portraits/ComfyUI"; refuses paths leaving the folder."""
    parts = relative_parts(prefix, "filename_prefix")
    if not parts:
        raise NodeInputError("filename_prefix", "the prefix is empty")
    return "/".join(parts[:-1]), parts[-1]


def next_counter(folder: Path, stem: str) -> int:
    """One more than the highest counter of ``{stem}_NNNNN_.png`` files in ``folder`` (1 in an empty one)."""
    pattern = re.compile(rf"^{re.escape(stem)}_(\d+)_\.png$")
    highest = 0
    if folder.is_dir():
        for entry in os.scandir(folder):
            match = pattern.match(entry.name)
            if match:
                highest = max(highest, int(match[1]))
    return highest + 1


def image_to_pil(image: Tensor) -> Image.Image:
    """One IMAGE item [H, W, C] in 0..1 as an 8-bit PIL image (values truncated, as ComfyUI saves)."""
    pixels = np.clip(255.0 * image.detach().float().cpu().numpy(), 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    return Image.fromarray(pixels)


def save_png(picture: Image.Image, folder: Path, stem: str, *, pnginfo: PngInfo | None, compress_level: int) -> str:
    """Write ``picture`` as ``{stem}_{counter:05}_.png`` in ``folder`` with the first free counter; return
    the file name."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as file:
            picture.save(file, format="PNG", pnginfo=pnginfo, compress_level=compress_level)
        return _publish(Path(temporary), folder, stem)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _publish(temporary: Path, folder: Path, stem: str) -> str:
    counter = next_counter(folder, stem)
    while True:
        name = f"{stem}_{counter:05}_.png"
        try:
            _claim(temporary, folder / name)
            return name
        except FileExistsError:
            counter += 1


def _claim(temporary: Path, target: Path) -> None:
    """Give ``temporary``'s content the name ``target``, raising FileExistsError if the name is taken."""
    try:
        os.link(temporary, target)  # atomic, and never replaces an existing file
    except OSError as error:
        if isinstance(error, FileExistsError) or error.errno not in _LINK_UNSUPPORTED:
            raise
        # No hard links here (some network or FAT file systems): reserve the name, then move into it.
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.replace(temporary, target)
