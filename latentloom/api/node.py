"""The contract between a node type and the executor.

A node type is an object with a ``schema`` and an ``execute`` method. Node types are made in the
composition root (or by a plugin's hook) with whatever services they need, so ``execute`` receives only
the execution context and the node's input values, by input name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from latentloom.api.schema import NodeSchema


class _AlwaysRun:
    def __repr__(self) -> str:
        return "ALWAYS_RUN"


# Returned by ``fingerprint`` for a node that must run every time (ComfyUI's IS_CHANGED → NaN).
ALWAYS_RUN: Any = _AlwaysRun()


class ExecutionContext(Protocol):
    """What a running node may ask of the executor."""

    prompt_id: str
    node_id: str

    def progress(self, value: float, total: float, *, preview: Any = None) -> None:
        """Report progress (e.g. one call per sampler step). Also checks for interruption."""

    def check_interrupted(self) -> None:
        """Raise ExecutionInterrupted if the user asked to stop; samplers call this every step."""


@dataclass(frozen=True)
class NodeResult:
    """What ``execute`` returns: output values by position, and a UI payload (e.g. saved images)."""

    outputs: tuple[Any, ...] = ()
    ui: Mapping[str, Any] | None = field(default=None)


class NodeType(ABC):
    """Base class for node types. Subclasses set ``schema`` and implement ``execute``.

    ``execute`` returns a tuple of outputs (one per schema output) or a NodeResult. For a node whose
    schema says ``input_is_list``, each input arrives as a list; for an output with ``is_list``, the
    node returns a list and downstream nodes run once per item.
    """

    schema: NodeSchema

    @abstractmethod
    def execute(self, ctx: ExecutionContext, **inputs: Any) -> NodeResult | tuple[Any, ...]:
        """Run the node on its inputs."""

    def fingerprint(self, **inputs: Any) -> Any:
        """Extra cache-key material beyond the inputs (ComfyUI's IS_CHANGED).

        Receives the node's literal inputs. Return something that changes when the node's result would
        (e.g. a file's modification time), ``ALWAYS_RUN`` to never reuse a cached result, or None.
        """
        return None

    def validate(self, **inputs: Any) -> list[str]:
        """Custom validation of literal inputs before anything runs; return messages, empty when fine."""
        return []

    def check_lazy_status(self, ctx: ExecutionContext, **inputs: Any) -> list[str]:
        """The lazy inputs this node needs evaluated before it can run (ComfyUI's check_lazy_status).

        Called before ``execute`` while some linked lazy input has no value yet, with every input that has
        one (widgets, eager links, lazy links already evaluated) and None for each lazy input still
        unevaluated (``[None]`` for an ``input_is_list`` node); unconnected optional inputs are absent.
        Return the names of the lazy inputs to evaluate: the executor runs what feeds them and asks again,
        until the answer names nothing new. The node then runs.
        A lazy input that was never asked for arrives as None, unless its value exists anyway (another node
        needed it, or the cache holds it). Names of inputs that already have a value are ignored; a name that
        is no linked input of the node fails the node. The default asks for every unevaluated lazy input,
        which is eager evaluation; a switch overrides it to ask only for the branch it will use.
        """
        as_list = self.schema.input_is_list
        lazy = [i.name for i in self.schema.inputs if i.lazy and i.name in inputs]
        return [name for name in lazy if _unevaluated(inputs[name], as_list)]


def _unevaluated(value: Any, as_list: bool) -> bool:
    """Whether a value is the placeholder of an unevaluated lazy input (no ``==``: it may be a tensor)."""
    if as_list and isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value is None
