"""Where models, inputs and outputs live on disk.

Under a base directory: models/checkpoints, models/vae, models/loras, models/embeddings, input/, output/,
temp/. Extra model folders come from YAML files in ComfyUI's ``extra_model_paths.yaml`` layout, which
also describes an AUTOMATIC1111 install (see docs/models.md). Listings are re-scanned on every call, so
combo choices follow the folders without a restart: a scan is a few ``stat`` calls per folder, and a
cache keyed by folder mtimes would miss files added within the clock tick of the previous scan.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from latentloom.api.errors import LatentLoomError

MODEL_KINDS = ("checkpoints", "vae", "loras", "embeddings")
DATA_KINDS = ("input", "output", "temp")
MODEL_EXTENSIONS = frozenset({".safetensors", ".ckpt", ".pt", ".pth", ".bin"})


class ModelFolderError(LatentLoomError):
    """A folder kind, a file name or an extra-model-paths file that cannot be used."""


class ModelNotFoundError(ModelFolderError, FileNotFoundError):
    """A model name that is in none of the folders of its kind."""


def _check_kind(kind: str) -> None:
    if kind not in MODEL_KINDS and kind not in DATA_KINDS:
        known = ", ".join((*MODEL_KINDS, *DATA_KINDS))
        raise ModelFolderError(f"unknown folder kind {kind!r}; known kinds: {known}")


class ModelFolders:
    """The folders of one LatentLoom install: made once in the composition root and passed down.

    ``extra_paths`` are YAML files in the extra_model_paths.yaml layout (``--extra-model-paths FILE``);
    their folders are searched after the base directory's own (``is_default: true`` puts them first).
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        *,
        extra_paths: Sequence[str | os.PathLike[str]] = (),
        output_dir: str | os.PathLike[str] | None = None,
    ):
        self.base_dir = Path(base_dir).expanduser().resolve()
        # ``output_dir`` moves outputs elsewhere than base_dir/output (``latentloom run --out``).
        self._output_dir = None if output_dir is None else Path(output_dir).expanduser().resolve()
        extra = [read_extra_model_paths(Path(p)) for p in extra_paths]
        self._roots = {kind: _ordered_roots(self.base_dir / "models" / kind, kind, extra) for kind in MODEL_KINDS}

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self._output_dir or self.base_dir / "output"

    @property
    def temp_dir(self) -> Path:
        return self.base_dir / "temp"

    def roots(self, kind: str) -> tuple[Path, ...]:
        """The folders searched for ``kind``, in search order (the first one is where new files go)."""
        _check_kind(kind)
        if kind == "output":
            return (self.output_dir,)
        if kind in DATA_KINDS:
            return (self.base_dir / kind,)
        return self._roots[kind]

    def create_default_dirs(self) -> None:
        """Make the base directory's own folders (never the extra ones, which belong to another install)."""
        for kind in (*MODEL_KINDS, *DATA_KINDS):
            self.roots(kind)[0].mkdir(parents=True, exist_ok=True)

    def list(self, kind: str, *, extensions: Iterable[str] | None = None) -> list[str]:
        """Sorted relative names ("sub/model.safetensors") of the files of ``kind``, scanned now.

        Model kinds keep only model extensions unless ``extensions`` says otherwise; input/output/temp
        list every file. A name found in two folders is listed once (the first folder wins in ``path``).
        """
        _check_kind(kind)
        if extensions is None and kind in MODEL_KINDS:
            extensions = MODEL_EXTENSIONS
        wanted = None if extensions is None else frozenset(e.lower() for e in extensions)
        names: set[str] = set()
        for root in self.roots(kind):
            names.update(n for n in _walk_files(root) if wanted is None or PurePosixPath(n).suffix.lower() in wanted)
        return sorted(names)

    def path(self, kind: str, name: str) -> Path:
        """The file that ``name`` (as ``list`` returns it) refers to; never a path outside the folders."""
        _check_kind(kind)
        relative = _safe_relative(kind, name)
        for root in self.roots(kind):
            candidate = root.joinpath(*relative.parts)
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(r) for r in self.roots(kind))
        raise ModelNotFoundError(f"{kind} file {name!r} was not found in: {searched}")


def _safe_relative(kind: str, name: str) -> PurePosixPath:
    """``name`` as a relative path that cannot climb out of a folder; refuses anything else."""
    if not isinstance(name, str) or not name.strip():
        raise ModelFolderError(f"{kind} file name must be a non-empty string, got {name!r}")
    relative = PurePosixPath(name)
    if relative.is_absolute() or Path(name).is_absolute() or ".." in relative.parts or "\x00" in name:
        raise ModelFolderError(f"{kind} file name {name!r} must be a relative name inside the {kind} folders")
    return relative


def _walk_files(root: Path) -> Iterator[str]:
    """Relative "/"-separated names of the non-hidden files under ``root``; follows symlinked folders
    (people link model folders in) but visits each real folder once, so a link loop ends."""
    if not root.is_dir():
        return
    seen: set[str] = set()
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable folder: list what can be read rather than fail the whole combo
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                stack.append((Path(entry.path), f"{prefix}{entry.name}/"))
            elif entry.is_file():
                yield prefix + entry.name


def _ordered_roots(own: Path, kind: str, extra: Sequence[ExtraModelPaths]) -> tuple[Path, ...]:
    first = [p for config in extra for p in config.default_first.get(kind, ())]
    last = [p for config in extra for p in config.folders.get(kind, ())]
    ordered: list[Path] = []
    for folder in (*first, own, *last):
        if folder not in ordered:
            ordered.append(folder)
    return tuple(ordered)


@dataclass(frozen=True)
class ExtraModelPaths:
    """The model folders an extra_model_paths.yaml file adds, by kind (only the kinds LatentLoom uses).

    ``default_first`` holds the folders of ``is_default: true`` sections, searched before our own.
    """

    folders: Mapping[str, tuple[Path, ...]]
    default_first: Mapping[str, tuple[Path, ...]]


def read_extra_model_paths(config_file: Path) -> ExtraModelPaths:
    """Parse a ComfyUI-style extra_model_paths.yaml.

    Each top-level section may have ``base_path`` (``~`` and ``$VARS`` expanded; relative to the YAML
    file's folder) and entries ``kind: path`` whose value may hold several paths, one per line, each
    relative to base_path. Kinds LatentLoom has no use for (controlnet, upscale_models, …) are skipped.
    """
    try:
        document = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ModelFolderError(f"cannot read extra model paths file {config_file}: {error}") from error
    except yaml.YAMLError as error:
        raise ModelFolderError(f"extra model paths file {config_file} is not valid YAML: {error}") from error
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ModelFolderError(f"extra model paths file {config_file}: expected sections (a mapping) at the top")
    folders: dict[str, list[Path]] = {}
    default_first: dict[str, list[Path]] = {}
    for section_name, section in document.items():
        if section is None:
            continue
        if not isinstance(section, dict):
            raise ModelFolderError(f"extra model paths file {config_file}: section {section_name!r} is not a mapping")
        base = _section_base(config_file, section_name, section)
        target = default_first if section.get("is_default") is True else folders
        for kind, value in section.items():
            if kind in MODEL_KINDS:
                target.setdefault(kind, []).extend(_section_paths(config_file, section_name, kind, value, base))
    return ExtraModelPaths(
        folders={k: tuple(v) for k, v in folders.items()},
        default_first={k: tuple(v) for k, v in default_first.items()},
    )


def _section_base(config_file: Path, section_name: str, section: Mapping[str, object]) -> Path:
    raw = section.get("base_path")
    if raw is None:
        return config_file.resolve().parent
    if not isinstance(raw, str):
        raise ModelFolderError(f"extra model paths file {config_file}: {section_name}.base_path must be a string")
    base = Path(os.path.expandvars(os.path.expanduser(raw.strip())))
    return base if base.is_absolute() else (config_file.resolve().parent / base)


def _section_paths(config_file: Path, section: str, kind: str, value: object, base: Path) -> list[Path]:
    if not isinstance(value, str):
        raise ModelFolderError(
            f"extra model paths file {config_file}: {section}.{kind} must be a path or lines of paths"
        )
    lines = (line.strip() for line in value.splitlines())
    return [Path(os.path.normpath(base / os.path.expandvars(os.path.expanduser(line)))) for line in lines if line]
