"""What a client or the CLI hands us to run, turned into an API prompt: one place for POST /prompt and
``latentloom run``.

Accepted: an API prompt (bare or under "prompt"), which runs exactly as sent; a workflow in our format or
ComfyUI's UI format, converted by ``workflow_to_prompt`` against the live registry; or a PNG whose text
chunks hold either (its "workflow" chunk is preferred, as when the editor opens it). A converted workflow
also comes back in ComfyUI's UI format, for ``extra_pnginfo.workflow``, so saved images carry a graph
that both tools open.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from latentloom.api import LatentLoomError, NodeRegistry
from latentloom.workflow import (
    ConversionProblem,
    MissingNodeTypes,
    PngMetadataMissing,
    Workflow,
    WorkflowFormatError,
    read_png_metadata,
    require_node_types,
    workflow_from_json,
    workflow_to_comfy_ui,
    workflow_to_prompt,
)


class WorkflowConversionError(LatentLoomError):
    """The workflow has parts the prompt cannot carry (a link to nothing, a value for no input, ...)."""

    def __init__(self, problems: list[ConversionProblem]) -> None:
        listed = "; ".join(str(problem) for problem in problems)
        super().__init__(f"the workflow cannot be turned into a prompt: {listed}")
        self.problems = list(problems)


@dataclass(frozen=True)
class RunnableInput:
    prompt: dict[str, Any]
    # The workflow the prompt was made from; None when an API prompt was sent.
    workflow: Workflow | None = None

    def extra_pnginfo(self, registry: NodeRegistry) -> dict[str, Any]:
        """{"workflow": the graph in ComfyUI's UI format}, what SaveImage embeds; {} for API prompts."""
        if self.workflow is None:
            return {}
        return {"workflow": workflow_to_comfy_ui(self.workflow, registry)}


def is_workflow_json(data: Mapping[str, Any]) -> bool:
    """Our format ("format") or ComfyUI's UI format ("nodes": [...]); anything else is an API prompt."""
    return "format" in data or isinstance(data.get("nodes"), list)


def prompt_from_workflow(workflow: Workflow, registry: NodeRegistry) -> RunnableInput:
    """Raises MissingNodeTypes when a node that would run has no type here, WorkflowConversionError for
    anything else the prompt cannot carry."""
    require_node_types(workflow, registry)
    prompt, problems = workflow_to_prompt(workflow, registry)
    if problems:
        raise WorkflowConversionError(problems)
    return RunnableInput(prompt=prompt, workflow=workflow)


def runnable_from_json(data: Any, registry: NodeRegistry) -> RunnableInput:
    """A parsed JSON value: workflows are converted, API prompts (bare or under "prompt") kept as sent."""
    if not isinstance(data, Mapping):
        kind = type(data).__name__
        raise WorkflowFormatError(f"expected a JSON object (a workflow or an API prompt), got {kind}")
    if is_workflow_json(data):
        return prompt_from_workflow(workflow_from_json(data, registry), registry)
    prompt = data["prompt"] if isinstance(data.get("prompt"), Mapping) else data
    return RunnableInput(prompt=copy.deepcopy(dict(prompt)))


def runnable_from_png(data: bytes, registry: NodeRegistry) -> RunnableInput:
    """The PNG's "workflow" chunk converted, else its "prompt" chunk as it is."""
    metadata = read_png_metadata(data)
    if metadata.workflow is not None:
        return runnable_from_json(metadata.workflow, registry)
    return runnable_from_json(metadata.prompt, registry)


def problem_json(problem: ConversionProblem | str) -> dict[str, Any]:
    """A conversion problem (or a loading problem, which is text) for the wire."""
    if isinstance(problem, str):
        return {"message": problem, "node_id": None, "node_type": None, "input_name": None}
    node_id = None if problem.node_id is None else str(problem.node_id)
    return {
        "message": str(problem),
        "node_id": node_id,
        "node_type": problem.node_type,
        "input_name": problem.input_name,
    }


def workflow_error_body(error: LatentLoomError) -> dict[str, Any]:
    """The structured error shape ({"error": {type, message, details, extra_info}}) of a workflow that
    cannot be run: missing node types, conversion problems, or a file that is not a workflow."""
    if isinstance(error, MissingNodeTypes):
        details = "install the node packs that provide them, or mute those nodes"
        extra = {"missing_node_types": error.counts}
        return _error_body("missing_node_types", str(error), details=details, extra_info=extra)
    if isinstance(error, WorkflowConversionError):
        extra = {"problems": [problem_json(p) for p in error.problems]}
        return _error_body("workflow_conversion_failed", str(error), details="", extra_info=extra)
    kind = "no_workflow_in_png" if isinstance(error, PngMetadataMissing) else "invalid_workflow"
    return _error_body(kind, str(error), details="", extra_info={})


def _error_body(kind: str, message: str, *, details: str, extra_info: dict[str, Any]) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "details": details, "extra_info": extra_info}}
