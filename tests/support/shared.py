"""Locate the shared reference folder that sits beside the repository (``../shared`` from the repo root)."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_ENV = "LATENTLOOM_SHARED"


def shared_dir() -> Path:
    """The shared folder: ``<repo>/../shared`` when it exists, else ``$LATENTLOOM_SHARED``."""
    beside_repo = Path(__file__).resolve().parents[2].parent / "shared"
    if beside_repo.is_dir():
        return beside_repo
    from_env = os.environ.get(SHARED_ENV)
    if from_env and Path(from_env).is_dir():
        return Path(from_env)
    raise FileNotFoundError(f"shared folder not found at {beside_repo}; set {SHARED_ENV} to its path")
