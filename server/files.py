"""Safe paths inside the input/output/temp folders, for /view and /upload.

A requested name is refused before it touches the disk when it is absolute, holds a backslash, a NUL or
a ``..`` part (also once more URL-decoded); what remains is resolved (symlinks followed) and must still
lie inside its folder.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

# ComfyUI's annotated names: "picture.png [input]" picks the folder type.
_ANNOTATION = re.compile(r"^(?P<name>.*) \[(?P<type>output|input|temp)\]$")
# Characters that are unsafe or illegal in a file name on some platform.
_UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_MAX_NAME_LENGTH = 200


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

    Without ``overwrite`` an existing file is never replaced: a file with identical bytes is reused,
    otherwise the next free " (n)" name is taken (exclusive create, so concurrent uploads cannot collide).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if overwrite:
        target = contained(folder, folder / filename)
        temporary = target.with_name(f".{target.name}.uploading")
        temporary.write_bytes(data)
        os.replace(temporary, target)
        return filename
    names = numbered_names(filename)
    while True:
        name = next(names)
        target = contained(folder, folder / name)
        if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
            return name
        try:
            with open(target, "xb") as handle:
                handle.write(data)
        except FileExistsError:
            continue
        return name
