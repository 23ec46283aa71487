"""Workflow files that travel: our versioned format, ComfyUI import/export, PNG chunks, the prompt.

See docs/workflow-format.md. This package imports latentloom.api, the standard library and PIL only.
"""

from latentloom.workflow.api_import import api_prompt_to_workflow
from latentloom.workflow.comfy_export import workflow_to_comfy_ui
from latentloom.workflow.comfy_import import comfy_ui_to_workflow
from latentloom.workflow.comfy_versions import upgrade_comfy_graph
from latentloom.workflow.errors import (
    MissingNodeTypes,
    PngMetadataMissing,
    WorkflowFormatError,
    missing_node_types_message,
)
from latentloom.workflow.loading import (
    dump_workflow,
    load_workflow,
    save_workflow,
    workflow_from_json,
    workflow_json_schema,
)
from latentloom.workflow.migrations import FORMAT_NAME, FORMAT_VERSION, migrate
from latentloom.workflow.missing import missing_node_types, name_placeholder_widgets, require_node_types
from latentloom.workflow.model import Group, Link, NodeMode, Reroute, Socket, Workflow, WorkflowNode
from latentloom.workflow.node_types import VIRTUAL_TYPES, NodeTypes, NodeTypeSource
from latentloom.workflow.node_upgrades import upgrade_nodes
from latentloom.workflow.png import PngMetadata, png_text_chunks, read_png_metadata
from latentloom.workflow.prompt import ConversionProblem, workflow_to_comfy_api, workflow_to_prompt

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "VIRTUAL_TYPES",
    "ConversionProblem",
    "Group",
    "Link",
    "MissingNodeTypes",
    "NodeMode",
    "NodeTypeSource",
    "NodeTypes",
    "PngMetadata",
    "PngMetadataMissing",
    "Reroute",
    "Socket",
    "Workflow",
    "WorkflowFormatError",
    "WorkflowNode",
    "api_prompt_to_workflow",
    "comfy_ui_to_workflow",
    "dump_workflow",
    "load_workflow",
    "migrate",
    "missing_node_types",
    "missing_node_types_message",
    "name_placeholder_widgets",
    "png_text_chunks",
    "read_png_metadata",
    "require_node_types",
    "save_workflow",
    "upgrade_comfy_graph",
    "upgrade_nodes",
    "workflow_from_json",
    "workflow_json_schema",
    "workflow_to_comfy_api",
    "workflow_to_comfy_ui",
    "workflow_to_prompt",
]
