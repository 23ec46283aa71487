"""A session-wide LoraBench (tiny checkpoints, every first-party node) and an execution context."""

from __future__ import annotations

import threading

import pytest
from lora_bench import LoraBench

from latentloom.engine.context import NodeContext


@pytest.fixture(scope="session")
def bench(tmp_path_factory: pytest.TempPathFactory) -> LoraBench:
    return LoraBench.over(tmp_path_factory.mktemp("lora_base"))


@pytest.fixture
def ctx() -> NodeContext:
    return NodeContext(prompt_id="test", node_id="1", emit=lambda event: None, interrupt=threading.Event())
