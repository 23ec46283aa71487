"""Open any workflow file we accept, and save ours.

``load_workflow`` tells the formats apart by their shape: our format ("format": "latentloom-workflow"),
ComfyUI's UI format ("nodes": [...], versions 0.4 and 1), an API prompt ({id: {"class_type",
"inputs"}}, also inside a POST /prompt body {"prompt": {...}}), or a PNG that holds either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from latentloom.workflow.api_import import api_prompt_to_workflow, is_api_prompt
from latentloom.workflow.comfy_import import comfy_ui_to_workflow
from latentloom.workflow.errors import WorkflowFormatError
from latentloom.workflow.migrations import FORMAT_NAME
from latentloom.workflow.missing import name_placeholder_widgets
from latentloom.workflow.model import Workflow
from latentloom.workflow.node_types import NodeTypes, NodeTypeSource, node_types
from latentloom.workflow.png import is_png, read_png_metadata

_NOT_A_WORKFLOW = (
    'not a workflow: expected a LatentLoom workflow ("format": "latentloom-workflow"), a ComfyUI '
    'workflow ("nodes": [...]) or an API prompt ({node id: {"class_type": ..., "inputs": {...}}})'
)


def load_workflow(
    source: Mapping[str, Any] | str | bytes | Path, registry: NodeTypeSource = None
) -> Workflow:
    """Read a workflow from parsed JSON, JSON text, bytes (JSON or PNG) or a file path.

    ``registry`` names the widgets of ComfyUI files and maps ComfyUI's class names to ours; without it
    every node of an imported ComfyUI file is a placeholder that keeps its values unnamed. What did
    not fit is listed in ``workflow.problems``.
    """
    types = node_types(registry)
    if isinstance(source, Path):
        source = source.read_bytes()
    if isinstance(source, bytes | bytearray):
        return _from_bytes(bytes(source), types)
    if isinstance(source, str):
        return workflow_from_json(_parse_json(source), types)
    return workflow_from_json(source, types)


def _parse_json(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        raise WorkflowFormatError("expected JSON text (to read a file, pass its path as a pathlib.Path)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise WorkflowFormatError(f"not valid JSON: {error}") from None


def _from_bytes(data: bytes, types: NodeTypes) -> Workflow:
    if is_png(data):
        metadata = read_png_metadata(data)
        if metadata.workflow is not None:
            return workflow_from_json(metadata.workflow, types)
        return workflow_from_json(metadata.prompt, types)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WorkflowFormatError("not a workflow: neither a PNG nor UTF-8 JSON text") from None
    return workflow_from_json(_parse_json(text), types)


def workflow_from_json(data: Any, registry: NodeTypeSource = None) -> Workflow:
    """A workflow from a parsed JSON value of any accepted format."""
    types = node_types(registry)
    if not isinstance(data, Mapping):
        raise WorkflowFormatError(_NOT_A_WORKFLOW)
    if "format" in data:
        if data.get("format") != FORMAT_NAME:
            found = data.get("format")
            raise WorkflowFormatError(f'unknown workflow "format" {found!r:.40}; expected {FORMAT_NAME!r}')
        workflow = Workflow.from_json(data)
        workflow.problems.extend(name_placeholder_widgets(workflow, types))
        return workflow
    if isinstance(data.get("nodes"), list):
        return comfy_ui_to_workflow(data, types)
    if is_api_prompt(data.get("prompt")):
        return api_prompt_to_workflow(data["prompt"], types)
    if is_api_prompt(data):
        return api_prompt_to_workflow(data, types)
    raise WorkflowFormatError(_NOT_A_WORKFLOW)


INLINE_WIDTH = 110  # the project's line length


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list) or not value


def _is_flat(value: Any) -> bool:
    """Scalars, or containers of scalars (a dict may also hold lists of scalars)."""
    if isinstance(value, dict):
        return all(_is_scalar(v) or (isinstance(v, list) and _is_flat(v)) for v in value.values())
    if isinstance(value, list):
        return all(_is_scalar(v) for v in value)
    return True


def _key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def format_json(value: Any, *, indent: str = "") -> str:
    """JSON that diffs well: objects one key per line, but short flat values (positions, sockets,
    links) on one line."""
    inline = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or not value:
        return inline
    if _is_flat(value) and (isinstance(value, list) or len(inline) + len(indent) <= INLINE_WIDTH):
        return inline
    inner = indent + "  "
    if isinstance(value, list):
        items = [inner + format_json(item, indent=inner) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    items = [f"{inner}{_key(k)}: {format_json(v, indent=inner)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + indent + "}"


def workflow_json_schema() -> dict[str, Any]:
    """The JSON Schema of our format (workflow.schema.json), e.g. for the server to hand out."""
    text = resources.files("latentloom.workflow").joinpath("workflow.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def dump_workflow(workflow: Workflow) -> str:
    """Our file's text: the canonical JSON (see format_json), ending in a newline."""
    return format_json(workflow.to_json()) + "\n"


def save_workflow(workflow: Workflow, path: str | Path) -> None:
    Path(path).write_text(dump_workflow(workflow), encoding="utf-8")
