"""POST /prompt (validate and queue a prompt) and GET /prompt (the queue size)."""

from __future__ import annotations

import asyncio
import math
import uuid
from types import MappingProxyType
from typing import Any

from aiohttp import web

from latentloom.engine.errors import GraphValidationError
from latentloom.engine.prompt import validate_prompt
from latentloom.engine.protocol import validation_error_body
from server.http_errors import ApiError
from server.keys import QUEUE, REGISTRY
from server.queue import PromptQueue, QueueItem
from server.routes_workflow import WorkflowRequestError, submission_body

# Far beyond any real workflow; bounds the validation time one request can cost.
MAX_PROMPT_NODES = 10_000


def _prompt_error(error: ApiError) -> web.Response:
    # ComfyUI clients read node_errors from every /prompt error body.
    return web.json_response(error.body() | {"node_errors": {}}, status=error.status)


def _number(body: dict[str, Any], queue: PromptQueue) -> int | float:
    if "number" not in body:
        return queue.next_number(front=_optional(body, "front", bool, default=False))
    number = body["number"]
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise ApiError(400, "invalid_request", "'number' must be a finite number")
    return float(number)


_KIND_NAMES = MappingProxyType({bool: "boolean", dict: "JSON object", str: "string"})


def _optional(body: dict[str, Any], key: str, kind: type, *, default: Any) -> Any:
    """``body[key]`` when present and of ``kind``; ``default`` when absent or null."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        wanted = _KIND_NAMES.get(kind, kind.__name__)
        raise ApiError(400, "invalid_request", f"'{key}' must be a {wanted}, got {type(value).__name__}")
    return value


def _targets(body: dict[str, Any]) -> list[str] | None:
    targets = body.get("partial_execution_targets")
    if targets is None:
        return None
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ApiError(400, "invalid_request", "'partial_execution_targets' must be a list of node ids")
    return targets


def _parse_submission(body: dict[str, Any]) -> dict[str, Any]:
    prompt = body.get("prompt")
    if not isinstance(prompt, dict):
        raise ApiError(400, "no_prompt", "No prompt provided", details="the body needs a 'prompt' object")
    if len(prompt) > MAX_PROMPT_NODES:
        raise ApiError(400, "prompt_too_large", f"the prompt has {len(prompt)} nodes; at most {MAX_PROMPT_NODES}")
    extra_data = dict(_optional(body, "extra_data", dict, default={}))
    client_id = _optional(body, "client_id", str, default=None)
    if client_id is not None:
        extra_data["client_id"] = client_id
    return {
        "prompt": prompt,
        "extra_data": extra_data,
        "client_id": client_id,
        "targets": _targets(body),
        "force": _optional(body, "force", bool, default=False),
    }


async def post_prompt(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    try:
        # A "workflow" key or a PNG upload is converted to its prompt; {"prompt": ...} comes back as sent.
        body = await submission_body(request)
        submission = _parse_submission(body)
        number = _number(body, queue)
    except ApiError as error:
        return _prompt_error(error)
    except WorkflowRequestError as error:
        return web.json_response(error.body | {"node_errors": {}}, status=400)
    registry = request.app[REGISTRY]
    try:
        # Off the event loop: validation runs node code (custom validate, combo choices read the disk).
        graph = await asyncio.to_thread(
            validate_prompt, submission["prompt"], registry, outputs=submission["targets"]
        )
    except GraphValidationError as error:
        return web.json_response(validation_error_body(error), status=400)
    item = QueueItem(
        number=number,
        prompt_id=str(uuid.uuid4()),
        prompt=submission["prompt"],
        extra_data=submission["extra_data"],
        outputs_to_execute=list(graph.outputs),
        graph=graph,
        client_id=submission["client_id"],
        force=submission["force"],
    )
    # Answered once the prompt is in the database: an acknowledged prompt survives a crash.
    await asyncio.wrap_future(queue.put(item))
    return web.json_response({"prompt_id": item.prompt_id, "number": number, "node_errors": {}})


async def get_prompt(request: web.Request) -> web.Response:
    return web.json_response({"exec_info": {"queue_remaining": request.app[QUEUE].remaining()}})


ROUTES = (
    web.post("/prompt", post_prompt),
    web.get("/prompt", get_prompt),
)
