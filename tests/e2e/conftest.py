"""End-to-end fixtures: a base dir holding a small checkpoint with every key of a real SD1.5 file, and the
server test helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from e2e_graphs import base_dir_with_checkpoint
from support.checkpoint_factory import write_small_sd15_checkpoint

# The websocket/prompt helpers of the server tests (tests/server/server_helpers.py) serve these tests too.
SERVER_TESTS = Path(__file__).resolve().parents[1] / "server"
if str(SERVER_TESTS) not in sys.path:
    sys.path.append(str(SERVER_TESTS))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exactly the keys of shared/sd15_checkpoint_keys.json, with 32-channel blocks and a 64-wide text encoder."""
    return write_small_sd15_checkpoint(tmp_path_factory.mktemp("checkpoint") / "tiny.safetensors")


@pytest.fixture
def base_dir(tmp_path: Path, tiny_checkpoint: Path) -> Path:
    """A fresh base dir (empty input/output/temp) with the tiny checkpoint in models/checkpoints."""
    return base_dir_with_checkpoint(tmp_path / "base", tiny_checkpoint)
