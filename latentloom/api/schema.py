"""The declarative schema of a node type: its inputs, widgets, outputs and presentation.

Schemas are plain frozen data. ``NodeSchema.to_object_info`` renders the shape that ComfyUI's
``/object_info`` uses, so existing clients and our canvas read the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from latentloom.api import types as T

ChoiceSource = Sequence[str] | Callable[[], Sequence[str]]


class LiteralError(ValueError):
    """A literal input value that its widget does not accept."""


@dataclass(frozen=True)
class Input:
    """An input socket. Subclasses are widgets: inputs whose value may be typed in as a literal."""

    name: str
    type: str = T.ANY
    tooltip: str = field(default="", kw_only=True)
    lazy: bool = field(default=False, kw_only=True)
    # A widget type that is only ever fed by a link (ComfyUI's forceInput).
    force_input: bool = field(default=False, kw_only=True)

    @property
    def accepts_literal(self) -> bool:
        return self.type in T.WIDGET_TYPES and not self.force_input

    def coerce(self, value: Any) -> Any:
        """Return the literal as the node will receive it, or raise LiteralError saying what is wrong."""
        raise LiteralError(f"expects a link from a {self.type} output, not a literal value")

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if self.tooltip:
            opts["tooltip"] = self.tooltip
        if self.lazy:
            opts["lazy"] = True
        if self.force_input:
            opts["forceInput"] = True
        return opts

    def to_object_info(self) -> list[Any]:
        opts = self.options()
        return [self.type, opts] if opts else [self.type]


def _number(value: Any, kind: str) -> float:
    if isinstance(value, bool):
        raise LiteralError(f"expects {kind}, got a boolean")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise LiteralError(f"expects {kind}, got the string {value[:40]!r}") from None
    if not isinstance(value, int | float):
        raise LiteralError(f"expects {kind}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise LiteralError(f"expects a finite {kind}, got {value}")
    return value


def _check_range(value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise LiteralError(f"value {value} is smaller than the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise LiteralError(f"value {value} is bigger than the maximum {maximum}")


@dataclass(frozen=True, kw_only=True)
class IntInput(Input):
    type: str = T.INT
    default: int = 0
    min: int | None = None
    max: int | None = None
    step: int = 1
    # The canvas shows a control-after-generate widget (fixed / increment / decrement / randomize).
    control_after_generate: bool = False

    def coerce(self, value: Any) -> int:
        number = _number(value, "an integer")
        if isinstance(number, float):
            if not number.is_integer():
                raise LiteralError(f"expects an integer, got {number}")
            number = int(number)
        _check_range(number, self.min, self.max)
        return number

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"default": self.default, "step": self.step}
        if self.min is not None:
            opts["min"] = self.min
        if self.max is not None:
            opts["max"] = self.max
        if self.control_after_generate:
            opts["control_after_generate"] = True
        return opts | super().options()


@dataclass(frozen=True, kw_only=True)
class FloatInput(Input):
    type: str = T.FLOAT
    default: float = 0.0
    min: float | None = None
    max: float | None = None
    step: float = 0.01
    round: float | None = None

    def coerce(self, value: Any) -> float:
        number = float(_number(value, "a number"))
        _check_range(number, self.min, self.max)
        return number

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"default": self.default, "step": self.step}
        if self.min is not None:
            opts["min"] = self.min
        if self.max is not None:
            opts["max"] = self.max
        if self.round is not None:
            opts["round"] = self.round
        return opts | super().options()


@dataclass(frozen=True, kw_only=True)
class StringInput(Input):
    type: str = T.STRING
    default: str = ""
    multiline: bool = False
    max_length: int | None = None

    def coerce(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise LiteralError(f"expects a string, got {type(value).__name__}")
        text = value if isinstance(value, str) else str(value)
        if self.max_length is not None and len(text) > self.max_length:
            raise LiteralError(f"string of {len(text)} characters is longer than the limit {self.max_length}")
        return text

    def options(self) -> dict[str, Any]:
        return {"default": self.default, "multiline": self.multiline} | super().options()


@dataclass(frozen=True, kw_only=True)
class BooleanInput(Input):
    type: str = T.BOOLEAN
    default: bool = False
    label_on: str | None = None
    label_off: str | None = None

    def coerce(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if value in (0, 1) and not isinstance(value, float):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise LiteralError(f"expects true or false, got {value!r:.40}")

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"default": self.default}
        if self.label_on is not None:
            opts["label_on"] = self.label_on
        if self.label_off is not None:
            opts["label_off"] = self.label_off
        return opts | super().options()


@dataclass(frozen=True, kw_only=True)
class ComboInput(Input):
    """A choice among strings. ``choices`` may be a callable, evaluated per request (e.g. files on disk)."""

    type: str = T.COMBO
    choices: ChoiceSource = ()
    default: str | None = None
    # Accept values that are not (yet) among the choices, e.g. an image uploaded after validation.
    allow_unlisted: bool = False

    def resolve_choices(self) -> list[str]:
        source = self.choices() if callable(self.choices) else self.choices
        return list(source)

    def coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise LiteralError(f"expects one of the choices, got {type(value).__name__}")
        if not self.allow_unlisted:
            choices = self.resolve_choices()
            if value not in choices:
                shown = ", ".join(choices[:10]) + (", …" if len(choices) > 10 else "")
                raise LiteralError(f"value {value[:80]!r} is not among the choices: [{shown}]")
        return value

    def to_object_info(self) -> list[Any]:
        opts = super().options()
        if self.default is not None:
            opts["default"] = self.default
        return [self.resolve_choices(), opts] if opts else [self.resolve_choices()]


# Hidden inputs are filled by the executor, never by the user. Values are ComfyUI's names.
HIDDEN_KINDS = frozenset({"PROMPT", "EXTRA_PNGINFO", "UNIQUE_ID", "DYNPROMPT"})


@dataclass(frozen=True)
class HiddenInput:
    name: str
    kind: str  # one of HIDDEN_KINDS

    def __post_init__(self) -> None:
        if self.kind not in HIDDEN_KINDS:
            raise ValueError(f"hidden input {self.name!r}: unknown kind {self.kind!r}")


@dataclass(frozen=True)
class Output:
    type: str
    name: str | None = None
    is_list: bool = field(default=False, kw_only=True)
    tooltip: str = field(default="", kw_only=True)

    @property
    def display_name(self) -> str:
        return self.name or self.type


@dataclass(frozen=True, kw_only=True)
class NodeSchema:
    type: str  # the class_type in API prompts
    display_name: str = ""
    category: str = "utils"
    description: str = ""
    required: tuple[Input, ...] = ()
    optional: tuple[Input, ...] = ()
    hidden: tuple[HiddenInput, ...] = ()
    outputs: tuple[Output, ...] = ()
    output_node: bool = False
    # The node receives whole lists instead of being run once per list item.
    input_is_list: bool = False
    # Other class_type names that resolve to this node (ComfyUI's names, former names).
    aliases: tuple[str, ...] = ()
    deprecated: bool = False
    experimental: bool = False

    def __post_init__(self) -> None:
        names = [i.name for i in (*self.required, *self.optional)] + [h.name for h in self.hidden]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"node {self.type!r}: input names used twice: {sorted(duplicates)}")

    @property
    def inputs(self) -> tuple[Input, ...]:
        return (*self.required, *self.optional)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def is_required(self, name: str) -> bool:
        return any(i.name == name for i in self.required)

    def to_object_info(self, *, python_module: str = "nodes") -> dict[str, Any]:
        """ComfyUI's /object_info entry for this node type; ``python_module`` names the pack it came from."""
        return {
            "input": {
                "required": {i.name: i.to_object_info() for i in self.required},
                "optional": {i.name: i.to_object_info() for i in self.optional},
                "hidden": {h.name: h.kind for h in self.hidden},
            },
            "input_order": {
                "required": [i.name for i in self.required],
                "optional": [i.name for i in self.optional],
                "hidden": [h.name for h in self.hidden],
            },
            "output": [o.type for o in self.outputs],
            "output_is_list": [o.is_list for o in self.outputs],
            "output_name": [o.display_name for o in self.outputs],
            "output_tooltips": [o.tooltip for o in self.outputs],
            "name": self.type,
            "display_name": self.display_name or self.type,
            "description": self.description,
            "python_module": python_module,
            "category": self.category,
            "output_node": self.output_node,
            "deprecated": self.deprecated,
            "experimental": self.experimental,
        }
