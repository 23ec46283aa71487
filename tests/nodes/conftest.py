"""A base directory holding the tiny SD1.5-layout checkpoint, the first-party nodes made over it, and a
real execution context that records progress events."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from nodes_harness import TINY_CHECKPOINT, NodeBench
from support.checkpoint_factory import write_tiny_sd15_checkpoint

from latentloom.engine.context import NodeContext


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("nodes_base")
    (base / "models" / "checkpoints").mkdir(parents=True)
    write_tiny_sd15_checkpoint(base / "models" / "checkpoints" / TINY_CHECKPOINT)
    return base


@pytest.fixture(scope="session")
def bench(tiny_base_dir: Path) -> NodeBench:
    """The node types over the tiny base dir, and the checkpoint loaded once through CheckpointLoader."""
    return NodeBench.over(tiny_base_dir)


@pytest.fixture
def ctx() -> NodeContext:
    """The engine's own context; ``ctx.events`` lists what it emitted, ``ctx.interrupt`` stops the node."""
    events: list = []
    interrupt = threading.Event()
    context = NodeContext(prompt_id="test", node_id="1", emit=events.append, interrupt=interrupt)
    context.events = events  # type: ignore[attr-defined]
    context.interrupt = interrupt  # type: ignore[attr-defined]
    return context
