"""The engine's typed errors: a prompt that fails validation, and a node that fails while it runs.

``latentloom.engine.protocol`` is the one place that turns them into wire shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from latentloom.api.errors import LatentLoomError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a prompt. ``kind`` uses ComfyUI's error type names where ComfyUI has one."""

    node_id: str | None
    class_type: str | None
    input_name: str | None
    kind: str
    message: str

    def describe(self) -> str:
        """One line naming where the problem is and what it is."""
        where = []
        if self.node_id is not None:
            where.append(f"node {self.node_id}" + (f" ({self.class_type})" if self.class_type else ""))
        if self.input_name is not None:
            where.append(f"input '{self.input_name}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class GraphValidationError(LatentLoomError):
    """A prompt that cannot run. Lists every problem found, not just the first.

    ``dependent_outputs`` maps a node id with problems to the requested output nodes that need it.
    """

    def __init__(
        self,
        problems: Iterable[Problem],
        *,
        dependent_outputs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.problems = list(problems)
        self.dependent_outputs = {k: list(v) for k, v in (dependent_outputs or {}).items()}
        shown = "; ".join(p.describe() for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"prompt failed validation: {shown}{more}")


class NodeExecutionError(LatentLoomError):
    """A node raised while it ran. Carries what the execution_error event reports."""

    def __init__(
        self,
        node_id: str,
        class_type: str,
        message: str,
        *,
        exception_type: str,
        traceback: Sequence[str] = (),
        current_inputs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"node {node_id} ({class_type}) failed: {message}")
        self.node_id = node_id
        self.class_type = class_type
        self.message = message
        self.exception_type = exception_type
        self.traceback = list(traceback)
        self.current_inputs = dict(current_inputs or {})


class NodeContractError(LatentLoomError):
    """A node's ``execute`` returned something its schema does not allow (wrong output count or shape)."""
