"""Calling one node with ComfyUI's list semantics.

Every output is a list of items. A node whose schema does not say ``input_is_list`` runs once per item
of its longest input list (shorter lists repeat their last item) and its results are concatenated; an
input list with no items means the node runs zero times. An output marked ``is_list`` returns a Python
list whose items become that output's items. An ``input_is_list`` node receives every input as a list
and runs once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from latentloom.api.node import NodeResult, NodeType
from latentloom.api.schema import NodeSchema
from latentloom.engine.cache import NodeOutputs
from latentloom.engine.context import NodeContext
from latentloom.engine.errors import NodeContractError

_Result = tuple[tuple[Any, ...], Mapping[str, Any] | None]


def call_node(node_type: NodeType, inputs: Mapping[str, Sequence[Any]], *, ctx: NodeContext) -> NodeOutputs:
    """Run a node over its input lists (input name -> items) and collect its outputs and UI."""
    schema = node_type.schema
    results: list[_Result] = []
    if schema.input_is_list:
        ctx.check_interrupted()
        results.append(_invoke(node_type, {name: list(items) for name, items in inputs.items()}, ctx=ctx))
    else:
        for kwargs in _per_item(inputs):
            ctx.check_interrupted()
            results.append(_invoke(node_type, kwargs, ctx=ctx))
    return NodeOutputs(_merge_outputs(schema, results), _merge_ui([ui for _, ui in results if ui]))


def wanted_lazy_inputs(
    node_type: NodeType, inputs: Mapping[str, Sequence[Any]], *, ctx: NodeContext
) -> list[str]:
    """The input names the node's check_lazy_status asks for, over its input lists as ``execute`` would be.

    A node that runs once per item is asked once per item; the answers are joined (first mention first).
    """
    if node_type.schema.input_is_list:
        calls = [{name: list(items) for name, items in inputs.items()}]
    else:
        calls = list(_per_item(inputs))
    wanted: dict[str, None] = {}
    for kwargs in calls:
        ctx.check_interrupted()
        answer = node_type.check_lazy_status(ctx, **kwargs)
        if not isinstance(answer, list | tuple) or not all(isinstance(name, str) for name in answer):
            raise NodeContractError(f"must return a list of input names, got {answer!r:.80}")
        wanted.update(dict.fromkeys(answer))
    return list(wanted)


def _per_item(inputs: Mapping[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    if not inputs:
        yield {}
        return
    lengths = [len(items) for items in inputs.values()]
    if min(lengths) == 0:
        return
    for index in range(max(lengths)):
        yield {name: items[min(index, len(items) - 1)] for name, items in inputs.items()}


def _invoke(node_type: NodeType, kwargs: dict[str, Any], *, ctx: NodeContext) -> _Result:
    schema = node_type.schema
    returned = node_type.execute(ctx, **kwargs)
    if isinstance(returned, NodeResult):
        outputs, ui = returned.outputs, returned.ui
    elif isinstance(returned, tuple):
        outputs, ui = returned, None
    else:
        raise NodeContractError(f"execute() must return a tuple or a NodeResult, got {type(returned).__name__}")
    if not isinstance(outputs, tuple | list) or len(outputs) != len(schema.outputs):
        count = len(outputs) if isinstance(outputs, tuple | list) else type(outputs).__name__
        raise NodeContractError(f"execute() returned {count} output(s); the schema declares {len(schema.outputs)}")
    if ui is not None and not isinstance(ui, Mapping):
        raise NodeContractError(f"the UI output must be a mapping, got {type(ui).__name__}")
    return tuple(outputs), ui


def _merge_outputs(schema: NodeSchema, results: list[_Result]) -> tuple[tuple[Any, ...], ...]:
    slots: list[list[Any]] = [[] for _ in schema.outputs]
    for outputs, _ in results:
        for index, (slot, spec, value) in enumerate(zip(slots, schema.outputs, outputs, strict=True)):
            if not spec.is_list:
                slot.append(value)
            elif isinstance(value, list | tuple):
                slot.extend(value)
            else:
                raise NodeContractError(
                    f"output {index} ({spec.display_name}) is a list output; "
                    f"execute() must return a list for it, got {type(value).__name__}"
                )
    return tuple(tuple(slot) for slot in slots)


def _merge_ui(uis: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """One UI payload; the payloads of several runs are concatenated key by key, as ComfyUI does."""
    if not uis:
        return None
    if len(uis) == 1:
        return dict(uis[0])
    merged: dict[str, list[Any]] = {}
    for ui in uis:
        for key, value in ui.items():
            merged.setdefault(key, []).extend(value if isinstance(value, list | tuple) else [value])
    return merged
