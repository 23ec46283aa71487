"""ComfyUI's UI-format versions: 0.4 (links as arrays) and 1 (links as objects, reroutes at the top).

``upgrade_comfy_graph`` is the migration 0.4 -> 1, so the importer reads one shape only. In 0.4, native
reroutes live in ``extra.reroutes`` and a link's parent reroute in ``extra.linkExtensions``; in 1 they
are ``reroutes`` and ``link.parentId``; the last ids move from ``last_node_id`` / ``last_link_id`` to
``state``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from latentloom.workflow.errors import WorkflowFormatError

_LINK_FIELDS = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")


def comfy_version(data: Mapping[str, Any]) -> float:
    version = data.get("version", 0.4)
    if isinstance(version, bool) or not isinstance(version, int | float):
        raise WorkflowFormatError(f"ComfyUI workflow: \"version\" must be a number, got {version!r:.40}")
    return version


def upgrade_comfy_graph(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return a ComfyUI workflow in the version-1 shape (a copy; version 1 input is only copied)."""
    graph = copy.deepcopy(dict(data))
    version = comfy_version(graph)
    if version >= 1:
        if version > 1:
            raise WorkflowFormatError(f"ComfyUI workflow version {version} is newer than we read (0.4, 1)")
        return graph
    extra = dict(graph.get("extra") or {})
    extensions = extra.pop("linkExtensions", None) or []
    parents = {ext["id"]: ext["parentId"] for ext in extensions if _is_extension(ext)}
    graph["links"] = [_link_object(raw, parents) for raw in graph.get("links") or [] if raw is not None]
    reroutes = extra.pop("reroutes", None) or []
    if reroutes:
        graph["reroutes"] = reroutes
    graph["extra"] = extra
    graph["state"] = {
        "lastGroupId": max((g.get("id", 0) or 0 for g in graph.get("groups") or []), default=0),
        "lastNodeId": graph.pop("last_node_id", 0),
        "lastLinkId": graph.pop("last_link_id", 0),
        "lastRerouteId": max((r.get("id", 0) for r in reroutes), default=0),
    }
    graph["version"] = 1
    return graph


def _is_extension(ext: Any) -> bool:
    return isinstance(ext, Mapping) and "id" in ext and "parentId" in ext


def _link_object(raw: Any, parents: Mapping[int, int]) -> dict[str, Any]:
    if not isinstance(raw, list) or len(raw) < 5:
        shape = "[id, from, slot, to, slot, type]"
        raise WorkflowFormatError(f"ComfyUI workflow: a 0.4 link is {shape}, not {raw!r:.60}")
    link = dict(zip(_LINK_FIELDS, raw, strict=False))
    link.setdefault("type", "*")
    if link["id"] in parents:
        link["parentId"] = parents[link["id"]]
    return link
