"""The graph engine: prompt validation, topological schedule, result cache, executor and wire events.

Imports only ``latentloom.api`` and the standard library (no torch, no aiohttp).
"""

from latentloom.engine.cache import NodeOutputs, OutputCache
from latentloom.engine.errors import GraphValidationError, NodeExecutionError, Problem
from latentloom.engine.executor import ExecutionOutcome, Executor
from latentloom.engine.graph import Graph, GraphNode, Link
from latentloom.engine.prompt import validate_prompt
from latentloom.engine.protocol import EVENT_TYPES, Event, validation_error_body

__all__ = [
    "EVENT_TYPES",
    "Event",
    "ExecutionOutcome",
    "Executor",
    "Graph",
    "GraphNode",
    "GraphValidationError",
    "Link",
    "NodeExecutionError",
    "NodeOutputs",
    "OutputCache",
    "Problem",
    "validate_prompt",
    "validation_error_body",
]
