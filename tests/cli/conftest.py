"""A small fake node pack for the CLI: numbers, an adder with progress, a text-file output, a failure."""

from __future__ import annotations

import _thread
import json
import time
from pathlib import Path

import pytest

from latentloom.api import (
    IntInput,
    NodeInputError,
    NodeResult,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
    hookimpl,
)


class Number(NodeType):
    schema = NodeSchema(
        type="CliNumber", category="cli", required=(IntInput("value"),), outputs=(Output("INT"),)
    )

    def execute(self, ctx, value):
        return (value,)


class StepAdd(NodeType):
    """Adds in three steps, reporting progress after each (what drives the progress bar)."""

    schema = NodeSchema(
        type="CliAdd",
        category="cli",
        required=(IntInput("a"), IntInput("b")),
        outputs=(Output("INT", "sum"),),
    )

    def execute(self, ctx, a, b):
        for step in range(3):
            ctx.progress(step + 1, 3)
        return (a + b,)


class SaveText(NodeType):
    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.schema = NodeSchema(
            type="CliSaveText",
            category="cli",
            output_node=True,
            required=(IntInput("value"), StringInput("filename_prefix", default="result")),
        )

    def execute(self, ctx, value, filename_prefix):
        self.output_dir.joinpath("texts").mkdir(parents=True, exist_ok=True)
        name = f"{filename_prefix}_{value}.txt"
        self.output_dir.joinpath("texts", name).write_text(str(value), encoding="utf-8")
        return NodeResult(ui={"images": [{"filename": name, "subfolder": "texts", "type": "output"}]})


class Slow(NodeType):
    """Sleeps 10 ms per step, reporting progress (where an interrupt lands).

    ``ctrl_c_at_step`` > 0 acts like a user pressing Ctrl+C at that step (KeyboardInterrupt in the main
    thread), so the CLI's handling can be tested while a node is really running.
    """

    schema = NodeSchema(
        type="CliSlow",
        category="cli",
        required=(IntInput("steps", min=1, max=100_000), IntInput("ctrl_c_at_step", default=0)),
        outputs=(Output("INT"),),
    )

    def execute(self, ctx, steps, ctrl_c_at_step):
        for step in range(1, steps + 1):
            if step == ctrl_c_at_step:
                _thread.interrupt_main()
            time.sleep(0.01)
            ctx.progress(step, steps)
        return (steps,)


class Fail(NodeType):
    schema = NodeSchema(type="CliFail", category="cli", output_node=True, required=(IntInput("value"),))

    def execute(self, ctx, value):
        raise NodeInputError("value", f"{value} is refused on purpose")


class CliPack:
    def __init__(self, output_dir: Path) -> None:
        self.__name__ = "cli_pack"
        self.output_dir = output_dir

    @hookimpl
    def register_nodes(self, registry, services):
        for node in (Number(), StepAdd(), SaveText(self.output_dir), Slow(), Fail()):
            registry.register(node, source="cli_pack")


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    return tmp_path / "output"


@pytest.fixture
def cli_pack(output_dir: Path) -> CliPack:
    return CliPack(output_dir)


@pytest.fixture
def pack_writing_to() -> type[CliPack]:
    """The pack class, for a test that picks where its output node writes."""
    return CliPack


@pytest.fixture
def workflow_file(tmp_path: Path) -> Path:
    """2 + 3 → save, as an API prompt file."""
    prompt = {
        "1": {"class_type": "CliNumber", "inputs": {"value": 2}},
        "2": {"class_type": "CliNumber", "inputs": {"value": 3}},
        "3": {"class_type": "CliAdd", "inputs": {"a": ["1", 0], "b": ["2", 0]}},
        "4": {"class_type": "CliSaveText", "inputs": {"value": ["3", 0], "filename_prefix": "sum"}},
    }
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(prompt))
    return path
