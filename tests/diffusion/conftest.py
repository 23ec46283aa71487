"""Fixtures for the diffusion tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def sampling_reference(shared_dir: Path) -> dict[str, Any]:
    """ComfyUI 0.8.0's schedule, scheduler and seed numbers (shared/sd15_sampling_reference.json)."""
    return json.loads((shared_dir / "sd15_sampling_reference.json").read_text())
