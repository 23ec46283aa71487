"""ComfyUI node classes read into our schema, and their IS_CHANGED / VALIDATE_INPUTS / returns mapped."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from latentloom.api import (
    ALWAYS_RUN,
    BooleanInput,
    ComboInput,
    FloatInput,
    Input,
    IntInput,
    NodeResult,
    StringInput,
)
from latentloom.api.comfy_compat import ComfyClassError, ComfyNodeType, input_from_spec, schema_from_class


class Everything:
    DESCRIPTION = "every kind of input"
    CATEGORY = "tests/compat"
    RETURN_TYPES = ("IMAGE", "INT", ["a", "b"])
    RETURN_NAMES = ("picture", "count", "choice")
    OUTPUT_IS_LIST = (False, True, False)
    FUNCTION = "go"
    INPUT_IS_LIST = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "steps": ("INT", {"default": 20, "min": 1, "max": 100, "step": 2, "control_after_generate": True}),
                "cfg": ("FLOAT", {"default": 7.5, "min": 0.0, "max": 30.0, "step": 0.5, "round": 0.01}),
                "text": ("STRING", {"multiline": True, "default": "hi"}),
                "flag": ("BOOLEAN", {"default": True, "label_on": "yes", "label_off": "no"}),
                "sampler": (["euler", "ddim"], {"default": "ddim"}),
                "scheduler": ("COMBO", {"options": ["normal", "karras"]}),
                "model": ("MODEL",),
                "seed": ("INT", {"forceInput": True}),
            },
            "optional": {"mask": ("MASK", {"lazy": True, "tooltip": "only where white"})},
            "hidden": {"unique_id": "UNIQUE_ID", "prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def go(self, **inputs):
        return inputs


def test_input_types_become_our_widgets_and_sockets():
    schema = schema_from_class("Everything", Everything, display_name="All of it")
    by_name = {i.name: i for i in schema.inputs}
    assert by_name["steps"] == IntInput("steps", default=20, min=1, max=100, step=2, control_after_generate=True)
    assert by_name["cfg"] == FloatInput("cfg", default=7.5, min=0.0, max=30.0, step=0.5, round=0.01)
    assert by_name["text"] == StringInput("text", default="hi", multiline=True)
    assert by_name["flag"] == BooleanInput("flag", default=True, label_on="yes", label_off="no")
    assert by_name["sampler"] == ComboInput("sampler", choices=("euler", "ddim"), default="ddim")
    assert by_name["scheduler"].resolve_choices() == ["normal", "karras"]
    assert by_name["model"] == Input("model", "MODEL") and not by_name["model"].accepts_literal
    assert by_name["seed"].force_input and not by_name["seed"].accepts_literal
    assert by_name["mask"] == Input("mask", "MASK", lazy=True, tooltip="only where white")
    assert not schema.is_required("mask")
    assert [(h.name, h.kind) for h in schema.hidden] == [
        ("unique_id", "UNIQUE_ID"), ("prompt", "PROMPT"), ("extra_pnginfo", "EXTRA_PNGINFO")
    ]
    assert [(o.type, o.display_name, o.is_list) for o in schema.outputs] == [
        ("IMAGE", "picture", False), ("INT", "count", True), ("COMBO", "choice", False)
    ]
    assert schema.input_is_list and schema.display_name == "All of it"
    assert (schema.category, schema.description) == ("tests/compat", "every kind of input")


def test_literals_are_checked_against_the_declared_ranges():
    spec = input_from_spec("N", "steps", ("INT", {"min": 1, "max": 10}))
    assert spec.coerce("4") == 4
    with pytest.raises(ValueError, match="bigger than the maximum 10"):
        spec.coerce(11)


class Returns:
    RETURN_TYPES = ("INT", "STRING")
    FUNCTION = "run"
    OUTPUT_NODE = True
    made = 0

    def __init__(self):
        type(self).made += 1
        self.calls = 0

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mode": (["tuple", "dict", "ui", "list"],), "path": ("STRING", {})}}

    @classmethod
    def IS_CHANGED(cls, path, **_):
        return float("nan") if path == "volatile" else f"mtime of {path}"

    @classmethod
    def VALIDATE_INPUTS(cls, mode):
        return True if mode != "list" else "lists are refused here"

    def run(self, mode, path):
        self.calls += 1
        if mode == "tuple":
            return (self.calls, path)
        if mode == "dict":
            return {"ui": {"text": [path]}, "result": (1, path)}
        if mode == "ui":
            return {"ui": {"text": [path]}}
        return [2, path]


def _ctx(node_id: str):
    return SimpleNamespace(node_id=node_id, prompt_id="p")


def test_function_results_map_to_outputs_and_ui_and_each_graph_node_keeps_its_instance():
    node = ComfyNodeType("Returns", Returns)
    assert node.execute(_ctx("1"), mode="tuple", path="a") == (1, "a")
    assert node.execute(_ctx("1"), mode="tuple", path="a") == (2, "a")  # the same instance for node 1
    assert node.execute(_ctx("2"), mode="tuple", path="a") == (1, "a")  # a new one for node 2
    assert Returns.made == 2
    assert node.execute(_ctx("1"), mode="dict", path="p") == NodeResult(outputs=(1, "p"), ui={"text": ["p"]})
    assert node.execute(_ctx("1"), mode="ui", path="p") == NodeResult(outputs=(None, None), ui={"text": ["p"]})
    assert node.execute(_ctx("1"), mode="list", path="p") == (2, "p")


def test_is_changed_nan_means_always_run_and_validate_inputs_messages_are_reported():
    node = ComfyNodeType("Returns", Returns)
    assert node.fingerprint(mode="tuple", path="volatile") is ALWAYS_RUN
    assert node.fingerprint(mode="tuple", path="x.png") == "mtime of x.png"
    assert node.validate(mode="tuple", path="x") == []
    assert node.validate(mode="list", path="x") == ["lists are refused here"]
    # an input that VALIDATE_INPUTS checks itself is not refused by the combo list first (as in ComfyUI)
    assert node.schema.input("mode").coerce("uploaded.png") == "uploaded.png"


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"FUNCTION": "missing"}, "FUNCTION names no method"),
        ({"RETURN_NAMES": ("a", "b")}, "RETURN_NAMES has 2 names for 1 RETURN_TYPES"),
        ({"INPUT_TYPES": classmethod(lambda cls: {"hidden": {"x": "AUTH_TOKEN"}})}, "hidden input 'x'"),
        ({"INPUT_TYPES": classmethod(lambda cls: {"required": {"x": 5}})}, "input 'x'"),
    ],
)
def test_classes_that_cannot_be_read_raise_an_error_naming_the_node(attributes, message):
    base = {"RETURN_TYPES": ("INT",), "FUNCTION": "run", "run": lambda self: (1,),
            "INPUT_TYPES": classmethod(lambda cls: {"required": {}})}
    broken = type("Broken", (), base | attributes)
    with pytest.raises(ComfyClassError, match=message) as raised:
        ComfyNodeType("BrokenNode", broken)
    assert "'BrokenNode'" in str(raised.value)
