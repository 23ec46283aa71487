"""Positional widget values (ComfyUI's ``widgets_values``) <-> widget values by input name.

ComfyUI stores a node's widget values as a list in the order of its widget inputs (required, then
optional). An INT input with control_after_generate is followed by its control value ("fixed",
"increment", "decrement", "randomize"; very old files hold a boolean). Values past the last widget
(e.g. LoadImage's upload button) have no input name and are kept as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from latentloom.api import types as T
from latentloom.api.schema import (
    BooleanInput,
    ComboInput,
    FloatInput,
    Input,
    IntInput,
    NodeSchema,
    StringInput,
)
from latentloom.workflow.node_types import PRIMITIVE, VIRTUAL_TYPES, NodeTypes

CONTROL_WORDS = frozenset({"fixed", "increment", "decrement", "randomize"})


@dataclass(frozen=True)
class WidgetSlot:
    name: str
    control: bool = False  # a control-after-generate value follows this one
    input: Input | None = None  # the schema input, when there is one (for checks and defaults)


def schema_layout(schema: NodeSchema) -> list[WidgetSlot]:
    """The widget slots of a node type, in ComfyUI's order."""
    return [
        WidgetSlot(i.name, control=isinstance(i, IntInput) and i.control_after_generate, input=i)
        for i in schema.inputs
        if i.accepts_literal
    ]


def _virtual_layout(node_type: str) -> list[WidgetSlot]:
    if node_type == PRIMITIVE:
        return [WidgetSlot("value", control=True)]
    if node_type in ("Note", "MarkdownNote"):
        return [WidgetSlot("text")]
    return []


def widget_layout(node_type: str, types: NodeTypes) -> list[WidgetSlot] | None:
    """The slots for a node type, or None when the type is unknown (its values stay unnamed)."""
    if node_type in VIRTUAL_TYPES:
        return _virtual_layout(node_type)
    schema = types.schema(node_type)
    return schema_layout(schema) if schema is not None else None


def is_control_value(value: Any, *, next_slot: WidgetSlot | None) -> bool:
    if isinstance(value, str):
        return value in CONTROL_WORDS
    # Very old files stored a "randomize" checkbox; a boolean is a control unless a BOOLEAN comes next.
    return isinstance(value, bool) and not (next_slot and isinstance(next_slot.input, BooleanInput))


@dataclass
class NamedValues:
    widgets: dict[str, Any] = field(default_factory=dict)
    controls: dict[str, Any] = field(default_factory=dict)
    unnamed: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def name_values(values: list[Any], layout: list[WidgetSlot], *, label: str) -> NamedValues:
    """Match positional values to slot names; ``label`` names the node in problems."""
    named = NamedValues()
    cursor = 0
    for index, slot in enumerate(layout):
        if cursor >= len(values):
            _fill_defaults(named, layout[index:], label=label, had_values=bool(values))
            break
        value = values[cursor]
        cursor += 1
        named.widgets[slot.name] = value
        if slot.input is not None and not value_fits(slot.input, value):
            named.problems.append(
                f"{label}: the stored value {value!r:.40} for '{slot.name}' is not of type "
                f"{slot.input.type}; the values may be out of step with this node type"
            )
        following = layout[index + 1] if index + 1 < len(layout) else None
        if slot.control and cursor < len(values) and is_control_value(values[cursor], next_slot=following):
            named.controls[slot.name] = values[cursor]
            cursor += 1
    named.unnamed = list(values[cursor:])
    return named


def _fill_defaults(named: NamedValues, slots: list[WidgetSlot], *, label: str, had_values: bool) -> None:
    for slot in slots:
        default = schema_default(slot.input)
        if default is not None:
            named.widgets[slot.name] = default
    if had_values:
        names = ", ".join(s.name for s in slots)
        named.problems.append(f"{label}: no stored value for {names}; the defaults apply")


def schema_default(schema_input: Input | None) -> Any:
    """The widget's default value; None for a combo without one and for non-widget inputs."""
    if isinstance(schema_input, IntInput | FloatInput | StringInput | BooleanInput | ComboInput):
        return schema_input.default
    return None


def value_fits(schema_input: Input | None, value: Any) -> bool:
    """Whether a stored value has the right kind for its widget (not its range: files outlive limits)."""
    if schema_input is None:
        return True
    kind = schema_input.type
    if isinstance(value, bool):
        return kind == T.BOOLEAN
    if kind in (T.INT, T.FLOAT):
        return isinstance(value, int | float) and (kind == T.FLOAT or float(value).is_integer())
    if kind in (T.STRING, T.COMBO):
        return isinstance(value, str)
    return True


def positional_values(
    widgets: dict[str, Any], controls: dict[str, Any], unnamed: list[Any], layout: list[WidgetSlot]
) -> list[Any]:
    """The inverse of ``name_values``: ComfyUI's widgets_values for a node of a known type."""
    values: list[Any] = []
    for slot in layout:
        values.append(widgets[slot.name] if slot.name in widgets else schema_default(slot.input))
        if slot.name in controls:
            values.append(controls[slot.name])
        elif slot.control and slot.input is not None:
            # ComfyUI reads values by position, so a schema's control value is always written.
            values.append("fixed")
    return values + list(unnamed)
