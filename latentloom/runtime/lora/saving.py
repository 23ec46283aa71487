"""Writing weight files: .safetensors streamed one tensor at a time, atomically, never overwriting.

The safetensors layout (8-byte little-endian header length, JSON header of dtype/shape/data_offsets plus
``__metadata__``, then the raw little-endian bytes) is written directly, so a saved model is computed and
written tensor by tensor and never held whole. The file is written under a temporary name in the target
folder and then hard-linked to its final name, which fails rather than replace an existing file.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from latentloom.api.errors import LatentLoomError
from latentloom.runtime.checkpoint import SAFETENSORS_DTYPES

DTYPE_NAMES = {dtype: name for name, dtype in SAFETENSORS_DTYPES.items()}
HEADER_ALIGNMENT = 8


class SaveError(LatentLoomError):
    """A file that cannot be written where it was asked for."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor to write: its name, shape and dtype up front, its value computed when written."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    compute: Callable[[], Tensor]

    @property
    def nbytes(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count * self.dtype.itemsize


def write_safetensors(path: Path, entries: Iterable[TensorEntry], *, metadata: Mapping[str, str]) -> Path:
    """Write ``entries`` to a new file at ``path`` (atomic; refuses an existing path)."""
    entries = list(entries)
    header: dict[str, object] = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    offset = 0
    for entry in entries:
        header[entry.key] = {"dtype": DTYPE_NAMES[entry.dtype], "shape": list(entry.shape),
                             "data_offsets": [offset, offset + entry.nbytes]}  # fmt: skip
        offset += entry.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % HEADER_ALIGNMENT)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with temporary.open("xb") as file:
            file.write(struct.pack("<Q", len(raw)))
            file.write(raw)
            for entry in entries:
                file.write(_tensor_bytes(entry))
        _link_new(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _tensor_bytes(entry: TensorEntry) -> bytes:
    tensor = entry.compute().detach().to(device="cpu", dtype=entry.dtype).contiguous()
    if tuple(tensor.shape) != entry.shape:
        raise SaveError(f"tensor {entry.key} has shape {tuple(tensor.shape)}, its header says {entry.shape}")
    return tensor.reshape(-1).view(torch.uint8).numpy().tobytes()


def _link_new(temporary: Path, path: Path) -> None:
    try:
        os.link(temporary, path)
    except FileExistsError as error:
        raise SaveError(f"{path} already exists; saving never overwrites a file") from error
    except OSError as error:
        raise SaveError(f"cannot write {path}: {error}") from error


_COUNTER = re.compile(r"_(\d{5})_\.safetensors$")


def next_free_path(folder: Path, prefix: str) -> Path:
    """``folder/<prefix>_00001_.safetensors`` with the first counter after any file already there
    (ComfyUI's save naming); ``prefix`` may name a subfolder, which must stay inside ``folder``."""
    target = (folder / prefix).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise SaveError(f"filename_prefix {prefix!r} points outside {folder}")
    target.parent.mkdir(parents=True, exist_ok=True)
    stem = target.name
    used = [int(m.group(1)) for p in target.parent.glob(f"{glob_escape(stem)}_*_.safetensors")
            if (m := _COUNTER.search(p.name)) and p.name == f"{stem}_{m.group(1)}_.safetensors"]  # fmt: skip
    return target.parent / f"{stem}_{max(used, default=0) + 1:05d}_.safetensors"


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def save_new(folder: Path, prefix: str, entries: Iterable[TensorEntry], *, metadata: Mapping[str, str]) -> Path:
    """Write to the next free name; a name taken meanwhile (another save) moves on to the next one."""
    entries = list(entries)
    for _ in range(100):
        path = next_free_path(folder, prefix)
        try:
            return write_safetensors(path, entries, metadata=metadata)
        except SaveError:
            if not path.exists():
                raise
    raise SaveError(f"no free file name for {prefix!r} in {folder}")
