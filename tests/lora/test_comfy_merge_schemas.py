"""The LoRA and merge nodes answer to ComfyUI's names with ComfyUI's inputs (names, order, types, ranges as
its nodes.py and comfy_extras/nodes_model_merging.py declare them), so its merge workflows run."""

from __future__ import annotations

import pytest

STRENGTH = {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}
RATIO = {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}

COMFY_NODES: dict[str, list[tuple[str, str, dict]]] = {
    "LoraLoader": [("model", "MODEL", {}), ("clip", "CLIP", {}), ("lora_name", "COMBO", {}),
                   ("strength_model", "FLOAT", STRENGTH), ("strength_clip", "FLOAT", STRENGTH)],
    "LoraLoaderModelOnly": [("model", "MODEL", {}), ("lora_name", "COMBO", {}), ("strength_model", "FLOAT", STRENGTH)],
    "ModelMergeSimple": [("model1", "MODEL", {}), ("model2", "MODEL", {}), ("ratio", "FLOAT", RATIO)],
    "ModelMergeBlocks": [("model1", "MODEL", {}), ("model2", "MODEL", {}), ("input", "FLOAT", RATIO),
                         ("middle", "FLOAT", RATIO), ("out", "FLOAT", RATIO)],
    "ModelMergeSubtract": [("model1", "MODEL", {}), ("model2", "MODEL", {}),
                           ("multiplier", "FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01})],
    "ModelMergeAdd": [("model1", "MODEL", {}), ("model2", "MODEL", {})],
    "ModelMergeSD1": [("model1", "MODEL", {}), ("model2", "MODEL", {}),
                      *((prefix, "FLOAT", RATIO) for prefix in ("time_embed.", "label_emb.",
                        *(f"input_blocks.{i}." for i in range(12)), *(f"middle_block.{i}." for i in range(3)),
                        *(f"output_blocks.{i}." for i in range(12)), "out."))],
    "CLIPMergeSimple": [("clip1", "CLIP", {}), ("clip2", "CLIP", {}), ("ratio", "FLOAT", RATIO)],
    "CLIPSubtract": [("clip1", "CLIP", {}), ("clip2", "CLIP", {}),
                     ("multiplier", "FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01})],
    "CLIPAdd": [("clip1", "CLIP", {}), ("clip2", "CLIP", {})],
    "CheckpointSave": [("model", "MODEL", {}), ("clip", "CLIP", {}), ("vae", "VAE", {}), ("filename_prefix", "STRING", {})],
}  # fmt: skip
COMFY_NODES["ModelMergeSD2"] = COMFY_NODES["ModelMergeSD1"]  # ComfyUI maps both names to one class
OUTPUTS = {"LoraLoader": ["MODEL", "CLIP"], "LoraLoaderModelOnly": ["MODEL"], "CLIPMergeSimple": ["CLIP"],
           "CLIPSubtract": ["CLIP"], "CLIPAdd": ["CLIP"],
           "CheckpointSave": []}  # fmt: skip


@pytest.mark.parametrize("name", sorted(COMFY_NODES))
def test_inputs_and_outputs_match_comfyui(bench, name):
    node = bench.registry.get(name)
    assert node is not None, name
    inputs = node.schema.required
    assert [(i.name, "COMBO" if i.type == "COMBO" else i.type) for i in inputs] == [(n, t) for n, t, _ in COMFY_NODES[name]]
    for spec, (_, _, options) in zip(inputs, COMFY_NODES[name], strict=True):
        assert {key: getattr(spec, key) for key in options} == options, spec.name
    assert [o.type for o in node.schema.outputs] == OUTPUTS.get(name, ["MODEL"])
    assert node.schema.output_node == (name == "CheckpointSave")
