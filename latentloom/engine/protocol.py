"""Every websocket event and error body the server sends, in one place.

Names and payload keys follow ComfyUI's websocket protocol exactly, because existing clients parse them.
The web client mirrors EVENT_TYPES. Timestamps are integer milliseconds since the epoch.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from latentloom.engine.errors import GraphValidationError, NodeExecutionError, Problem

STATUS = "status"
EXECUTION_START = "execution_start"
EXECUTION_CACHED = "execution_cached"
EXECUTING = "executing"
PROGRESS = "progress"
EXECUTED = "executed"
EXECUTION_SUCCESS = "execution_success"
EXECUTION_ERROR = "execution_error"
EXECUTION_INTERRUPTED = "execution_interrupted"

EVENT_TYPES: frozenset[str] = frozenset(
    {
        STATUS,
        EXECUTION_START,
        EXECUTION_CACHED,
        EXECUTING,
        PROGRESS,
        EXECUTED,
        EXECUTION_SUCCESS,
        EXECUTION_ERROR,
        EXECUTION_INTERRUPTED,
    }
)

# The events a prompt's history keeps as status.messages (ComfyUI keeps exactly these).
STATUS_MESSAGE_TYPES: frozenset[str] = frozenset(
    {EXECUTION_START, EXECUTION_CACHED, EXECUTION_SUCCESS, EXECUTION_ERROR, EXECUTION_INTERRUPTED}
)


@dataclass(frozen=True)
class Event:
    """One websocket message: ``{"type": type, "data": data}`` on the wire.

    ``preview`` rides along with a progress event when a node offers a preview image; it is not part of
    the JSON (ComfyUI sends previews as separate binary frames) and the server decides how to encode it.
    """

    type: str
    data: dict[str, Any]
    preview: Any = field(default=None, compare=False, repr=False)

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data}


def now_ms() -> int:
    return int(time.time() * 1000)


def status(queue_remaining: int, *, sid: str | None = None) -> Event:
    """The queue size; sent on connect (with the client's sid) and whenever the queue changes."""
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return Event(STATUS, data)


def execution_start(prompt_id: str, *, timestamp: int | None = None) -> Event:
    return Event(EXECUTION_START, {"prompt_id": prompt_id, "timestamp": _stamp(timestamp)})


def execution_cached(prompt_id: str, nodes: Iterable[str], *, timestamp: int | None = None) -> Event:
    """The nodes of this prompt whose results come from the cache."""
    return Event(EXECUTION_CACHED, {"nodes": list(nodes), "prompt_id": prompt_id, "timestamp": _stamp(timestamp)})


def executing(prompt_id: str, node_id: str | None) -> Event:
    """A node starts running; ``node_id`` None means the prompt has finished."""
    return Event(EXECUTING, {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})


def progress(prompt_id: str, node_id: str, value: float, total: float, *, preview: Any = None) -> Event:
    return Event(
        PROGRESS, {"value": value, "max": total, "prompt_id": prompt_id, "node": node_id}, preview=preview
    )


def executed(prompt_id: str, node_id: str, output: Mapping[str, Any]) -> Event:
    """A node's UI output (e.g. the images it saved)."""
    return Event(
        EXECUTED, {"node": node_id, "display_node": node_id, "output": dict(output), "prompt_id": prompt_id}
    )


def execution_success(prompt_id: str, *, timestamp: int | None = None) -> Event:
    return Event(EXECUTION_SUCCESS, {"prompt_id": prompt_id, "timestamp": _stamp(timestamp)})


def execution_error(
    prompt_id: str,
    error: NodeExecutionError,
    *,
    executed: Sequence[str],
    current_outputs: Sequence[str],
    timestamp: int | None = None,
) -> Event:
    """A node failed. ``current_outputs`` lists the nodes whose results exist (ran or came from cache)."""
    data = {
        "prompt_id": prompt_id,
        "node_id": error.node_id,
        "node_type": error.class_type,
        "executed": list(executed),
        "exception_message": error.message,
        "exception_type": error.exception_type,
        "traceback": list(error.traceback),
        "current_inputs": dict(error.current_inputs),
        "current_outputs": list(current_outputs),
        "timestamp": _stamp(timestamp),
    }
    return Event(EXECUTION_ERROR, data)


def execution_interrupted(
    prompt_id: str,
    *,
    node_id: str | None,
    node_type: str | None,
    executed: Sequence[str],
    timestamp: int | None = None,
) -> Event:
    """The user stopped the prompt; ``node_id`` is the node that was running (None: before any node)."""
    data = {
        "prompt_id": prompt_id,
        "node_id": node_id,
        "node_type": node_type,
        "executed": list(executed),
        "timestamp": _stamp(timestamp),
    }
    return Event(EXECUTION_INTERRUPTED, data)


def _stamp(timestamp: int | None) -> int:
    return now_ms() if timestamp is None else timestamp


# ---- binary preview frames (ComfyUI's BinaryEventTypes) ------------------------------------------

# Sent to clients that sent feature_flags without supports_preview_metadata: uint32 kind, uint32 image
# format (1 JPEG, 2 PNG), the image bytes.
PREVIEW_IMAGE = 1
# Sent to clients whose feature_flags say supports_preview_metadata: uint32 kind, uint32 length of the
# UTF-8 JSON metadata, the metadata, the image bytes.
PREVIEW_IMAGE_WITH_METADATA = 4
_IMAGE_FORMATS = MappingProxyType({"image/jpeg": 1, "image/png": 2})


def preview_image_frame(image: bytes, *, image_type: str) -> bytes:
    """A kind-1 frame: no metadata, so the client shows it on the node that is executing."""
    return struct.pack(">II", PREVIEW_IMAGE, _IMAGE_FORMATS[image_type]) + image


def preview_metadata_frame(image: bytes, *, prompt_id: str, node_id: str, image_type: str) -> bytes:
    """A kind-4 frame naming the prompt and node (top-level nodes: display/real node = node, no parent)."""
    metadata = {
        "node_id": node_id,
        "prompt_id": prompt_id,
        "display_node_id": node_id,
        "parent_node_id": None,
        "real_node_id": node_id,
        "image_type": image_type,
    }
    encoded = json.dumps(metadata).encode("utf-8")
    return struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(encoded)) + encoded + image


# ---- the /prompt 400 body -------------------------------------------------------------------------

_PROMPT_LEVEL_MESSAGES = MappingProxyType(
    {
        "invalid_prompt": "Invalid prompt",
        "prompt_no_outputs": "Prompt has no outputs",
        "unknown_output_node": "Requested output node is not in the prompt",
    }
)


def validation_error_body(error: GraphValidationError) -> dict[str, Any]:
    """ComfyUI's /prompt 400 body: one top-level error plus every node's problems under node_errors.

    The top-level type is the first prompt-level problem (invalid_prompt, prompt_no_outputs,
    unknown_output_node), else missing_node_type when a node type is unknown, else
    prompt_outputs_failed_validation.
    """
    node_errors = _node_errors(error)
    return {"error": _top_level_error(error.problems), "node_errors": node_errors}


def _top_level_error(problems: Sequence[Problem]) -> dict[str, Any]:
    for problem in problems:
        if problem.kind in _PROMPT_LEVEL_MESSAGES:
            return {
                "type": problem.kind,
                "message": _PROMPT_LEVEL_MESSAGES[problem.kind],
                "details": problem.describe(),
                "extra_info": {},
            }
    for problem in problems:
        if problem.kind == "missing_node_type":
            message = (
                f"Node '{problem.class_type}' not found. The custom node may not be installed."
                if problem.class_type
                else f"Node '#{problem.node_id}' has no class_type. The workflow may be corrupted."
            )
            return {
                "type": "missing_node_type",
                "message": message,
                "details": f"Node ID '#{problem.node_id}'",
                "extra_info": {"node_id": problem.node_id, "class_type": problem.class_type},
            }
    return {
        "type": "prompt_outputs_failed_validation",
        "message": "Prompt outputs failed validation",
        "details": "\n".join(p.describe() for p in problems),
        "extra_info": {},
    }


def _node_errors(error: GraphValidationError) -> dict[str, Any]:
    node_errors: dict[str, Any] = {}
    for problem in error.problems:
        if problem.node_id is None or problem.kind in _PROMPT_LEVEL_MESSAGES:
            continue
        entry = node_errors.setdefault(
            problem.node_id,
            {
                "errors": [],
                "dependent_outputs": list(error.dependent_outputs.get(problem.node_id, [])),
                "class_type": problem.class_type,
            },
        )
        extra_info = {"input_name": problem.input_name} if problem.input_name is not None else {}
        entry["errors"].append(
            {
                "type": problem.kind,
                "message": problem.message,
                "details": problem.input_name or "",
                "extra_info": extra_info,
            }
        )
    return node_errors
