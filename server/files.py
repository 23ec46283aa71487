"""Safe paths inside the input/output/temp folders, for /view and /upload.

A requested name is refused before it touches the disk when it is absolute, holds a backslash, a NUL or
a ``..`` part (also once more URL-decoded); what remains is resolved (symlinks followed) and must still
lie inside its folder.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote

# ComfyUI's annotated names: "picture.png [input]" picks the folder type.
_ANNOTATION = re.compile(r"^(?P<name>.*) \[(?P<type>output|input|temp)\]$")
# Characters that are unsafe or illegal in a file name on some platform.
_UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_MAX_NAME_LENGTH = 200
# The image formats an upload may be (Pillow's names) and the file name suffixes each may carry.
_UPLOAD_FORMATS = MappingProxyType(
    {
        "PNG": (".png",),
        "JPEG": (".jpg", ".jpeg", ".jfif"),
        "WEBP": (".webp",),
        "GIF": (".gif",),
        "BMP": (".bmp",),
        "TIFF": (".tif", ".tiff"),
    }
)


class NotAnImage(ValueError):
    """An upload whose bytes are not an image of an accepted type matching its file name."""


# Identifies uploaded bytes: the image format (Pillow's name), or NotAnImage. Chosen by the composition root.
ImageProbe = Callable[[bytes], str]


class UnsafePath(ValueError):
    """A requested file name or subfolder that could leave its folder, or that is not a name at all."""


def split_annotation(filename: str) -> tuple[str, str | None]:
    """("name.png", "input") for "name.png [input]"; (filename, None) without an annotation."""
    match = _ANNOTATION.match(filename)
    return (match["name"], match["type"]) if match else (filename, None)


def _check_relative(text: str, *, what: str, allow_separators: bool) -> list[str]:
    """The path parts of ``text``, or UnsafePath saying why it may not be used."""
    for variant in (text, unquote(text)):
        if "\x00" in variant:
            raise UnsafePath(f"{what} contains a NUL character")
        if "\\" in variant:
            raise UnsafePath(f"{what} contains a backslash")
        if variant.startswith("/") or re.match(r"^[A-Za-z]:", variant):
            raise UnsafePath(f"{what} is an absolute path")
        parts = [part for part in variant.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise UnsafePath(f"{what} climbs out of its folder with '..'")
        if not allow_separators and "/" in variant:
            raise UnsafePath(f"{what} must be a plain file name, not a path")
    return [part for part in text.split("/") if part not in ("", ".")]


def resolve_inside(root: Path, *, subfolder: str, filename: str) -> Path:
    """The file ``root/subfolder/filename`` after following symlinks; UnsafePath if it is not inside root."""
    sub_parts = _check_relative(subfolder, what="subfolder", allow_separators=True)
    name_parts = _check_relative(filename, what="filename", allow_separators=False)
    if not name_parts:
        raise UnsafePath("filename is empty")
    return contained(root, root.joinpath(*sub_parts, *name_parts))


def resolve_folder_inside(root: Path, *, subfolder: str) -> Path:
    """The folder ``root/subfolder`` (it may not exist yet); UnsafePath if it is not inside root."""
    parts = _check_relative(subfolder, what="subfolder", allow_separators=True)
    return contained(root, root.joinpath(*parts))


def contained(root: Path, candidate: Path) -> Path:
    resolved_root = root.resolve()
    resolved = candidate.resolve()
    if resolved != resolved_root and not resolved.is_relative_to(resolved_root):
        raise UnsafePath("the path leads outside its folder")
    return resolved


def sanitize_filename(raw: str) -> str:
    """A plain, portable file name from a client-supplied one: last path part, unsafe characters replaced."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME_CHARS.sub("_", name).strip().lstrip(".")
    if not name:
        raise UnsafePath(f"{raw[:80]!r} is not a usable file name")
    stem, suffix = os.path.splitext(name)
    return stem[: _MAX_NAME_LENGTH - len(suffix)] + suffix


def numbered_names(filename: str) -> Iterator[str]:
    """``filename``, then "name (1).ext", "name (2).ext", ... (ComfyUI's upload counter)."""
    stem, suffix = os.path.splitext(filename)
    yield filename
    counter = 1
    while True:
        yield f"{stem} ({counter}){suffix}"
        counter += 1


def save_new_file(folder: Path, filename: str, data: bytes, *, overwrite: bool) -> str:
    """Write ``data`` into ``folder`` and return the name used.

    The bytes go to a hidden temporary file first and appear under their name in one step, so nobody
    reads a half-written upload. Without ``overwrite`` an existing file is never replaced: a file with
    identical bytes is reused, otherwise the next free " (n)" name is taken (a hard link claims a name
    atomically and fails when it is taken, so concurrent uploads cannot collide).
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(dir=folder, prefix=".upload.", suffix=".partial")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        if overwrite:
            os.replace(temporary, contained(folder, folder / filename))
            return filename
        return _claim_free_name(folder, filename, temporary, data)
    finally:
        temporary.unlink(missing_ok=True)


def _claim_free_name(folder: Path, filename: str, temporary: Path, data: bytes) -> str:
    names = numbered_names(filename)
    while True:
        name = next(names)
        target = contained(folder, folder / name)
        if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
            return name
        try:
            os.link(temporary, target)
        except FileExistsError:
            continue
        return name



# The signatures that open each accepted format (TIFF in both byte orders; WebP inside a RIFF box).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff_image_format(data: bytes) -> str:
    """The accepted image format ``data`` starts like (Pillow's name); NotAnImage for anything else.

    The server's own check, from the first bytes alone; the composition root adds Pillow's full
    header check (``ImageProbe``) on top."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, image_format in _SIGNATURES:
        if data.startswith(signature):
            return image_format
    raise NotAnImage("the upload is not a PNG, JPEG, WebP, GIF, BMP or TIFF image")


def accepted_image_formats() -> tuple[str, ...]:
    return tuple(_UPLOAD_FORMATS)


def check_image_upload(filename: str, data: bytes, *, probe: ImageProbe) -> str:
    """The image format of an upload: its bytes must be an accepted image (``probe`` decides, after the
    signature check) and its file name must carry that format's suffix; NotAnImage otherwise."""
    claimed = sniff_image_format(data)
    image_format = probe(data)
    if image_format != claimed or image_format not in _UPLOAD_FORMATS:
        raise NotAnImage(f"{filename[:80]!r} is not a well-formed {claimed} image")
    suffix = os.path.splitext(filename)[1].lower()
    if suffix not in _UPLOAD_FORMATS[image_format]:
        expected = " or ".join(_UPLOAD_FORMATS[image_format])
        raise NotAnImage(f"{filename[:80]!r} holds a {image_format} image; its name must end in {expected}")
    return image_format
