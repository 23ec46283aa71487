"""Typed errors that nodes and plugins raise. The engine adds its own (validation, execution) on top."""

from __future__ import annotations


class LatentLoomError(Exception):
    """Base of every error this project raises on purpose."""


class NodeInputError(LatentLoomError):
    """A node received an input value it cannot work with (raised while the node runs).

    The executor adds the node id and class; the node names the input and says what was wrong.
    """

    def __init__(self, input_name: str, message: str) -> None:
        super().__init__(f"input '{input_name}': {message}")
        self.input_name = input_name
        self.reason = message


class ExecutionInterrupted(LatentLoomError):
    """The user interrupted the running prompt; raised at the next check point."""


class NodeTypeConflict(LatentLoomError):
    """Two packs tried to register the same node type name."""
