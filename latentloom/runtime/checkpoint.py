"""Reading weight files: .safetensors memory-mapped, .ckpt/.pt/.pth/.bin only through torch's
weights-only unpickler.

``open_checkpoint`` gives a reader whose ``tensors`` (name -> shape + dtype) are known before any tensor
data is read, so detection can look at a multi-GB file for free; ``get`` then reads one tensor at a time
and converts it on the way, so a loader never holds the file's copy and the converted copy of all
weights at once.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import struct
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import torch
from safetensors import SafetensorError, safe_open

from latentloom.api.errors import LatentLoomError

SAFETENSORS_SUFFIXES = frozenset({".safetensors", ".sft"})
PICKLE_SUFFIXES = frozenset({".ckpt", ".pt", ".pth", ".bin"})
# The safetensors format caps its JSON header at 100 MB; a bigger length field means a corrupt file.
MAX_SAFETENSORS_HEADER = 100_000_000

SAFETENSORS_DTYPES: Mapping[str, torch.dtype] = MappingProxyType(
    {
        "F64": torch.float64,
        "F32": torch.float32,
        "F16": torch.float16,
        "BF16": torch.bfloat16,
        "F8_E4M3": torch.float8_e4m3fn,
        "F8_E5M2": torch.float8_e5m2,
        "I64": torch.int64,
        "I32": torch.int32,
        "I16": torch.int16,
        "I8": torch.int8,
        "U8": torch.uint8,
        "BOOL": torch.bool,
    }
)

ReadMode = Literal["mmap", "pread"]


class CheckpointError(LatentLoomError):
    """A weight file that cannot be read; the message names the file."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class UnsafeCheckpointError(CheckpointError):
    """A pickle-based file that would need to run code from the file to be read."""


class CorruptCheckpointError(CheckpointError):
    """A truncated, empty or malformed weight file."""


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


class CheckpointReader(ABC):
    """One open weight file. Use as a context manager; ``tensors`` is known without reading weights."""

    def __init__(self, path: Path, tensors: Mapping[str, TensorInfo], metadata: Mapping[str, str]) -> None:
        self.path = path
        self.tensors = MappingProxyType(dict(tensors))
        self.metadata = MappingProxyType(dict(metadata))

    @property
    @abstractmethod
    def format(self) -> str:
        """"safetensors" or "pickle"."""

    @abstractmethod
    def _read(self, key: str) -> torch.Tensor: ...

    @abstractmethod
    def close(self) -> None:
        """Release the file; tensors already returned stay valid."""

    def get(self, key: str, *, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The tensor ``key`` on the CPU; floating tensors converted to ``dtype`` when given."""
        if key not in self.tensors:
            raise KeyError(f"{self.path}: no tensor named {key!r}")
        tensor = self._read(key)
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        return tensor

    def items(self, *, dtype: torch.dtype | None = None) -> Iterator[tuple[str, torch.Tensor]]:
        for key in self.tensors:
            yield key, self.get(key, dtype=dtype)

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_checkpoint(path: str | os.PathLike[str], *, read_mode: ReadMode = "mmap") -> CheckpointReader:
    """Open a weight file by its extension.

    ``read_mode`` matters for .safetensors only: "mmap" returns tensors that share the file's pages
    (no copy; best when no dtype conversion follows), "pread" reads each tensor into its own buffer
    (best when every tensor is converted anyway: the file's pages are then never mapped into memory).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return SafetensorsReader(path, read_mode=read_mode)
    if suffix in PICKLE_SUFFIXES:
        return PickleReader(path)
    known = ", ".join(sorted(SAFETENSORS_SUFFIXES | PICKLE_SUFFIXES))
    raise CheckpointError(path, f"unknown weight file extension {suffix!r} (known: {known})")


def read_header(path: str | os.PathLike[str]) -> Mapping[str, TensorInfo]:
    """Tensor names, shapes and dtypes of a weight file (for .safetensors without reading any data)."""
    with open_checkpoint(path) as reader:
        return reader.tensors


def read_state_dict(path: str | os.PathLike[str], *, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of a weight file (floating ones converted to ``dtype`` when given)."""
    with open_checkpoint(path, read_mode="pread" if dtype is not None else "mmap") as reader:
        return dict(reader.items(dtype=dtype))


# --- safetensors -----------------------------------------------------------------------------------


class SafetensorsReader(CheckpointReader):
    def __init__(self, path: Path, *, read_mode: ReadMode = "mmap") -> None:
        tensors, metadata = parse_safetensors_header(path)
        super().__init__(path, tensors, metadata)
        self._file = _safe_open(path, read_mode)

    @property
    def format(self) -> str:
        return "safetensors"

    def _read(self, key: str) -> torch.Tensor:
        try:
            return self._file.get_tensor(key)
        except SafetensorError as error:
            raise CorruptCheckpointError(self.path, f"cannot read tensor {key!r}: {error}") from error

    def close(self) -> None:
        self._file.__exit__(None, None, None)


def _safe_open(path: Path, read_mode: ReadMode) -> Any:
    try:
        try:
            handle = safe_open(str(path), framework="pt", device="cpu", backend=read_mode)
        except TypeError:  # safetensors < 0.8 has no backend argument and always memory-maps
            handle = safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError) as error:
        raise CorruptCheckpointError(path, f"not a readable .safetensors file: {error}") from error
    return handle.__enter__()


def parse_safetensors_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Read and check the JSON header: every tensor's bytes must lie inside the file."""
    size = path.stat().st_size
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise CorruptCheckpointError(path, f"file of {size} bytes is too short to be a .safetensors file")
        (header_size,) = struct.unpack("<Q", prefix)
        if header_size > MAX_SAFETENSORS_HEADER or 8 + header_size > size:
            raise CorruptCheckpointError(
                path, f"header length field says {header_size} bytes but the file has {size}: truncated or not .safetensors"
            )
        raw = file.read(header_size)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptCheckpointError(path, f"header is not valid JSON: {error}") from error
    if not isinstance(header, dict):
        raise CorruptCheckpointError(path, "header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_size = size - 8 - header_size
    tensors = {key: _tensor_info(path, key, entry, data_size) for key, entry in header.items()}
    return tensors, {str(k): str(v) for k, v in metadata.items()}


def _tensor_info(path: Path, key: str, entry: Any, data_size: int) -> TensorInfo:
    try:
        dtype_name, shape, (begin, end) = entry["dtype"], tuple(int(n) for n in entry["shape"]), entry["data_offsets"]
    except (TypeError, KeyError, ValueError) as error:
        raise CorruptCheckpointError(path, f"header entry for {key!r} is malformed: {entry!r:.200}") from error
    dtype = SAFETENSORS_DTYPES.get(dtype_name)
    if dtype is None:
        raise CorruptCheckpointError(path, f"tensor {key!r} has unsupported dtype {dtype_name!r}")
    info = TensorInfo(shape=shape, dtype=dtype)
    if end > data_size:
        raise CorruptCheckpointError(
            path, f"truncated: tensor {key!r} ends at byte {end} of the data but the file holds {data_size}"
        )
    if end - begin != info.nbytes:
        raise CorruptCheckpointError(path, f"tensor {key!r} spans {end - begin} bytes, its shape needs {info.nbytes}")
    return info


# --- pickle (.ckpt .pt .pth .bin) -------------------------------------------------------------------


class PickleReader(CheckpointReader):
    """A torch.save file read with ``weights_only=True``, memory-mapped when it is a zip archive."""

    def __init__(self, path: Path) -> None:
        state = _flat_state_dict(path, load_weights_only(path))
        super().__init__(path, {k: TensorInfo(tuple(t.shape), t.dtype) for k, t in state.items()}, {})
        self._state: dict[str, torch.Tensor] = state

    @property
    def format(self) -> str:
        return "pickle"

    def _read(self, key: str) -> torch.Tensor:
        return self._state[key]

    def close(self) -> None:
        self._state = {}


# torch's message ends with advice to allow-list the global; keep only its first sentence, the finding.
_WEIGHTS_ONLY_REASON = re.compile(r"WeightsUnpickler error:\s*([^\n]+?)(?:\.\s|\.?$)", re.MULTILINE)


def load_weights_only(path: str | os.PathLike[str]) -> Any:
    """``torch.load(weights_only=True)`` of a pickle-based file, with LatentLoom's errors.

    Returns whatever the file holds (a state dict, an embedding's dict, …); never runs code from it.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise CorruptCheckpointError(path, "file is empty")
    # mmap needs the zip format of torch >= 1.6; older files are read into memory.
    mmap = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Weights only load failed" not in message:
            raise CorruptCheckpointError(path, f"not a valid torch file: {message[:300]}") from error
        found = _WEIGHTS_ONLY_REASON.search(message)
        reason = found.group(1).strip() if found else "it references objects outside tensors and plain data"
        raise UnsafeCheckpointError(
            path,
            "refused: this file needs code to unpickle, and running it could do anything to this machine. "
            f"LatentLoom reads .ckpt/.pt/.pth/.bin only with torch's weights-only loader, which stopped at: "
            f"{reason[:300].rstrip('.')}. Convert the file to .safetensors with a tool you trust, or get a .safetensors copy.",
        ) from error
    except Exception as error:  # a damaged file fails anywhere in torch's reader, with any exception type
        if isinstance(error, MemoryError):
            raise
        raise CorruptCheckpointError(
            path, f"truncated or corrupt ({type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else 'no detail'})"
        ) from error


def _flat_state_dict(path: Path, loaded: Any) -> dict[str, torch.Tensor]:
    """The name -> tensor mapping inside a loaded file, unwrapping {"state_dict": {...}}.

    Entries that are not tensors (``global_step``, ``epoch``) are bookkeeping, not weights.
    """
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise CheckpointError(path, f"holds a {type(loaded).__name__}, not a mapping of tensor names to tensors")
    state = {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(path, "holds no tensors at its top level or under 'state_dict'")
    return state
