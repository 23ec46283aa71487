"""Fake nodes for server tests, registered through the extra-pack hook.

The fake pack records every execution, so tests can tell a node that ran from one served by the cache.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from latentloom.api import (
    FloatInput,
    IntInput,
    NodeInputError,
    NodeResult,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
    hookimpl,
)


class RecordingNode(NodeType):
    """Base of the fake nodes: appends (node type, node id) to the pack's run log before running."""

    def __init__(self, pack: FakePack) -> None:
        self.pack = pack

    def execute(self, ctx, **inputs):
        self.pack.record(self.schema.type, ctx.node_id)
        return self.run(ctx, **inputs)


class Number(RecordingNode):
    schema = NodeSchema(
        type="TestNumber",
        category="testing",
        required=(IntInput("value", default=0, min=-1_000_000, max=1_000_000),),
        outputs=(Output("INT"),),
    )

    def run(self, ctx, value):
        return (value,)


class Add(RecordingNode):
    schema = NodeSchema(
        type="TestAdd",
        category="testing",
        required=(IntInput("a"), IntInput("b")),
        outputs=(Output("INT", "sum"),),
    )

    def run(self, ctx, a, b):
        return (a + b,)


class Slow(RecordingNode):
    """Sleeps ``steps`` times, reporting progress each step (which is where an interrupt lands)."""

    schema = NodeSchema(
        type="TestSlow",
        category="testing",
        required=(
            IntInput("value"),
            IntInput("steps", default=5, min=1, max=10_000),
            FloatInput("step_seconds", default=0.01, min=0.0, max=1.0),
        ),
        outputs=(Output("INT"),),
    )

    def run(self, ctx, value, steps, step_seconds):
        for step in range(steps):
            time.sleep(step_seconds)
            ctx.progress(step + 1, steps)
        return (value,)


class SaveText(RecordingNode):
    """An output node: writes its value to a new text file in output/ and shows it like a saved image."""

    schema = NodeSchema(
        type="TestSaveText",
        category="testing",
        output_node=True,
        required=(IntInput("value", min=-1_000_000_000), StringInput("filename_prefix", default="result")),
    )

    def run(self, ctx, value, filename_prefix):
        output_dir = self.pack.output_dir
        output_dir.mkdir(parents=True, exist_ok=True)
        index = len(list(output_dir.glob(f"{filename_prefix}_*.txt")))
        name = f"{filename_prefix}_{index:05d}.txt"
        (output_dir / name).write_text(str(value), encoding="utf-8")
        return NodeResult(ui={"images": [{"filename": name, "subfolder": "", "type": "output"}]})


class Fail(RecordingNode):
    schema = NodeSchema(type="TestFail", category="testing", output_node=True, required=(IntInput("value"),))

    def run(self, ctx, value):
        raise NodeInputError("value", f"{value} is refused on purpose")


class FakePack:
    """A node pack object (pluggy accepts any object with hookimpl methods)."""

    NODE_TYPES = (Number, Add, Slow, SaveText, Fail)

    def __init__(self, output_dir: Path) -> None:
        self.__name__ = "fake_pack"
        self.output_dir = output_dir
        self._lock = threading.Lock()
        self._runs: list[tuple[str, str]] = []

    def record(self, node_type: str, node_id: str) -> None:
        with self._lock:
            self._runs.append((node_type, node_id))

    @property
    def runs(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._runs)

    @hookimpl
    def register_nodes(self, registry, services):
        for node_class in self.NODE_TYPES:
            registry.register(node_class(self), source="fake_pack")
