"""Text conditioning: CLIPTextEncode, CLIPSetLastLayer, ConditioningCombine, ConditioningSetArea."""

from __future__ import annotations

from typing import Any

from latentloom import api
from latentloom.api import (
    FloatInput,
    Input,
    IntInput,
    NodeInputError,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
)
from latentloom.runtime.clip_text import ClipSkipOutOfRange, clip_skip_from_last_layer
from latentloom.runtime.handles import ClipHandle
from nodes.services import NodeServices
from nodes.values import LATENT_DOWNSCALE, MAX_RESOLUTION, conditioning_list

T = api.types


def clip_handle(clip: Any, input_name: str = "clip") -> ClipHandle:
    if not isinstance(clip, ClipHandle):
        raise NodeInputError(input_name, f"expects a CLIP model, got {type(clip).__name__} (does the checkpoint have one?)")
    return clip


class CLIPTextEncode(NodeType):
    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.schema = NodeSchema(
            type="CLIPTextEncode",
            display_name="CLIP Text Encode (Prompt)",
            category="conditioning",
            description="Encodes a prompt with a CLIP model into the conditioning that guides the diffusion model.",
            required=(
                StringInput("text", multiline=True, tooltip="The text to be encoded."),
                Input("clip", T.CLIP, tooltip="The CLIP model used for encoding the text."),
            ),
            outputs=(Output(T.CONDITIONING),),
        )

    def execute(self, ctx: api.ExecutionContext, *, text: str, clip: Any) -> tuple:
        # An ``embedding:name`` that cannot be used is logged and left out by the tokenizer (as ComfyUI does).
        cond, pooled = clip_handle(clip).encode(text, embeddings=self.services.embeddings)
        return ([[cond, {"pooled_output": pooled}]],)


class CLIPSetLastLayer(NodeType):
    schema = NodeSchema(
        type="CLIPSetLastLayer",
        display_name="CLIP Set Last Layer",
        category="conditioning",
        description="Reads the text encoder's output from an earlier layer (-2 = the penultimate, 'clip skip 2').",
        required=(
            Input("clip", T.CLIP),
            IntInput("stop_at_clip_layer", default=-1, min=-24, max=-1, step=1),
        ),
        outputs=(Output(T.CLIP),),
    )

    def execute(self, ctx: api.ExecutionContext, *, clip: Any, stop_at_clip_layer: int) -> tuple:
        handle = clip_handle(clip)
        try:
            return (handle.with_clip_skip(clip_skip_from_last_layer(stop_at_clip_layer)),)
        except ClipSkipOutOfRange as error:
            raise NodeInputError("stop_at_clip_layer", str(error)) from error


class ConditioningCombine(NodeType):
    schema = NodeSchema(
        type="ConditioningCombine",
        display_name="Conditioning (Combine)",
        category="conditioning",
        description="Both conditionings together: the sampler averages their predictions.",
        required=(Input("conditioning_1", T.CONDITIONING), Input("conditioning_2", T.CONDITIONING)),
        outputs=(Output(T.CONDITIONING),),
    )

    def execute(self, ctx: api.ExecutionContext, *, conditioning_1: Any, conditioning_2: Any) -> tuple:
        first = conditioning_list(conditioning_1, "conditioning_1")
        second = conditioning_list(conditioning_2, "conditioning_2")
        return ([[embedding, options] for embedding, options in (*first, *second)],)


def _pixels(name: str, *, default: int, minimum: int) -> IntInput:
    return IntInput(name, default=default, min=minimum, max=MAX_RESOLUTION, step=8)


class ConditioningSetArea(NodeType):
    schema = NodeSchema(
        type="ConditioningSetArea",
        display_name="Conditioning (Set Area)",
        category="conditioning",
        description="Limits the conditioning to a rectangle of the image (pixels), with a strength.",
        required=(
            Input("conditioning", T.CONDITIONING),
            _pixels("width", default=64, minimum=64),
            _pixels("height", default=64, minimum=64),
            _pixels("x", default=0, minimum=0),
            _pixels("y", default=0, minimum=0),
            FloatInput("strength", default=1.0, min=0.0, max=10.0, step=0.01),
        ),
        outputs=(Output(T.CONDITIONING),),
    )

    def execute(
        self, ctx: api.ExecutionContext, *, conditioning: Any, width: int, height: int, x: int, y: int, strength: float
    ) -> tuple:
        d = LATENT_DOWNSCALE
        area = (height // d, width // d, y // d, x // d)  # (h, w, y, x) in latent pixels, as ComfyUI stores it
        entries = conditioning_list(conditioning, "conditioning")
        changed = {"area": area, "strength": strength, "set_area_to_bounds": False}
        return ([[embedding, options | changed] for embedding, options in entries],)
