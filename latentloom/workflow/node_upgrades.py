"""Per-node-type versions: a node type that changes its inputs ships upgrades for nodes saved before.

An upgrade takes a node's JSON at type version N and returns it at N + 1 (renamed inputs, new
defaults). Upgrades run on a loaded workflow, before conversion, and leave unknown types alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from latentloom.workflow.errors import WorkflowFormatError
from latentloom.workflow.model import Workflow, WorkflowNode

NodeUpgrade = Callable[[dict[str, Any]], dict[str, Any]]


def upgrade_nodes(workflow: Workflow, upgrades: Mapping[str, Mapping[int, NodeUpgrade]]) -> list[str]:
    """Bring every node whose type has upgrades to its newest type version, in place.

    ``upgrades`` maps node type -> {from_version: upgrade}. Returns one line per upgraded node.
    """
    report = []
    for index, node in enumerate(workflow.nodes):
        steps = upgrades.get(node.type, {})
        if node.type_version not in steps:
            continue
        start = node.type_version
        data = copy.deepcopy(node.to_json())
        while data["type_version"] in steps:
            version = data["type_version"]
            data = steps[version](dict(data))
            if data.get("id") != node.id or data.get("type") != node.type:
                raise WorkflowFormatError(
                    f"upgrade of {node.type} from version {version} changed the node's id or type"
                )
            data["type_version"] = version + 1
        workflow.nodes[index] = WorkflowNode.from_json(data, index=index)
        report.append(f"node {node.id} ({node.type}): type version {start} -> {data['type_version']}")
    return report
