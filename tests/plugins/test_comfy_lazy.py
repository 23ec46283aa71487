"""check_lazy_status of ComfyUI node classes, forwarded by the adapter on the node's own instance."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from latentloom.api.comfy_compat import ComfyNodeType


def _ctx(node_id: str):
    return SimpleNamespace(node_id=node_id, prompt_id="p")


class Gate:
    """Asks for ``value`` only when open; remembers what it was asked, per instance."""

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    def __init__(self):
        self.asked = 0

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"open": ("BOOLEAN", {}), "value": ("IMAGE", {"lazy": True})}}

    def check_lazy_status(self, open, value):
        self.asked += 1
        return ["value"] if open and value is None else None

    def run(self, open, value):
        return (value if open else None, self.asked)


class NoCheck:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"a": ("IMAGE", {"lazy": True}), "b": ("IMAGE",)},
            "optional": {"c": ("IMAGE", {"lazy": True})},
        }

    def run(self, a, b, c=None):
        return (a,)


def test_the_class_method_answers_and_none_means_nothing_more():
    gate = ComfyNodeType("Gate", Gate)
    assert gate.check_lazy_status(_ctx("1"), open=True, value=None) == ["value"]
    assert gate.check_lazy_status(_ctx("1"), open=False, value=None) == []


def test_check_lazy_status_and_function_share_the_graph_nodes_instance():
    gate = ComfyNodeType("Gate", Gate)
    gate.check_lazy_status(_ctx("7"), open=True, value=None)
    gate.check_lazy_status(_ctx("7"), open=True, value=1)
    assert gate.execute(_ctx("7"), open=True, value=1) == (1, 2)
    assert gate.execute(_ctx("8"), open=True, value=1) == (1, 0)


def test_a_class_without_check_lazy_status_asks_for_every_unevaluated_lazy_input():
    node = ComfyNodeType("NoCheck", NoCheck)
    image = torch.zeros(1, 2, 2, 3)  # a tensor value must not be compared with ==
    assert node.check_lazy_status(_ctx("1"), a=None, b=image, c=None) == ["a", "c"]
    assert node.check_lazy_status(_ctx("1"), a=image, b=None, c=None) == ["c"]
    assert node.check_lazy_status(_ctx("1"), a=image, b=image) == []
