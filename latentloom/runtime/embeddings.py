"""Textual-inversion embeddings: find a named file in the embeddings folders and read its vectors.

A prompt names one as ``embedding:name`` (see prompt_syntax); the name may hold sub-folders and may leave
out the extension. Files are read without running pickled code: ``.safetensors`` directly, ``.pt`` /
``.bin`` through ``torch.load(weights_only=True)``. The layouts in use:

- A1111 ``.pt``: ``{"string_to_param": {"*": T[n, D]}, ...}``
- SDXL-era files holding one tensor per text encoder: ``{"clip_l": T, "clip_g": T}`` (``key`` picks one)
- safetensors from training scripts: ``{"emb_params": T}``, or any single tensor
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import safetensors.torch
import torch

from latentloom.api.errors import LatentLoomError

EMBEDDING_EXTENSIONS = (".safetensors", ".pt", ".bin")


class EmbeddingError(LatentLoomError):
    """An embedding named in a prompt cannot be used: unreadable, unknown layout or wrong width."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"embedding '{name}': {message}")
        self.name = name
        self.reason = message


class EmbeddingNotFound(EmbeddingError):
    """No file in the embeddings folders matches the name."""


class EmbeddingLibrary:
    """The textual-inversion files under some folders (typically ``models/embeddings``)."""

    def __init__(self, folders: Iterable[Path | str], *, key: str = "clip_l") -> None:
        self.folders = tuple(Path(folder) for folder in folders)
        self.key = key  # which tensor to take from files that hold one per text encoder

    def names(self) -> list[str]:
        """Every embedding's name as a prompt would write it: the relative path without extension."""
        found = set()
        for folder in self.folders:
            for path in folder.rglob("*"):
                if path.suffix.lower() in EMBEDDING_EXTENSIONS and path.is_file():
                    found.add(path.relative_to(folder).with_suffix("").as_posix())
        return sorted(found)

    def find(self, name: str) -> Path:
        """The file for ``name``: looked up in each folder and, as ComfyUI does, in each sub-folder."""
        for directory in self._search_directories():
            candidate = os.path.normpath(os.path.join(directory, name))
            if os.path.commonpath((directory, candidate)) != directory:
                continue  # "../x" must not leave the embeddings folders
            for path in (candidate, *(candidate + ext for ext in EMBEDDING_EXTENSIONS)):
                if os.path.isfile(path):
                    return Path(path)
        searched = ", ".join(str(folder) for folder in self.folders) or "no folders"
        raise EmbeddingNotFound(name, f"no such file in {searched}")

    def load(self, name: str, *, width: int) -> torch.Tensor:
        """The embedding's vectors as a float32 tensor [n, width] on the CPU."""
        path = self.find(name)
        try:
            contents = _read_file(path)
        except Exception as error:  # any parse failure of a user's file becomes one typed error
            raise EmbeddingError(name, f"cannot read {path}: {error}") from error
        vectors = _pick_vectors(contents, name=name, key=self.key, width=width)
        if not vectors.is_floating_point() or vectors.dim() not in (1, 2) or vectors.shape[-1] != width:
            raise EmbeddingError(
                name,
                f"holds a {vectors.dtype} tensor of shape {tuple(vectors.shape)}; this text encoder takes "
                f"vectors of width {width} (is the embedding for another model?)",
            )
        return vectors.detach().reshape(-1, width).to(torch.float32)

    def _search_directories(self) -> list[str]:
        directories = []
        for folder in self.folders:
            top = os.path.abspath(folder)
            directories.append(top)
            for root, subdirs, _files in os.walk(top, followlinks=True):
                subdirs.sort()
                directories.extend(os.path.join(root, sub) for sub in subdirs)
        return directories


def _read_file(path: Path) -> object:
    if path.suffix.lower() == ".safetensors":
        return safetensors.torch.load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


def _pick_vectors(contents: object, *, name: str, key: str, width: int) -> torch.Tensor:
    if isinstance(contents, torch.Tensor):
        return contents
    if not isinstance(contents, Mapping):
        raise EmbeddingError(name, f"holds a {type(contents).__name__}, not a tensor or a dict of tensors")
    string_to_param = contents.get("string_to_param")
    if isinstance(string_to_param, Mapping) and string_to_param:
        return next(iter(string_to_param.values()))
    for known_key in (key, "emb_params"):
        if isinstance(contents.get(known_key), torch.Tensor):
            return contents[known_key]
    tensors = {k: v for k, v in contents.items() if isinstance(v, torch.Tensor)}
    if len(tensors) == 1:
        return next(iter(tensors.values()))
    fitting = [v for v in tensors.values() if v.shape[-1:] == (width,)]
    if len(fitting) == 1:
        return fitting[0]
    raise EmbeddingError(name, f"no known embedding layout among the keys {sorted(map(str, contents))}")
