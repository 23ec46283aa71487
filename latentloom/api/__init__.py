"""The plugin contract: what nodes and plugins import. Stable names only; see docs/plugins.md."""

from latentloom.api import types
from latentloom.api.errors import ExecutionInterrupted, LatentLoomError, NodeInputError, NodeTypeConflict
from latentloom.api.hooks import hookimpl
from latentloom.api.node import ALWAYS_RUN, ExecutionContext, NodeResult, NodeType
from latentloom.api.preview import PreviewImage, PreviewSettings
from latentloom.api.registry import NodeRegistry
from latentloom.api.schema import (
    BooleanInput,
    ComboInput,
    FloatInput,
    HiddenInput,
    Input,
    IntInput,
    LiteralError,
    NodeSchema,
    Output,
    StringInput,
)
from latentloom.api.services import Services

__all__ = [
    "ALWAYS_RUN",
    "BooleanInput",
    "ComboInput",
    "ExecutionContext",
    "ExecutionInterrupted",
    "FloatInput",
    "HiddenInput",
    "Input",
    "IntInput",
    "LatentLoomError",
    "LiteralError",
    "NodeInputError",
    "NodeRegistry",
    "NodeResult",
    "NodeSchema",
    "NodeType",
    "NodeTypeConflict",
    "Output",
    "PreviewImage",
    "PreviewSettings",
    "Services",
    "StringInput",
    "hookimpl",
    "types",
]
