"""Tiny fake node types that record every execution, and a registry factory.

They mimic the shape of a text-to-image workflow (loader -> encoder -> sampler -> save) plus small
arithmetic and list nodes, so cache and list behaviours can be counted exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from latentloom.api import (
    ALWAYS_RUN,
    BooleanInput,
    ComboInput,
    FloatInput,
    HiddenInput,
    Input,
    IntInput,
    NodeInputError,
    NodeRegistry,
    NodeResult,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
)


class FakeNode(NodeType):
    """A node type whose behaviour is a function; every call's inputs are recorded in ``calls``."""

    def __init__(
        self,
        schema: NodeSchema,
        fn: Callable[..., Any],
        *,
        fingerprint: Callable[..., Any] | None = None,
        validate: Callable[..., list[str]] | None = None,
        lazy_status: Callable[..., Any] | None = None,
    ) -> None:
        self.schema = schema
        self.fn = fn
        self._fingerprint = fingerprint
        self._validate = validate
        self.lazy_status = lazy_status
        self.calls: list[dict[str, Any]] = []
        self.lazy_calls: list[dict[str, Any]] = []  # check_lazy_status calls, when the node has lazy inputs

    @property
    def count(self) -> int:
        return len(self.calls)

    def execute(self, ctx, **inputs):
        self.calls.append(dict(inputs))
        return self.fn(ctx, **inputs)

    def fingerprint(self, **inputs):
        return self._fingerprint(**inputs) if self._fingerprint else None

    def validate(self, **inputs):
        return self._validate(**inputs) if self._validate else []

    def check_lazy_status(self, ctx, **inputs):
        self.lazy_calls.append(dict(inputs))
        if self.lazy_status is None:
            return super().check_lazy_status(ctx, **inputs)
        return self.lazy_status(**inputs)


def loader() -> FakeNode:
    schema = NodeSchema(
        type="Loader",
        aliases=("CheckpointLoaderSimple",),
        required=(ComboInput("ckpt_name", choices=("a.ckpt", "b.ckpt")),),
        outputs=(Output("MODEL"), Output("CLIP")),
    )
    return FakeNode(schema, lambda ctx, ckpt_name: (f"model<{ckpt_name}>", f"clip<{ckpt_name}>"))


def encoder() -> FakeNode:
    schema = NodeSchema(
        type="Encode",
        required=(Input("clip", "CLIP"), StringInput("text", multiline=True)),
        outputs=(Output("CONDITIONING"),),
    )
    return FakeNode(schema, lambda ctx, clip, text: (f"cond<{clip}|{text}>",))


def sampler() -> FakeNode:
    """Reports one progress step per step, like a real sampler."""

    def sample(ctx, model, positive, seed, steps, cfg, sampler_name):
        for step in range(steps):
            ctx.progress(step + 1, steps)
        return (f"latent<{model}|{positive}|{seed}|{steps}|{cfg}|{sampler_name}>",)

    schema = NodeSchema(
        type="Sampler",
        required=(
            Input("model", "MODEL"),
            Input("positive", "CONDITIONING"),
            IntInput("seed", min=0, max=2**64 - 1),
            IntInput("steps", default=20, min=1, max=100),
            FloatInput("cfg", default=7.0, min=0.0, max=30.0),
            ComboInput("sampler_name", choices=("euler", "dpmpp_2m")),
        ),
        outputs=(Output("LATENT"),),
    )
    return FakeNode(schema, sample)


def saver() -> FakeNode:
    """An output node that receives the hidden inputs and reports a UI payload."""

    def save(ctx, samples, filename_prefix, prompt, extra_pnginfo, unique_id):
        return NodeResult(ui={"images": [{"filename": f"{filename_prefix}_{unique_id}.png", "type": "output"}]})

    schema = NodeSchema(
        type="Save",
        output_node=True,
        required=(Input("samples", "LATENT"), StringInput("filename_prefix", default="out")),
        hidden=(
            HiddenInput("prompt", "PROMPT"),
            HiddenInput("extra_pnginfo", "EXTRA_PNGINFO"),
            HiddenInput("unique_id", "UNIQUE_ID"),
        ),
    )
    return FakeNode(schema, save)


def const() -> FakeNode:
    schema = NodeSchema(
        type="Const", required=(IntInput("value", min=-1000, max=1000),), outputs=(Output("INT"),)
    )
    return FakeNode(schema, lambda ctx, value: (value,))


def add() -> FakeNode:
    schema = NodeSchema(
        type="Add",
        required=(IntInput("a", force_input=True), IntInput("b", force_input=True)),
        optional=(IntInput("c", force_input=True),),
        outputs=(Output("INT"),),
    )
    return FakeNode(schema, lambda ctx, a, b, c=0: (a + b + c,))


def show() -> FakeNode:
    """An output node showing whatever it receives as text."""
    schema = NodeSchema(type="Show", output_node=True, required=(Input("value", "*"),))
    return FakeNode(schema, lambda ctx, value: NodeResult(ui={"text": [repr(value)]}))


def random_int() -> FakeNode:
    """Always runs (its fingerprint is ALWAYS_RUN); returns how many times it has run."""
    schema = NodeSchema(type="Random", required=(IntInput("salt"),), outputs=(Output("INT"),))
    node = FakeNode(schema, lambda ctx, salt: (salt + node.count,), fingerprint=lambda **_: ALWAYS_RUN)
    return node


def failing() -> FakeNode:
    """Raises NodeInputError when ``mode`` is "input", ValueError when "value", else passes through."""

    def run(ctx, value, mode):
        if mode == "input":
            raise NodeInputError("value", f"cannot use {value}")
        if mode == "value":
            raise ValueError(f"bad value {value}")
        return (value,)

    schema = NodeSchema(
        type="Fail",
        required=(Input("value", "INT"), ComboInput("mode", choices=("input", "value", "pass"))),
        outputs=(Output("INT"),),
    )
    return FakeNode(schema, run)


def int_range() -> FakeNode:
    """An output list: 0, 1, ..., count - 1."""
    schema = NodeSchema(
        type="Range",
        required=(IntInput("count", min=0, max=100),),
        outputs=(Output("INT", is_list=True), Output("INT", "total")),
    )
    return FakeNode(schema, lambda ctx, count: (list(range(count)), count))


def collect() -> FakeNode:
    """Receives whole lists (input_is_list) and returns their sum and the lists it saw."""
    schema = NodeSchema(
        type="Collect",
        input_is_list=True,
        required=(Input("values", "INT"), IntInput("offset")),
        outputs=(Output("INT"),),
    )
    return FakeNode(schema, lambda ctx, values, offset: (sum(values) + offset[0],))


def waiter(started: threading.Event) -> FakeNode:
    """Loops reporting progress until interrupted (at most ``steps`` steps, never sleeping blindly)."""

    def loop(ctx, steps):
        for step in range(steps):
            ctx.progress(step, steps)
            started.set()
            threading.Event().wait(0.01)
        return (steps,)

    schema = NodeSchema(type="Wait", required=(IntInput("steps", min=1, max=100000),), outputs=(Output("INT"),))
    return FakeNode(schema, loop)


def checked() -> FakeNode:
    """Custom validation: ``low`` must not exceed ``high``."""
    schema = NodeSchema(
        type="Checked",
        output_node=True,
        required=(IntInput("low"), IntInput("high")),
    )
    return FakeNode(
        schema,
        lambda ctx, low, high: NodeResult(),
        validate=lambda low, high: [f"low {low} is above high {high}"] if low > high else [],
    )


def switch() -> FakeNode:
    """Passes on one of two lazy inputs and asks only for that one."""
    schema = NodeSchema(
        type="Switch",
        required=(BooleanInput("select"), Input("on_true", "*", lazy=True), Input("on_false", "*", lazy=True)),
        outputs=(Output("*"),),
    )
    return FakeNode(
        schema,
        lambda ctx, select, on_true, on_false: (on_true if select else on_false,),
        lazy_status=lambda select, on_true, on_false: ["on_true" if select else "on_false"],
    )


def first_nonzero() -> FakeNode:
    """Asks for ``first``; only when it is 0 asks for ``second`` too: two rounds of check_lazy_status.

    ``fallback`` is an optional lazy input, absent when unconnected.
    """

    def wanted(first, second, fallback=None):
        return ["first"] if first is None else (["second"] if first == 0 else [])

    schema = NodeSchema(
        type="FirstNonZero",
        required=(Input("first", "INT", lazy=True), Input("second", "INT", lazy=True)),
        optional=(Input("fallback", "INT", lazy=True),),
        outputs=(Output("INT"),),
    )
    return FakeNode(
        schema, lambda ctx, first, second, fallback=None: (first if first != 0 else second,), lazy_status=wanted
    )


def lazy_sum() -> FakeNode:
    """Two lazy inputs and the default check_lazy_status: evaluates both, as an eager node would."""
    schema = NodeSchema(
        type="LazySum",
        required=(Input("a", "INT", lazy=True), Input("b", "INT", lazy=True)),
        outputs=(Output("INT"),),
    )
    return FakeNode(schema, lambda ctx, a, b: (a + b,))


def list_pick() -> FakeNode:
    """input_is_list: receives whole lists, lazy ones as [None] until evaluated; picks one list's sum."""

    def wanted(index, first, second):
        return ["first" if index[0] == 0 else "second"]

    schema = NodeSchema(
        type="ListPick",
        input_is_list=True,
        required=(IntInput("index"), Input("first", "INT", lazy=True), Input("second", "INT", lazy=True)),
        outputs=(Output("INT"),),
    )
    return FakeNode(
        schema,
        lambda ctx, index, first, second: (sum(first if index[0] == 0 else second),),
        lazy_status=wanted,
    )


def registry_of(*nodes: FakeNode) -> NodeRegistry:
    registry = NodeRegistry()
    for node in nodes:
        registry.register(node, source="tests")
    return registry


class Nodes:
    """One instance of every fake node, registered together; attribute per class for counting."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.loader = loader()
        self.encoder = encoder()
        self.sampler = sampler()
        self.saver = saver()
        self.const = const()
        self.add = add()
        self.show = show()
        self.random = random_int()
        self.fail = failing()
        self.range = int_range()
        self.collect = collect()
        self.wait = waiter(self.started)
        self.checked = checked()
        self.switch = switch()
        self.first_nonzero = first_nonzero()
        self.lazy_sum = lazy_sum()
        self.list_pick = list_pick()
        self.registry = registry_of(*self.all())

    def all(self) -> list[FakeNode]:
        return [v for v in vars(self).values() if isinstance(v, FakeNode)]

    def counts(self) -> dict[str, int]:
        return {node.schema.type: node.count for node in self.all() if node.count}
