"""Source text of the plugins the tests write into a temporary custom_nodes/ folder."""

from __future__ import annotations

# ComfyUI's conventions, unchanged: class attributes, a FUNCTION method, {"ui", "result"} returns.
COMFY_STYLE = '''
import math
import torch

RUNS = []  # (class, unique_id) of every execution: tests tell a run from a cache hit


class SolidImage:
    CATEGORY = "test/comfy"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "batch": ("INT", {"default": 1, "min": 1, "max": 8}),
            "size": ("INT", {"default": 4, "min": 1, "max": 64}),
            "level": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05}),
        }}

    def make(self, batch, size, level):
        RUNS.append(("SolidImage", None))
        ramp = torch.linspace(0.0, 1.0, batch).view(batch, 1, 1, 1)
        return (torch.full((batch, size, size, 3), level) * ramp,)


class ImageStats:
    """An output node: reports what it received, with the hidden inputs it was given."""

    CATEGORY = "test/comfy"
    RETURN_TYPES = ("FLOAT",)
    RETURN_NAMES = ("mean",)
    FUNCTION = "stats"
    OUTPUT_NODE = True
    DESCRIPTION = "Shape and mean of an IMAGE."

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"image": ("IMAGE",), "label": ("STRING", {"default": "", "multiline": True})},
            "optional": {"mode": (["mean", "max"], {"default": "mean"})},
            "hidden": {"unique_id": "UNIQUE_ID", "prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def stats(self, image, label, mode="mean", unique_id=None, prompt=None, extra_pnginfo=None):
        RUNS.append(("ImageStats", unique_id))
        value = float(image.mean() if mode == "mean" else image.max())
        ui = {"stats": [{
            "shape": list(image.shape), "value": value, "label": label,
            "unique_id": unique_id, "prompt_nodes": sorted(prompt), "pnginfo": extra_pnginfo,
        }]}
        return {"ui": ui, "result": (value,)}


class Clock:
    """IS_CHANGED returns NaN: it runs every time."""

    CATEGORY = "test/comfy"
    RETURN_TYPES = ("INT",)
    FUNCTION = "tick"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0})}}

    @classmethod
    def IS_CHANGED(cls, seed):
        return float("nan")

    def tick(self, seed):
        RUNS.append(("Clock", None))
        return {"ui": {"ticks": [len(RUNS)]}}


class EvenOnly:
    """VALIDATE_INPUTS refuses odd numbers with its own message."""

    CATEGORY = "test/comfy"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"number": ("INT", {"default": 0})}}

    @classmethod
    def VALIDATE_INPUTS(cls, number):
        return True if number % 2 == 0 else f"{number} is odd"

    def run(self, number):
        return {"ui": {"numbers": [number]}, "result": (number,)}


NODE_CLASS_MAPPINGS = {"SolidImage": SolidImage, "ImageStats": ImageStats, "Clock": Clock, "EvenOnly": EvenOnly}
NODE_DISPLAY_NAME_MAPPINGS = {"SolidImage": "Solid Image"}
'''

SYNTAX_ERROR = "def broken(:\n    pass\n"
MISSING_DEPENDENCY = "import surely_not_an_installed_module_xyz\n"
RAISES_AT_IMPORT = "raise RuntimeError('this plugin refuses to start')\n"
WANTS_COMFY = "import folder_paths\nimport comfy.sd\n"
WANTS_COMFY_SUBMODULE = "from comfy.model_management import get_torch_device\n"
WANTS_COMFY_SERVER = "from server import PromptServer\n"
HOOK_RAISES = """
from latentloom.api import hookimpl


@hookimpl
def register_nodes(registry, services):
    raise ValueError('no nodes today')
"""
UNREADABLE_CLASS = """
class Odd:
    RETURN_TYPES = ("INT",)
    FUNCTION = "nowhere"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}


NODE_CLASS_MAPPINGS = {"Odd": Odd}
"""

# Two ComfyUI-style plugins that both define "SharedName", and one that reuses a built-in's name.
_ONE_NODE = '''
class Node:
    CATEGORY = "test/collide"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{}}}}

    def run(self):
        return {{"ui": {{"value": [{value}]}}, "result": ({value},)}}


NODE_CLASS_MAPPINGS = {{"{name}": Node, "{own}": Node}}
'''


def one_node_plugin(name: str, *, own: str, value: int) -> str:
    return _ONE_NODE.format(name=name, own=own, value=value)
