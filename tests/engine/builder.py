"""A small builder for API prompts: ``p.add("Encode", clip=loader.out(1), text="a cat")``."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NodeRef:
    id: str

    def out(self, index: int = 0) -> list[Any]:
        return [self.id, index]


class PromptBuilder:
    def __init__(self) -> None:
        self.prompt: dict[str, dict[str, Any]] = {}

    def add(self, class_type: str, *, node_id: str | None = None, **inputs: Any) -> NodeRef:
        node_id = node_id or str(len(self.prompt) + 1)
        self.prompt[node_id] = {"class_type": class_type, "inputs": inputs, "_meta": {"title": class_type}}
        return NodeRef(node_id)

    def set(self, ref: NodeRef, **inputs: Any) -> None:
        self.prompt[ref.id]["inputs"].update(inputs)

    def build(self) -> dict[str, dict[str, Any]]:
        """A deep copy, so later edits of the builder do not change prompts already submitted."""
        return copy.deepcopy(self.prompt)


def txt2img(p: PromptBuilder, *, seed: int = 1, text: str = "a cat", ckpt: str = "a.ckpt") -> dict[str, NodeRef]:
    """Loader -> Encode -> Sampler -> Save, the shape of ComfyUI's default workflow."""
    loader = p.add("Loader", ckpt_name=ckpt)
    encode = p.add("Encode", clip=loader.out(1), text=text)
    sample = p.add(
        "Sampler", model=loader.out(0), positive=encode.out(), seed=seed, steps=3, cfg=7.0, sampler_name="euler"
    )
    save = p.add("Save", samples=sample.out(), filename_prefix="img")
    return {"loader": loader, "encode": encode, "sampler": sample, "save": save}
