"""LoraLoader, LoraLoaderModelOnly, LoraMerge and LoraSave: adapters over ``latentloom.runtime.lora``.

A LoRA file's tensors are kept by the loader node (a few files, keyed by path, size and mtime), so moving a
strength slider re-patches without reading the file again; the checkpoint itself comes from the engine
cache. Keys that patch nothing are logged and shown in the node's UI payload (count and examples).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from latentloom import api
from latentloom.api import (
    BooleanInput,
    ComboInput,
    FloatInput,
    Input,
    IntInput,
    NodeInputError,
    NodeResult,
    NodeSchema,
    NodeType,
    Output,
    StringInput,
)
from latentloom.api.errors import LatentLoomError
from latentloom.runtime.checkpoint import read_state_dict
from latentloom.runtime.handles import ClipHandle, ModelHandle
from latentloom.runtime.lora.extract import LORA_TYPES, ExtractError, extract_entries
from latentloom.runtime.lora.merging import (
    MERGE_MODES,
    kohya_state_dict,
    lora_layers,
    merge_lora_layers,
    unet_namer,
)
from latentloom.runtime.lora.patch import apply_lora
from latentloom.runtime.lora.reader import SHOWN_KEYS
from latentloom.runtime.lora.saving import TensorEntry, save_new
from nodes.loaders import file_fingerprint
from nodes.services import NodeServices

T = api.types
LORA = "LORA"  # a merged LoRA (kohya layer name → factors), from LoraMerge to LoraSave
STRENGTH_RANGE = {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}  # ComfyUI's LoraLoader range
CACHED_FILES = 4


class LoraFileCache:
    """The last few LoRA files read, by (path, size, mtime): a changed file is read again."""

    def __init__(self, capacity: int = CACHED_FILES) -> None:
        self.capacity = capacity
        self._files: OrderedDict[tuple[str, int, int], dict[str, Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, path: Path) -> dict[str, Tensor]:
        key = file_fingerprint(path)
        with self._lock:
            if key in self._files:
                self._files.move_to_end(key)
                return self._files[key]
        state = read_state_dict(path)
        with self._lock:
            self._files[key] = state
            while len(self._files) > self.capacity:
                self._files.popitem(last=False)
        return state


def _lora_combo(services: NodeServices, name: str = "lora_name") -> ComboInput:
    return ComboInput(name, choices=lambda: services.folders.list("loras"), tooltip="The name of the LoRA file.")


def _read_lora(services: NodeServices, cache: LoraFileCache, name: str, input_name: str) -> dict[str, Tensor]:
    try:
        return cache.read(services.folders.path("loras", name))
    except LatentLoomError as error:
        raise NodeInputError(input_name, str(error)) from error


def _unmatched_ui(name: str, unmatched: tuple[str, ...]) -> dict[str, Any] | None:
    if not unmatched:
        return None
    return {"lora_unmatched_keys": [{"lora": name, "count": len(unmatched), "examples": list(unmatched[:SHOWN_KEYS])}]}


class LoraLoader(NodeType):
    def __init__(self, services: NodeServices, *, model_only: bool = False) -> None:
        self.services = services
        self.model_only = model_only
        self.cache = LoraFileCache()
        clip_inputs = () if model_only else (Input("clip", T.CLIP, tooltip="The CLIP model the LoRA is applied to."),)
        strengths = (FloatInput("strength_model", **STRENGTH_RANGE, tooltip="How strongly to modify the diffusion model."),)
        if not model_only:
            strengths += (FloatInput("strength_clip", **STRENGTH_RANGE, tooltip="How strongly to modify the CLIP model."),)
        outputs = (Output(T.MODEL, tooltip="The modified diffusion model."),)
        if not model_only:
            outputs += (Output(T.CLIP, tooltip="The modified CLIP model."),)
        self.schema = NodeSchema(
            type="LoraLoaderModelOnly" if model_only else "LoraLoader",
            display_name="LoraLoaderModelOnly" if model_only else "Load LoRA",
            category="loaders",
            description="Applies a LoRA (kohya, LoCon, LoHa, LoKr or diffusers/PEFT) to a copy of the model; "
            "negative strengths subtract it, several loaders stack.",
            required=(Input("model", T.MODEL, tooltip="The diffusion model the LoRA is applied to."),
                      *clip_inputs, _lora_combo(services), *strengths),  # fmt: skip
            outputs=outputs,
        )

    def fingerprint(self, **literals: object) -> object:
        name = literals.get("lora_name")
        return None if not isinstance(name, str) else file_fingerprint(self.services.folders.path("loras", name))

    def execute(self, ctx: api.ExecutionContext, **inputs: Any) -> NodeResult:
        model = inputs["model"]
        clip = None if self.model_only else inputs["clip"]
        if not isinstance(model, ModelHandle):
            raise NodeInputError("model", f"expects a MODEL, got {type(model).__name__}")
        if clip is not None and not isinstance(clip, ClipHandle):
            raise NodeInputError("clip", f"expects a CLIP, got {type(clip).__name__}")
        name = inputs["lora_name"]
        state = _read_lora(self.services, self.cache, name, "lora_name")
        try:
            result = apply_lora(state, model=model, clip=clip, strength_model=inputs["strength_model"],
                                strength_clip=inputs.get("strength_clip", 0.0), name=name)  # fmt: skip
        except LatentLoomError as error:
            raise NodeInputError("lora_name", str(error)) from error
        outputs = (result.model,) if self.model_only else (result.model, result.clip)
        return NodeResult(outputs=outputs, ui=_unmatched_ui(name, result.match.unmatched))


class LoraMerge(NodeType):
    """Two LoRA files → one LoRA, by concatenated ranks (exact) or SVD to a chosen rank."""

    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.cache = LoraFileCache()
        self.schema = NodeSchema(
            type="LoraMerge",
            display_name="Merge LoRAs",
            category="advanced/model_merging",
            description="Merges two LoRA/LoCon files: 'concat' stacks their ranks (exact), 'svd' re-factors the "
            "merged delta to the given rank.",
            required=(
                Input("model", T.MODEL, tooltip="The model the LoRAs are for: layer names are matched to it."),
                _lora_combo(services, "lora_a"),
                FloatInput("strength_a", **STRENGTH_RANGE),
                _lora_combo(services, "lora_b"),
                FloatInput("strength_b", **STRENGTH_RANGE),
                ComboInput("mode", choices=MERGE_MODES, default="concat"),
                IntInput("rank", default=32, min=1, max=1024, tooltip="The rank 'svd' re-factors to."),
            ),
            outputs=(Output(LORA),),
        )

    def fingerprint(self, **literals: object) -> object:
        names = [literals.get(k) for k in ("lora_a", "lora_b")]
        if not all(isinstance(n, str) for n in names):
            return None
        return tuple(file_fingerprint(self.services.folders.path("loras", n)) for n in names)

    def execute(self, ctx: api.ExecutionContext, *, model: Any, lora_a: str, strength_a: float, lora_b: str,
                strength_b: float, mode: str, rank: int) -> tuple:  # fmt: skip
        if not isinstance(model, ModelHandle):
            raise NodeInputError("model", f"expects a MODEL, got {type(model).__name__}")
        namer = unet_namer(model.unet, model.unet.config)
        layers = {}
        for input_name, name in (("lora_a", lora_a), ("lora_b", lora_b)):
            state = _read_lora(self.services, self.cache, name, input_name)
            try:
                layers[input_name] = lora_layers(state, source=name, unet_name=namer)
            except LatentLoomError as error:
                raise NodeInputError(input_name, str(error)) from error
        merged = merge_lora_layers(layers["lora_a"], layers["lora_b"], strength_a=strength_a,
                                   strength_b=strength_b, mode=mode, rank=rank)  # fmt: skip
        return (merged,)


class LoraSave(NodeType):
    """Writes a LoRA file to the first loras folder, never overwriting: either a LORA from LoraMerge, or one
    extracted from model differences with ComfyUI's LoraSave inputs (rank, lora_type, bias_diff, model_diff,
    text_encoder_diff), so its workflows run here too."""

    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self.schema = NodeSchema(
            type="LoraSave",
            display_name="Save LoRA",
            category="advanced/model_merging",
            description="Saves a merged LORA, or extracts a LoRA from ModelMergeSubtract / text encoder "
            "differences (truncated SVD to 'rank', or the full difference).",
            required=(
                StringInput("filename_prefix", default="LatentLoom_lora"),
                IntInput("rank", default=8, min=1, max=4096, tooltip="The rank extracted differences keep."),
                ComboInput("lora_type", choices=LORA_TYPES, default="standard"),
                BooleanInput("bias_diff", default=True, tooltip="Also store bias and norm differences."),
            ),
            optional=(
                Input("model_diff", T.MODEL, tooltip="A ModelMergeSubtract output to extract a LoRA from."),
                Input("text_encoder_diff", T.CLIP, tooltip="A text encoder difference to extract a LoRA from."),
                Input("lora", LORA, tooltip="A LoraMerge result, saved as it is."),
            ),
            outputs=(),
            output_node=True,
        )

    def execute(self, ctx: api.ExecutionContext, *, filename_prefix: str, rank: int = 8, lora_type: str = "standard",
                bias_diff: bool = True, model_diff: Any = None, text_encoder_diff: Any = None,
                lora: Mapping[str, Any] | None = None) -> NodeResult:  # fmt: skip
        if lora is not None and (model_diff is not None or text_encoder_diff is not None):
            raise NodeInputError("lora", "give either a merged LORA or model_diff/text_encoder_diff, not both")
        if lora is not None:
            state = kohya_state_dict(lora)
            entries = [TensorEntry(k, tuple(t.shape), t.dtype, _constant(t)) for k, t in state.items()]
        else:
            entries = self._extracted(model_diff, text_encoder_diff, rank=rank, lora_type=lora_type, bias_diff=bias_diff)
        folder = self.services.folders.roots("loras")[0]
        try:
            path = save_new(folder, filename_prefix, entries, metadata={"ss_network_module": "networks.lora"})
        except LatentLoomError as error:
            raise NodeInputError("filename_prefix", str(error)) from error
        return NodeResult(ui={"loras": [{"filename": path.name, "folder": str(path.parent)}]})

    @staticmethod
    def _extracted(model_diff: Any, text_encoder_diff: Any, **options: Any) -> list[TensorEntry]:
        if model_diff is None and text_encoder_diff is None:
            raise NodeInputError("model_diff", "nothing to save: connect model_diff or text_encoder_diff (a "
                                 "difference to extract a LoRA from) or lora (a LoraMerge result)")  # fmt: skip
        if model_diff is not None and not isinstance(model_diff, ModelHandle):
            raise NodeInputError("model_diff", f"expects a MODEL, got {type(model_diff).__name__}")
        if text_encoder_diff is not None and not isinstance(text_encoder_diff, ClipHandle):
            raise NodeInputError("text_encoder_diff", f"expects a CLIP, got {type(text_encoder_diff).__name__}")
        try:
            return extract_entries(model=model_diff, clip=text_encoder_diff, **options)
        except ExtractError as error:
            raise NodeInputError(error.input_name, str(error)) from error


def _constant(tensor: Tensor) -> Any:
    return lambda: tensor
