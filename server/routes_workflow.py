"""Workflow files over HTTP: POST /workflow/load and /workflow/convert, and what POST /prompt accepts
besides an API prompt (a "workflow" body key, or a raw PNG upload).

The canvas opens and converts files here, so the editor, the server and ``latentloom run`` share the one
Python conversion (latentloom.workflow).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from aiohttp import web

from latentloom.api import LatentLoomError, NodeRegistry
from latentloom.workflow import (
    Workflow,
    load_workflow,
    missing_node_types,
    missing_node_types_message,
    workflow_from_json,
    workflow_to_comfy_api,
    workflow_to_comfy_ui,
    workflow_to_prompt,
)
from latentloom.workflow.png import is_png
from server.http_errors import ApiError, read_json_object
from server.keys import REGISTRY
from server.workflow_input import (
    RunnableInput,
    problem_json,
    prompt_from_workflow,
    runnable_from_png,
    workflow_error_body,
)


class WorkflowRequestError(Exception):
    """A workflow in a request that cannot be used; ``body`` is the structured error to answer with."""

    def __init__(self, error: LatentLoomError) -> None:
        super().__init__(str(error))
        self.body = workflow_error_body(error)


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """Conversions run off the event loop; the library's typed errors become WorkflowRequestError."""
    try:
        return await asyncio.to_thread(function, *args)
    except LatentLoomError as error:
        raise WorkflowRequestError(error) from error


async def _raw_png(request: web.Request) -> bytes | None:
    """The body when it is a PNG (by Content-Type or by its signature), else None."""
    raw = await request.read()
    return raw if request.content_type == "image/png" or is_png(raw) else None


async def submission_body(request: web.Request) -> dict[str, Any]:
    """The POST /prompt body with any workflow turned into its prompt.

    {"prompt": ...} bodies come back as sent (ComfyUI clients). {"workflow": ...} and raw PNG uploads
    become {"prompt", "extra_data"}, the graph under extra_data.extra_pnginfo.workflow so SaveImage
    embeds it. A raw upload takes client_id from the query string. Raises WorkflowRequestError.
    """
    registry = request.app[REGISTRY]
    png = await _raw_png(request)
    if png is not None:
        prompt, pnginfo = await _in_thread(_prompt_and_pnginfo, runnable_from_png, png, registry)
        body: dict[str, Any] = {"extra_data": {}}
        if "client_id" in request.query:
            body["client_id"] = request.query["client_id"]
        return _with_prompt(body, prompt, pnginfo=pnginfo)
    body = await read_json_object(request)
    if "prompt" in body or "workflow" not in body:
        return body
    prompt, pnginfo = await _in_thread(_prompt_and_pnginfo, _runnable_workflow, body["workflow"], registry)
    return _with_prompt(body, prompt, pnginfo=pnginfo)


def _runnable_workflow(data: Any, registry: NodeRegistry) -> RunnableInput:
    """Whatever sits under "workflow" is read as a workflow (an API prompt there opens as one too)."""
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "'workflow' must be a JSON object")
    return prompt_from_workflow(workflow_from_json(data, registry), registry)


def _prompt_and_pnginfo(
    read: Callable[[Any, NodeRegistry], RunnableInput], source: Any, registry: NodeRegistry
) -> tuple[dict[str, Any], dict[str, Any]]:
    runnable = read(source, registry)
    return runnable.prompt, runnable.extra_pnginfo(registry)


def _with_prompt(body: dict[str, Any], prompt: dict[str, Any], *, pnginfo: dict[str, Any]) -> dict[str, Any]:
    extra_data = body.get("extra_data")
    if extra_data is None:
        extra_data = {}
    if isinstance(extra_data, dict):  # anything else is refused by the /prompt body checks
        sent = extra_data.get("extra_pnginfo")
        sent = dict(sent) if isinstance(sent, dict) else {}
        extra_data = extra_data | {"extra_pnginfo": sent | pnginfo}
    return {key: value for key, value in body.items() if key != "workflow"} | {
        "prompt": prompt,
        "extra_data": extra_data,
    }


def _missing_report(workflow: Workflow, registry: NodeRegistry) -> dict[str, Any]:
    counts = missing_node_types(workflow, registry)
    return {"missing_node_types": counts, "missing_message": missing_node_types_message(counts)}


def _loaded(source: Any, registry: NodeRegistry) -> dict[str, Any]:
    workflow = load_workflow(source, registry)
    return {
        "workflow": workflow.to_json(),
        "problems": [problem_json(p) for p in workflow.problems],
        **_missing_report(workflow, registry),
    }


async def _uploaded_file(request: web.Request) -> bytes:
    """The first file of a multipart form."""
    form = await request.post()
    for value in form.values():
        if isinstance(value, web.FileField):
            return value.file.read()
    raise ApiError(400, "invalid_request", "the multipart form holds no file")


async def post_load(request: web.Request) -> web.Response:
    """Any accepted file (ours, ComfyUI UI, API prompt, PNG: JSON, raw or multipart) → our format."""
    if request.content_type.startswith("multipart/"):
        source: Any = await _uploaded_file(request)
    else:
        source = await _raw_png(request)
        if source is None:
            source = await read_json_object(request)
    try:
        loaded = await _in_thread(_loaded, source, request.app[REGISTRY])
    except WorkflowRequestError as error:
        return web.json_response(error.body, status=400)
    return web.json_response(loaded)


def _to_prompt(workflow: Workflow, registry: NodeRegistry) -> tuple[Any, list]:
    return workflow_to_prompt(workflow, registry)


def _to_comfy_ui(workflow: Workflow, registry: NodeRegistry) -> tuple[Any, list]:
    return workflow_to_comfy_ui(workflow, registry), []


def _to_ours(workflow: Workflow, registry: NodeRegistry) -> tuple[Any, list]:
    return workflow.to_json(), []


CONVERSIONS = MappingProxyType(
    {"prompt": _to_prompt, "comfy_api": workflow_to_comfy_api, "comfy_ui": _to_comfy_ui, "ours": _to_ours}
)


def _converted(source: Any, target: str, registry: NodeRegistry) -> dict[str, Any]:
    workflow = load_workflow(source, registry)
    result, problems = CONVERSIONS[target](workflow, registry)
    return {
        "to": target,
        "result": result,
        "problems": [problem_json(p) for p in [*workflow.problems, *problems]],
        **_missing_report(workflow, registry),
    }


async def post_convert(request: web.Request) -> web.Response:
    """{"workflow": any accepted JSON, "to": "prompt" | "comfy_api" | "comfy_ui" | "ours"}."""
    body = await read_json_object(request)
    target = body.get("to")
    if target not in CONVERSIONS:
        allowed = ", ".join(CONVERSIONS)
        raise ApiError(400, "invalid_request", f"'to' must be one of {allowed}, got {target!r}")
    if not isinstance(body.get("workflow"), dict):
        raise ApiError(400, "invalid_request", "'workflow' must be a JSON object")
    try:
        converted = await _in_thread(_converted, body["workflow"], target, request.app[REGISTRY])
    except WorkflowRequestError as error:
        return web.json_response(error.body, status=400)
    return web.json_response(converted)


ROUTES = (
    web.post("/workflow/load", post_load),
    web.post("/workflow/convert", post_convert),
)
