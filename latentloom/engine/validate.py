"""Checks of one node's inputs against its schema: links, literal values and the node's own validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from latentloom.api.node import NodeType
from latentloom.api.schema import ComboInput, FloatInput, Input, IntInput, LiteralError
from latentloom.api.types import types_compatible
from latentloom.engine.describe import short_repr
from latentloom.engine.errors import Problem
from latentloom.engine.graph import Link


@dataclass(frozen=True)
class PromptNode:
    """One node entry of the submitted prompt, with its class resolved (node_type None when unknown)."""

    id: str
    position: int
    class_type: str  # canonical when known, else as submitted
    node_type: NodeType | None
    inputs: Mapping[Any, Any]


@dataclass
class NodeCheck:
    """What checking one node found: its coerced literals, its links and its problems."""

    literals: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def parse_link(value: Any) -> Link | None:
    """``[source_id, output_index]`` as a Link, or None when the value is not a well-formed link.

    Source ids may come as integers from hand-written prompts; they name the same node as their string.
    """
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    source, index = value
    if isinstance(source, int) and not isinstance(source, bool):
        source = str(source)
    if not isinstance(source, str) or isinstance(index, bool) or not isinstance(index, int):
        return None
    return Link(source, index)


def check_node(node: PromptNode, *, nodes: Mapping[str, PromptNode]) -> NodeCheck:
    """Check every declared input of a node of known type; then its own ``validate`` if all else passed."""
    assert node.node_type is not None
    schema = node.node_type.schema
    check = NodeCheck()
    for spec in schema.inputs:
        if spec.name not in node.inputs:
            if schema.is_required(spec.name):
                check.problems.append(_problem(node, spec, "required_input_missing", "required input is missing"))
            continue
        value = node.inputs[spec.name]
        if isinstance(value, list | tuple):
            _check_link(node, spec, value, nodes=nodes, check=check)
        else:
            _check_literal(node, spec, value, check=check)
    if not check.problems:
        check.problems.extend(_custom_problems(node, check.literals))
    return check


def _problem(node: PromptNode, spec: Input | None, kind: str, message: str) -> Problem:
    return Problem(node.id, node.class_type, spec.name if spec else None, kind, message)


def _check_link(
    node: PromptNode, spec: Input, value: Any, *, nodes: Mapping[str, PromptNode], check: NodeCheck
) -> None:
    link = parse_link(value)
    if link is None:
        message = f"a link must be [node_id, output_index], got {short_repr(value)}"
        check.problems.append(_problem(node, spec, "bad_linked_input", message))
        return
    source = nodes.get(link.source)
    if source is None:
        message = f"linked to node {link.source!r}, which is not in the prompt"
        check.problems.append(_problem(node, spec, "link_to_missing_node", message))
        return
    if source.node_type is None:
        return  # the source's unknown type is reported on the source itself
    outputs = source.node_type.schema.outputs
    if not 0 <= link.output_index < len(outputs):
        message = (
            f"linked to output {link.output_index} of node {source.id} ({source.class_type}), "
            f"which has {len(outputs)} output(s)"
        )
        check.problems.append(_problem(node, spec, "link_to_missing_output", message))
        return
    output_type = outputs[link.output_index].type
    if not types_compatible(output_type, spec.type):
        message = (
            f"a {output_type} output (node {source.id} ({source.class_type}) output {link.output_index}) "
            f"cannot feed a {spec.type} input"
        )
        check.problems.append(_problem(node, spec, "return_type_mismatch", message))
        return
    check.links[spec.name] = link


def _check_literal(node: PromptNode, spec: Input, value: Any, *, check: NodeCheck) -> None:
    if not spec.accepts_literal:
        message = f"expects a link from a {spec.type} output, not the literal {short_repr(value)}"
        check.problems.append(_problem(node, spec, "invalid_input_type", message))
        return
    try:
        check.literals[spec.name] = spec.coerce(value)
    except LiteralError as error:
        check.problems.append(_problem(node, spec, literal_problem_kind(spec, value), str(error)))
    except Exception as error:  # a widget's own code failed (e.g. listing the files for its choices)
        message = f"checking the value raised {type(error).__name__}: {error}"
        check.problems.append(_problem(node, spec, "exception_during_validation", message))


def literal_problem_kind(spec: Input, value: Any) -> str:
    """ComfyUI's error type for a refused literal, decided from the widget rather than from message text."""
    if isinstance(spec, IntInput | FloatInput) and (spec.min is not None or spec.max is not None):
        try:
            number = replace(spec, min=None, max=None).coerce(value)
        except Exception:  # not a number at all (or a widget subclass that cannot be copied)
            return "invalid_input_type"
        if spec.min is not None and number < spec.min:
            return "value_smaller_than_min"
        return "value_bigger_than_max"
    if isinstance(spec, ComboInput) and isinstance(value, str):
        return "value_not_in_list"
    return "invalid_input_type"


def _custom_problems(node: PromptNode, literals: Mapping[str, Any]) -> list[Problem]:
    """The node type's own ``validate`` over its literal inputs (ComfyUI's VALIDATE_INPUTS)."""
    assert node.node_type is not None
    try:
        messages = node.node_type.validate(**literals)
    except Exception as error:
        message = f"validate() raised {type(error).__name__}: {error}"
        return [_problem(node, None, "exception_during_validation", message)]
    if isinstance(messages, str) or not isinstance(messages, list | tuple):
        message = f"validate() must return a list of messages, got {short_repr(messages)}"
        return [_problem(node, None, "exception_during_validation", message)]
    return [_problem(node, None, "custom_validation_failed", str(m)) for m in messages]
