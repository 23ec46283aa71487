"""Server settings: one frozen dataclass, built by the CLI or a test and passed down.

Nothing here touches the disk at import; ``Folders.create`` makes the input/output/temp folders when the
server (or a headless run) starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# The folder types that /view, /upload and UI outputs name (ComfyUI's "type" field).
FOLDER_TYPES = ("output", "input", "temp")


def project_root() -> Path | None:
    """The source checkout holding pyproject.toml, or None when the package is installed elsewhere."""
    candidate = Path(__file__).resolve().parents[1]
    return candidate if (candidate / "pyproject.toml").is_file() else None


MIN_DEFAULT_CACHE_BYTES = 4 * 1024**3


def default_cache_ram_bytes() -> int:
    """Half of the machine's RAM, at least 4 GB: room for a full-size fp32 SD1.5 checkpoint (4.3 GB) and the
    results around it, so an unchanged loader stays cached between prompts instead of reloading each time."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or the value is unknown
        return MIN_DEFAULT_CACHE_BYTES
    return max(MIN_DEFAULT_CACHE_BYTES, physical // 2)


def default_base_dir() -> Path:
    return project_root() or Path.cwd()


def default_web_root() -> Path:
    return (project_root() or Path.cwd()) / "web"


@dataclass(frozen=True)
class Folders:
    """Where prompts read inputs and write outputs; the only folders /view and /upload may touch."""

    input: Path
    output: Path
    temp: Path

    def by_type(self, folder_type: str) -> Path | None:
        """The folder for a ComfyUI folder type ("output", "input", "temp"), None for anything else."""
        return getattr(self, folder_type) if folder_type in FOLDER_TYPES else None

    def create(self) -> None:
        for folder in (self.input, self.output, self.temp):
            folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True, kw_only=True)
class Config:
    base_dir: Path = field(default_factory=default_base_dir)
    listen: str = "127.0.0.1"
    port: int = 8188
    # None: half of this machine's RAM, at least 4 GB (see default_cache_ram_bytes).
    cache_ram_gb: float | None = None
    cache_enabled: bool = True
    web_root: Path = field(default_factory=default_web_root)
    # ComfyUI's default upload limit; it also bounds every other request body.
    max_body_mb: float = 100.0
    history_max_items: int = 10_000
    # None: base_dir/output (the CLI's --out sets it).
    output_dir: Path | None = None
    # ComfyUI-style extra_model_paths.yaml files: more model folders (--extra-model-paths).
    extra_model_paths: tuple[Path, ...] = ()
    # Required on every request when listening beyond loopback (server.auth); None on loopback.
    auth_token: str | None = None
    # The one other origin allowed to call the API, with CORS headers (--enable-cors-header); None: off.
    cors_origin: str | None = None
    # Live sampler previews (--preview-method): "auto", "latent2rgb" or "none" (nothing encoded or sent).
    preview_method: str = "latent2rgb"
    # Frames a websocket client may have waiting; a reader that falls further behind loses previews
    # first and is then disconnected (server.hub).
    ws_max_pending_frames: int = 1024

    def folders(self) -> Folders:
        base = Path(self.base_dir).resolve()
        output = Path(self.output_dir).resolve() if self.output_dir is not None else base / "output"
        return Folders(input=base / "input", output=output, temp=base / "temp")

    @property
    def database_path(self) -> Path:
        """The SQLite file holding the queue and history (server.store)."""
        return Path(self.base_dir).resolve() / "user" / "latentloom.db"

    @property
    def max_body_bytes(self) -> int:
        return round(self.max_body_mb * 1024 * 1024)

    @property
    def cache_ram_budget_bytes(self) -> int:
        if self.cache_ram_gb is None:
            return default_cache_ram_bytes()
        return max(0, round(self.cache_ram_gb * 1024**3))

    @property
    def url(self) -> str:
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        return f"http://{host}:{self.port}/"
