"""Running a workflow, API-prompt or PNG file in-process, without HTTP (the CLI's ``run``).

The prompt is validated and executed by the same registry and executor a server would use; a tqdm bar
on stderr follows the progress events, and the files the output nodes wrote are found in their UI.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from latentloom.api import NodeRegistry
from latentloom.engine import protocol
from latentloom.engine.executor import ExecutionOutcome, Executor
from latentloom.engine.graph import Graph
from latentloom.engine.protocol import Event
from latentloom.workflow import Workflow, WorkflowFormatError
from latentloom.workflow.png import is_png
from server.config import Folders
from server.workflow_input import RunnableInput, runnable_from_json, runnable_from_png


class WorkflowFileError(ValueError):
    """The workflow file or an override cannot be used (unreadable, not a workflow or prompt, bad --set)."""


def load_runnable(path: Path, registry: NodeRegistry) -> RunnableInput:
    """The prompt to run from ``path``: an API prompt as it is, a workflow (ours or ComfyUI's UI format)
    converted, or a PNG holding either. Raises WorkflowFileError for a file that is none of these, and
    MissingNodeTypes / WorkflowConversionError (see server.workflow_input) for a workflow that cannot run.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WorkflowFileError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        if is_png(data):
            runnable = runnable_from_png(data, registry)
        else:
            runnable = runnable_from_json(_parse_json(path, data), registry)
    except WorkflowFormatError as error:
        raise WorkflowFileError(f"{path}: {error}") from None
    if not runnable.prompt and runnable.workflow is not None:
        raise WorkflowFileError(f"{path} is a canvas workflow with no nodes that run (muted or editor-only)")
    return runnable


def _parse_json(path: Path, data: bytes) -> Any:
    try:
        parsed = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WorkflowFileError(f"{path} is not valid JSON (nor a PNG): {error}") from None
    if not isinstance(parsed, dict):
        raise WorkflowFileError(f"{path} must hold a JSON object: a workflow or an API prompt")
    return parsed


def parse_override(text: str) -> tuple[str, str, Any]:
    """``NODE.INPUT=VALUE`` → (node id, input name, value); the value is JSON when it parses, else text."""
    target, equals, raw = text.partition("=")
    node_id, dot, input_name = target.rpartition(".")
    if not equals or not dot or not node_id or not input_name:
        raise WorkflowFileError(f"--set {text!r}: expected NODE.INPUT=VALUE, e.g. 3.seed=42")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return node_id, input_name, value


def apply_widget_overrides(workflow: Workflow, overrides: list[str]) -> None:
    """The --set values in the workflow's widgets too, so an image saved with the graph reproduces the run.

    Only nodes and widgets the workflow has are set (the prompt overrides already checked the rest).
    """
    for text in overrides:
        node_id, input_name, value = parse_override(text)
        node = next((n for n in workflow.nodes if str(n.id) == node_id), None)
        if node is not None and input_name in node.widgets:
            node.widgets[input_name] = value


def apply_overrides(prompt: dict[str, Any], overrides: list[str]) -> None:
    for text in overrides:
        node_id, input_name, value = parse_override(text)
        node = prompt.get(node_id)
        if not isinstance(node, dict):
            known = ", ".join(sorted(map(str, prompt))[:20])
            raise WorkflowFileError(f"--set {text!r}: the prompt has no node {node_id!r} (nodes: {known})")
        inputs = node.setdefault("inputs", {})
        if not isinstance(inputs, dict):
            raise WorkflowFileError(f"--set {text!r}: node {node_id!r} has no inputs object")
        inputs[input_name] = value


class ProgressDisplay:
    """Turns progress events into a tqdm bar for the node reporting them (on ``stream``, normally stderr)."""

    def __init__(self, graph: Graph, *, stream: TextIO, enabled: bool = True) -> None:
        self._graph = graph
        self._stream = stream
        self._enabled = enabled
        self._node_id: str | None = None
        self._bar: tqdm | None = None

    def __call__(self, event: Event) -> None:
        if event.type == protocol.EXECUTING:
            self._close_bar()
            self._node_id = event.data.get("node")
        elif event.type == protocol.PROGRESS and event.data.get("node") == self._node_id:
            if self._bar is None:
                self._bar = self._open_bar(event.data["max"])
            self._bar.total = event.data["max"]
            self._bar.n = event.data["value"]
            self._bar.refresh()

    def _open_bar(self, total: float) -> tqdm:
        node = self._graph.nodes.get(self._node_id)
        label = f"#{self._node_id} {node.class_type}" if node is not None else f"#{self._node_id}"
        return tqdm(total=total, desc=label, file=self._stream, leave=True, disable=not self._enabled)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self._close_bar()


def run_graph(
    executor: Executor, graph: Graph, *, display: ProgressDisplay, extra_data: Mapping[str, Any] | None = None
) -> ExecutionOutcome:
    """Execute on a helper thread, so that Ctrl+C in the main thread interrupts the prompt cleanly.

    ``extra_data`` is the request's (extra_pnginfo: what SaveImage embeds besides the prompt)."""
    interrupt = threading.Event()
    done = threading.Event()
    finished: list[ExecutionOutcome | BaseException] = []

    def target() -> None:
        try:
            prompt_id = str(uuid.uuid4())
            outcome = executor.run(
                graph, prompt_id=prompt_id, emit=display, interrupt=interrupt, extra_data=extra_data
            )
            finished.append(outcome)
        except BaseException as error:  # handed to the main thread, which raises it
            finished.append(error)
        finally:
            done.set()

    threading.Thread(target=target, name="latentloom-run", daemon=True).start()
    # Waiting on an Event, not Thread.join: a KeyboardInterrupt inside join() can leave the thread
    # looking finished while it still runs.
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        interrupt.set()
        done.wait()
    finally:
        display.close()
    if isinstance(finished[0], BaseException):
        raise finished[0]
    return finished[0]


def output_files(ui_outputs: Mapping[str, Mapping[str, Any]], folders: Folders) -> Iterator[Path]:
    """The files named in UI outputs: every entry with a filename (images, and any other file list)."""
    for ui in ui_outputs.values():
        for entries in ui.values():
            if not isinstance(entries, list | tuple):
                continue
            for entry in entries:
                if not isinstance(entry, Mapping) or "filename" not in entry:
                    continue
                folder = folders.by_type(entry.get("type") or "output")
                if folder is not None:
                    yield folder / (entry.get("subfolder") or "") / entry["filename"]
