"""Typed errors of the workflow file library: a file we cannot read, a PNG without a graph, missing types."""

from __future__ import annotations

from collections.abc import Mapping

from latentloom.api.errors import LatentLoomError


class WorkflowFormatError(LatentLoomError):
    """A file or value that is not a workflow we can read; the message says what was expected."""


class PngMetadataMissing(WorkflowFormatError):
    """A PNG that carries neither a "workflow" nor a "prompt" text chunk."""


def missing_node_types_message(counts: Mapping[str, int]) -> str:
    """"missing node types: X (2 nodes), Y (1 node)", or "" when nothing is missing."""
    if not counts:
        return ""
    parts = [f"{name} ({count} node{'s' if count != 1 else ''})" for name, count in counts.items()]
    return "missing node types: " + ", ".join(parts)


class MissingNodeTypes(LatentLoomError):
    """A workflow that would run node types this installation does not have."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        super().__init__(missing_node_types_message(counts))
        self.counts = dict(counts)
