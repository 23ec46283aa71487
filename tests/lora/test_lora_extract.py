"""LoraSave with ComfyUI's inputs: a LoRA extracted from a model difference, which patched onto model B gives A."""

from __future__ import annotations

import pytest
import torch
from lora_bench import CHECKPOINT_B

from latentloom.api import NodeInputError
from latentloom.runtime.checkpoint import read_state_dict
from latentloom.runtime.lora.patch import apply_lora
from latentloom.runtime.lora.weights import patched_view

LINEAR = "input_blocks.1.1.transformer_blocks.0.attn2.to_q.weight"  # 32 → 32
FP16 = {"atol": 3e-3, "rtol": 3e-3}  # the file is fp16


def test_the_schema_takes_comfyui_lora_save_inputs_and_still_takes_a_merged_lora(bench):
    schema = bench.registry.get("LoraSave").schema
    assert [(i.name, i.type) for i in schema.required] == [("filename_prefix", "STRING"), ("rank", "INT"),
                                                          ("lora_type", "COMBO"), ("bias_diff", "BOOLEAN")]  # fmt: skip
    rank = schema.input("rank")
    assert (rank.default, rank.min, rank.max) == (8, 1, 4096)
    assert list(schema.input("lora_type").choices) == ["standard", "full_diff"]
    assert schema.input("bias_diff").default is True
    assert [(i.name, i.type) for i in schema.optional] == [("model_diff", "MODEL"), ("text_encoder_diff", "CLIP"),
                                                          ("lora", "LORA")]  # fmt: skip
    assert schema.output_node and schema.outputs == ()


def extracted(bench, prefix: str, **inputs) -> dict[str, torch.Tensor]:
    result = bench.run_result("LoraSave", filename_prefix=prefix, **inputs)
    return read_state_dict(bench.lora_dir / result.ui["loras"][0]["filename"])


@pytest.fixture(scope="module")
def difference(bench):
    """A − B on the UNet (ModelMergeSubtract) and on the text encoder (CLIPSubtract), with A and B."""
    (a, clip_a, _), (b, clip_b, _) = bench.load(), bench.load(CHECKPOINT_B)
    (model_diff,) = bench.run("ModelMergeSubtract", model1=a, model2=b, multiplier=1.0)
    (clip_diff,) = bench.run("CLIPSubtract", clip1=clip_a, clip2=clip_b, multiplier=1.0)
    return {"a": a, "b": b, "clip_a": clip_a, "clip_b": clip_b, "model_diff": model_diff, "clip_diff": clip_diff}


def test_full_rank_extraction_patched_onto_b_gives_back_a(bench, difference):
    state = extracted(bench, "extract-full-rank", rank=4096, lora_type="standard", bias_diff=True,
                      model_diff=difference["model_diff"], text_encoder_diff=difference["clip_diff"])  # fmt: skip
    b, clip_b = difference["b"], difference["clip_b"]
    result = apply_lora(state, model=b, clip=clip_b, name="extracted")
    assert result.match.unmatched == ()
    rebuilt = dict(result.model.load().named_parameters())
    for key, expected in difference["a"].unet.named_parameters():
        torch.testing.assert_close(rebuilt[key], expected, **FP16, msg=key)
    assert torch.equal(dict(b.unet.named_parameters())[LINEAR], b.unet.get_parameter(LINEAR))  # B untouched
    text = dict(patched_view(clip_b.encoder.model, result.clip.patches).named_parameters())
    for key, expected in difference["clip_a"].encoder.model.named_parameters():
        torch.testing.assert_close(text[key], expected, **FP16, msg=key)


def test_rank_k_extraction_leaves_the_eckart_young_error(bench, difference):
    rank = 3
    state = extracted(bench, "extract-rank3", rank=rank, lora_type="standard", bias_diff=False,
                      model_diff=difference["model_diff"])  # fmt: skip
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q"
    up, down = state[f"{name}.lora_up.weight"].float(), state[f"{name}.lora_down.weight"].float()
    assert up.shape == (32, rank) and down.shape == (rank, 32) and float(state[f"{name}.alpha"]) == rank
    diff = difference["a"].unet.get_parameter(LINEAR) - difference["b"].unet.get_parameter(LINEAR)
    singular = torch.linalg.svdvals(diff)
    error = torch.linalg.matrix_norm(diff - up @ down)
    torch.testing.assert_close(error, singular[rank:].square().sum().sqrt(), atol=2e-3, rtol=2e-3)
    assert not any(key.endswith((".diff", ".diff_b")) for key in state)  # bias_diff off: weights of 2+ dims only


def test_full_diff_stores_each_difference_whole(bench, difference):
    state = extracted(bench, "extract-full-diff", rank=8, lora_type="full_diff", bias_diff=True,
                      model_diff=difference["model_diff"])  # fmt: skip
    assert not any("lora_up" in key for key in state)
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q"
    diff = difference["a"].unet.get_parameter(LINEAR) - difference["b"].unet.get_parameter(LINEAR)
    torch.testing.assert_close(state[f"{name}.diff"].float(), diff, **FP16)
    assert state[f"{name}.diff"].dtype == torch.float16


def test_nothing_to_save_and_a_model_that_is_no_difference_are_refused_by_input(bench, difference):
    with pytest.raises(NodeInputError, match="model_diff.*nothing to save"):
        bench.run_result("LoraSave", filename_prefix="nothing", rank=8, lora_type="standard", bias_diff=True)
    with pytest.raises(NodeInputError, match="model_diff.*no weight differences.*ModelMergeSubtract"):
        bench.run_result("LoraSave", filename_prefix="plain", model_diff=difference["a"])
    with pytest.raises(NodeInputError, match="lora.*not both"):
        bench.run_result("LoraSave", filename_prefix="both", lora={}, model_diff=difference["model_diff"])
