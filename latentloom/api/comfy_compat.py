"""Node classes written to ComfyUI's custom-node conventions, used unchanged as our node types.

``comfy_node_type(name, cls)`` reads the class attributes (INPUT_TYPES, RETURN_TYPES, RETURN_NAMES,
FUNCTION, CATEGORY, OUTPUT_NODE, INPUT_IS_LIST, OUTPUT_IS_LIST, DESCRIPTION, …) into a NodeSchema and
runs the class's FUNCTION, IS_CHANGED and VALIDATE_INPUTS where our engine asks for execute, fingerprint
and validate. Inputs declared ``{"lazy": True}`` are lazy in the schema, and the class's own
``check_lazy_status`` (called on the same instance as FUNCTION, with the same keyword arguments) tells the
executor which of them to evaluate; a class without one evaluates every lazy input, as ComfyUI does.
"""

from __future__ import annotations

import inspect
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from latentloom.api import types as T
from latentloom.api.errors import LatentLoomError
from latentloom.api.node import ALWAYS_RUN, ExecutionContext, NodeResult, NodeType
from latentloom.api.schema import (
    HIDDEN_KINDS,
    BooleanInput,
    ComboInput,
    FloatInput,
    HiddenInput,
    Input,
    IntInput,
    NodeSchema,
    Output,
    StringInput,
)


class ComfyClassError(LatentLoomError):
    """A ComfyUI-style node class whose declarations cannot be read (names the node and what is wrong)."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"ComfyUI node class {node!r}: {message}")
        self.node = node


def _common(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "tooltip": str(options.get("tooltip", "")),
        "lazy": bool(options.get("lazy", False)),
        "force_input": bool(options.get("forceInput", False)),
    }


def _number_bounds(options: Mapping[str, Any]) -> dict[str, Any]:
    return {key: options[key] for key in ("min", "max", "step") if options.get(key) is not None}


def _widget(name: str, kind: str, options: Mapping[str, Any]) -> Input:
    common = _common(options)
    if kind == T.INT:
        control = bool(options.get("control_after_generate", False))
        return IntInput(
            name, default=int(options.get("default", 0)), control_after_generate=control,
            **_number_bounds(options), **common,
        )
    if kind == T.FLOAT:
        rounding = options.get("round")
        return FloatInput(
            name, default=float(options.get("default", 0.0)), round=rounding if rounding else None,
            **_number_bounds(options), **common,
        )
    if kind == T.STRING:
        default = str(options.get("default", ""))
        return StringInput(name, default=default, multiline=bool(options.get("multiline", False)), **common)
    if kind == T.BOOLEAN:
        return BooleanInput(
            name, default=bool(options.get("default", False)),
            label_on=options.get("label_on"), label_off=options.get("label_off"), **common,
        )
    return Input(name, kind, **common)


def input_from_spec(node: str, name: str, spec: Any, *, unlisted_ok: bool = False) -> Input:
    """One INPUT_TYPES entry (``("INT", {...})``, ``(["a", "b"],)``, ``("IMAGE",)``) as our Input.

    ``unlisted_ok``: the class validates this input itself (it is an argument of VALIDATE_INPUTS), so a
    combo value outside the list is left to it, as ComfyUI does.
    """
    if isinstance(spec, str):
        spec = (spec,)
    if not isinstance(spec, list | tuple) or not spec:
        raise ComfyClassError(node, f"input {name!r}: expected a (type, options) tuple, got {spec!r:.60}")
    kind, options = spec[0], spec[1] if len(spec) > 1 else {}
    if not isinstance(options, Mapping):
        raise ComfyClassError(node, f"input {name!r}: options must be a dict, got {type(options).__name__}")
    if kind == T.COMBO and "options" in options:  # ComfyUI's newer spelling of a combo
        kind = options["options"]
    if isinstance(kind, list | tuple):
        choices = tuple(str(choice) for choice in kind)
        default = options.get("default")
        return ComboInput(
            name, choices=choices, default=None if default is None else str(default),
            allow_unlisted=unlisted_ok, **_common(options),
        )
    if not isinstance(kind, str):
        raise ComfyClassError(node, f"input {name!r}: the type must be a string or a list, got {kind!r:.60}")
    return _widget(name, kind, options)


def _hidden(node: str, section: Mapping[str, Any]) -> tuple[HiddenInput, ...]:
    hidden = []
    for name, kind in section.items():
        if kind not in HIDDEN_KINDS:
            known = ", ".join(sorted(HIDDEN_KINDS))
            raise ComfyClassError(node, f"hidden input {name!r} has kind {kind!r}; supported: {known}")
        hidden.append(HiddenInput(name, kind))
    return tuple(hidden)


def _outputs(node: str, cls: type) -> tuple[Output, ...]:
    types = tuple(getattr(cls, "RETURN_TYPES", ()))
    names = tuple(getattr(cls, "RETURN_NAMES", ()) or ())
    is_list = getattr(cls, "OUTPUT_IS_LIST", None) or (False,) * len(types)
    tooltips = tuple(getattr(cls, "OUTPUT_TOOLTIPS", ()) or ())
    if names and len(names) != len(types):
        raise ComfyClassError(node, f"RETURN_NAMES has {len(names)} names for {len(types)} RETURN_TYPES")
    if len(is_list) != len(types):
        raise ComfyClassError(node, f"OUTPUT_IS_LIST has {len(is_list)} flags for {len(types)} RETURN_TYPES")
    outputs = []
    for index, kind in enumerate(types):
        outputs.append(
            Output(
                T.COMBO if isinstance(kind, list | tuple) else str(kind),
                names[index] if names else None,
                is_list=bool(is_list[index]),
                tooltip=str(tooltips[index]) if index < len(tooltips) else "",
            )
        )
    return tuple(outputs)


def _argument_names(function: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    """The keyword names ``function`` accepts, and whether it takes **kwargs."""
    parameters = inspect.signature(function).parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    return frozenset(p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD), takes_any


def _input_types(node: str, cls: type) -> Mapping[str, Any]:
    if not callable(getattr(cls, "INPUT_TYPES", None)):
        raise ComfyClassError(node, "has no INPUT_TYPES classmethod")
    try:
        declared = cls.INPUT_TYPES()
    except Exception as error:
        raise ComfyClassError(node, f"INPUT_TYPES() raised {type(error).__name__}: {error}") from error
    if not isinstance(declared, Mapping):
        raise ComfyClassError(node, f"INPUT_TYPES() must return a dict, got {type(declared).__name__}")
    return declared


def schema_from_class(name: str, cls: type, *, display_name: str = "") -> NodeSchema:
    """The NodeSchema that a ComfyUI node class declares through its class attributes."""
    declared = _input_types(name, cls)
    validator = getattr(cls, "VALIDATE_INPUTS", None)
    self_validated = _argument_names(validator)[0] if callable(validator) else frozenset()

    def section(key: str) -> tuple[Input, ...]:
        entries = declared.get(key) or {}
        return tuple(
            input_from_spec(name, input_name, spec, unlisted_ok=input_name in self_validated)
            for input_name, spec in entries.items()
        )

    try:
        return NodeSchema(
            type=name,
            display_name=display_name,
            category=str(getattr(cls, "CATEGORY", "custom")),
            description=str(getattr(cls, "DESCRIPTION", "")),
            required=section("required"),
            optional=section("optional"),
            hidden=_hidden(name, declared.get("hidden") or {}),
            outputs=_outputs(name, cls),
            output_node=bool(getattr(cls, "OUTPUT_NODE", False)),
            input_is_list=bool(getattr(cls, "INPUT_IS_LIST", False)),
            deprecated=bool(getattr(cls, "DEPRECATED", False)),
            experimental=bool(getattr(cls, "EXPERIMENTAL", False)),
        )
    except ValueError as error:  # e.g. an input name used in two sections
        raise ComfyClassError(name, str(error)) from error


def _call_with_accepted(function: Callable[..., Any], inputs: Mapping[str, Any]) -> Any:
    """Call with the inputs the function names (all of them when it takes **kwargs), as ComfyUI does."""
    names, takes_any = _argument_names(function)
    return function(**(dict(inputs) if takes_any else {k: v for k, v in inputs.items() if k in names}))


class ComfyNodeType(NodeType):
    """A ComfyUI node class behind our NodeType contract. One instance of the class per graph node id."""

    def __init__(self, name: str, cls: type, *, display_name: str = "") -> None:
        self.schema = schema_from_class(name, cls, display_name=display_name)
        self.node_class = cls
        function = getattr(cls, "FUNCTION", None)
        if not isinstance(function, str) or not callable(getattr(cls, function, None)):
            raise ComfyClassError(name, f"FUNCTION names no method of the class (FUNCTION = {function!r})")
        self.function_name = function
        self._instances: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _instance(self, node_id: str) -> Any:
        with self._lock:
            if node_id not in self._instances:
                self._instances[node_id] = self.node_class()
            return self._instances[node_id]

    def execute(self, ctx: ExecutionContext, **inputs: Any) -> NodeResult | tuple[Any, ...]:
        method = getattr(self._instance(ctx.node_id), self.function_name)
        return self._result(method(**inputs))

    def _result(self, returned: Any) -> NodeResult | tuple[Any, ...]:
        if isinstance(returned, Mapping):
            if "expand" in returned:
                raise ComfyClassError(self.schema.type, "node expansion ({'expand': …}) is not supported")
            outputs = returned.get("result")
            if outputs is None:  # a UI-only result: the outputs are empty
                outputs = (None,) * len(self.schema.outputs)
            return NodeResult(outputs=tuple(outputs), ui=returned.get("ui"))
        if isinstance(returned, list):
            return tuple(returned)
        return returned

    def check_lazy_status(self, ctx: ExecutionContext, **inputs: Any) -> list[str]:
        """The class's own check_lazy_status on this graph node's instance (None means "nothing more")."""
        method = getattr(self._instance(ctx.node_id), "check_lazy_status", None)
        if not callable(method):
            return super().check_lazy_status(ctx, **inputs)
        needed = method(**inputs)
        return [] if needed is None else needed

    def fingerprint(self, **inputs: Any) -> Any:
        """IS_CHANGED: NaN (ComfyUI's "always changed") becomes ALWAYS_RUN; other values key the cache."""
        is_changed = getattr(self.node_class, "IS_CHANGED", None)
        if not callable(is_changed):
            return None
        value = _call_with_accepted(is_changed, inputs)
        if isinstance(value, float) and math.isnan(value):
            return ALWAYS_RUN
        return value

    def validate(self, **inputs: Any) -> list[str]:
        """VALIDATE_INPUTS: True passes; any other value (ComfyUI's error string) is the message."""
        validator = getattr(self.node_class, "VALIDATE_INPUTS", None)
        if not callable(validator):
            return []
        verdict = _call_with_accepted(validator, inputs)
        return [] if verdict is True else [str(verdict)]


def node_types_from_mappings(
    class_mappings: Mapping[str, Any], display_names: Mapping[str, Any] | None = None
) -> list[ComfyNodeType]:
    """Node types for a plugin's NODE_CLASS_MAPPINGS (and NODE_DISPLAY_NAME_MAPPINGS)."""
    names = display_names or {}
    return [
        ComfyNodeType(name, cls, display_name=str(names.get(name, "")))
        for name, cls in class_mappings.items()
    ]
