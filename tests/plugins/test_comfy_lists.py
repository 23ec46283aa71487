"""ComfyUI classes with OUTPUT_IS_LIST / INPUT_IS_LIST run through the engine with ComfyUI's list semantics:
a list output runs a plain downstream node once per item; an INPUT_IS_LIST node gets whole lists."""

from __future__ import annotations

import threading

from latentloom.api import NodeRegistry
from latentloom.api.comfy_compat import ComfyNodeType
from latentloom.engine import Executor, OutputCache, validate_prompt


class Split:
    RETURN_TYPES = ("INT",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "split"
    CATEGORY = "tests/lists"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"count": ("INT", {"default": 3, "min": 1, "max": 10})}}

    def split(self, count):
        return (list(range(1, count + 1)),)


class Double:
    RETURN_TYPES = ("INT",)
    FUNCTION = "double"
    CATEGORY = "tests/lists"
    calls: list[int] = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"forceInput": True})}}

    def double(self, value):
        Double.calls.append(value)
        return (value * 2,)


class Gather:
    RETURN_TYPES = ("INT",)
    INPUT_IS_LIST = True
    OUTPUT_NODE = True
    FUNCTION = "gather"
    CATEGORY = "tests/lists"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"values": ("INT", {"forceInput": True}), "offset": ("INT", {"default": 0})}}

    def gather(self, values, offset):
        # Every input arrives as a list, widgets included (ComfyUI's INPUT_IS_LIST).
        return {"ui": {"values": values, "offset": offset}, "result": (sum(values) + offset[0],)}


def test_list_outputs_fan_out_and_input_is_list_gathers_them():
    registry = NodeRegistry()
    for name, cls in (("Split", Split), ("Double", Double), ("Gather", Gather)):
        registry.register(ComfyNodeType(name, cls), source="tests")
    prompt = {
        "1": {"class_type": "Split", "inputs": {"count": 3}},
        "2": {"class_type": "Double", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "Gather", "inputs": {"values": ["2", 0], "offset": 100}},
    }
    Double.calls.clear()
    events = []
    outcome = Executor(registry, cache=OutputCache(ram_budget_bytes=None)).run(
        validate_prompt(prompt, registry), prompt_id="p", emit=events.append, interrupt=threading.Event()
    )
    assert outcome.status == "success"
    assert Double.calls == [1, 2, 3]  # once per item of the list output
    shown = next(e for e in events if e.type == "executed" and e.data["node"] == "3")
    assert shown.data["output"] == {"values": [2, 4, 6], "offset": [100]}
